package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/data"
)

// predict, test and serve share --layout and --engine: a bad value is
// refused before anything is loaded, naming the command and the flag.
func TestSpeedFlagsRefused(t *testing.T) {
	tmp := t.TempDir()
	cmds := map[string][]string{
		"predict": {"predict", "--checkpoint", "x", "--input", tmp, "--output", filepath.Join(tmp, "pred")},
		"test":    {"test", "--checkpoint", "x", "--data", tmp, "--out", filepath.Join(tmp, "out")},
		"serve":   {"serve", "--checkpoint", "x", "--addr", "127.0.0.1:0"},
	}
	for cmd, args := range cmds {
		for _, tc := range []struct {
			name  string
			extra []string
			want  []string
		}{
			{"layout", []string{"--layout", "nhwc"}, []string{cmd + `: --layout "nhwc": want auto, contiguous or channels_last`}},
			{"engine", []string{"--engine", "turbo"}, []string{cmd + `: --engine: infer: engine "turbo": want eager or jit`}},
			{"engine with amp", []string{"--engine", "jit", "--amp", "bf16"}, []string{cmd + ": --engine:", `does not combine with amp "bf16"`}},
		} {
			t.Run(cmd+" "+tc.name, func(t *testing.T) {
				var err error
				require.NotPanics(t, func() { err = runApp(append(append([]string{}, args...), tc.extra...)...) })
				require.Error(t, err)
				for _, w := range tc.want {
					assert.Contains(t, err.Error(), w)
				}
			})
		}
	}
}

// speedFixture writes a small data set (train 8, val 2 and test 5 images
// of 32², 3 classes: a bright disc, its brighter core and background) and a unet of
// width 4 trained on it for a few seconds (Adam, 120 steps): enough that
// its predictions follow the images, so that a flipped pixel shows.
func speedFixture(t *testing.T) (ckpt, ds string) {
	t.Helper()
	dir := t.TempDir()
	ds = filepath.Join(dir, "ds")
	const side = 32
	require.NoError(t, os.MkdirAll(ds, 0o755))
	require.NoError(t, data.WriteManifest(ds, &data.Manifest{Name: "toy", Classes: []string{"background", "a", "b"}, Width: side, Height: side, Channels: 1}))
	r := rand.New(rand.NewPCG(5, 6))
	for split, n := range map[string]int{"train": 8, "val": 2, "test": 5} {
		for i := range n {
			img, mask := image.NewGray(image.Rect(0, 0, side, side)), image.NewGray(image.Rect(0, 0, side, side))
			cx, cy, rad := 8+r.Float64()*16, 8+r.Float64()*16, 6+r.Float64()*4
			for y := range side {
				for x := range side {
					d := math.Hypot(float64(x)-cx, float64(y)-cy)
					v := 30 + 40*r.Float64()
					switch {
					case d < rad/2:
						mask.Pix[y*side+x], v = 2, v+170
					case d < rad:
						mask.Pix[y*side+x], v = 1, v+90
					}
					img.Pix[y*side+x] = uint8(v)
				}
			}
			name := split + string(rune('a'+i)) + ".png"
			writePNG(t, filepath.Join(ds, split, "images", name), img)
			writePNG(t, filepath.Join(ds, split, "masks", name), mask)
		}
	}
	run := filepath.Join(dir, "run")
	require.NoError(t, runApp("train", "--model", "unet", "--width", "4", "--data", ds, "--out", run, "--epochs", "30", "--batch", "2", "--json",
		"--lr", "0.02", "--seed", "3", "--threads", "1"))
	return filepath.Join(run, "best.safetensors"), ds
}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
}

// testScores runs jmedseg test with extra flags and returns the test
// split's pooled Dice (all classes, foreground), its per-image mean, then
// each image's foreground and per-class Dice (per_image.csv).
func testScores(t *testing.T, ckpt, ds string, extra ...string) []float64 {
	t.Helper()
	var out bytes.Buffer
	app := App()
	app.Writer, app.ErrWriter = &out, io.Discard
	args := append([]string{"jmedseg", "test", "--checkpoint", ckpt, "--data", ds, "--out", t.TempDir(), "--batch", "3", "--json"}, extra...)
	require.NoError(t, app.RunContext(context.Background(), args))
	type dice struct {
		Dice float64 `json:"dice"`
	}
	var res struct {
		Tests []struct {
			AllClass  dice `json:"all_class_mean"`
			Fore      dice `json:"foreground_mean"`
			ImageMean struct {
				Fore dice `json:"foreground_mean"`
			} `json:"per_image_mean"`
		} `json:"tests"`
		CSV string `json:"per_image_csv"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &res), out.String())
	require.Len(t, res.Tests, 1)
	tt := res.Tests[0]
	scores := []float64{tt.AllClass.Dice, tt.Fore.Dice, tt.ImageMean.Fore.Dice}
	f, err := os.Open(res.CSV)
	require.NoError(t, err)
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 6, "a header and 5 images")
	for _, name := range []string{"fg_mean_dice", "a:dice", "b:dice"} {
		col := slices.Index(recs[0], name)
		require.GreaterOrEqual(t, col, 0, "%s in %v", name, recs[0])
		for _, r := range recs[1:] {
			d := -1.0 // an empty cell: no such class in image or prediction
			if r[col] != "" {
				d, err = strconv.ParseFloat(r[col], 64)
				require.NoError(t, err)
			}
			scores = append(scores, d)
		}
	}
	return scores
}

// jmedseg test scores the same with either engine and any layout (5
// images in batches of 3: two shapes), fused or not, to 1e-6 on Dice.
func TestTestEngines(t *testing.T) {
	ckpt, ds := speedFixture(t)
	want := testScores(t, ckpt, ds, "--no-fuse", "--layout", "contiguous")
	t.Logf("Dice: all classes, foreground, per-image mean, each image: %.4f", want)
	require.Greater(t, want[1], 0.05, "the fixture's predictions overlap the masks")
	for _, extra := range [][]string{
		{},
		{"--engine", "jit"},
		{"--engine", "jit", "--layout", "channels_last"},
		{"--layout", "channels_last"},
	} {
		got := testScores(t, ckpt, ds, extra...)
		require.Len(t, got, len(want))
		for i := range want {
			assert.InDelta(t, want[i], got[i], 1e-6, "%v: score %d", extra, i)
		}
	}
}
