package zoo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/metric"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/report"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func TestScaleWidth(t *testing.T) {
	for _, c := range []struct {
		def   int64
		scale float64
		want  int64
	}{
		{64, 1, 64}, {64, 0.25, 16}, {64, 0.0625, 4}, {64, 0.01, 1}, {1024, 0.25, 256},
		{32, 0.3, 10}, {16, 0.1, 2}, // round(9.6) = 10, round(1.6) = 2
		{0, 0.5, 0}, // no default width: the model's own
	} {
		assert.Equal(t, c.want, ScaleWidth(c.def, c.scale), "%d × %g", c.def, c.scale)
	}
}

func TestWidthRule(t *testing.T) {
	r := WidthRule{Scale: 0.125, Min: 8}
	assert.Equal(t, int64(8), r.Of(64))
	assert.Equal(t, int64(8), r.Of(32), "4, raised to the floor")
	assert.Equal(t, int64(8), r.Of(16))
	assert.Equal(t, int64(4), r.Of(4), "never above the reference width")
	assert.Equal(t, int64(128), r.Of(1024))
	assert.Equal(t, int64(0), r.Of(0))
	assert.Equal(t, int64(2), WidthRule{Scale: 0.125}.Of(16), "no floor: the brief rule")
	w, err := ResolveWidth(models.Spec{Name: "lin", DefaultWidth: 16, Build: func(c models.Config) (nn.Module, error) {
		return nn.NewLinear(1, c.Width), nil
	}}, r, models.Config{InChannels: 1, Classes: 2})
	require.NoError(t, err)
	assert.Equal(t, Width{Width: 8, Scaled: 8, Params: 16}, w)
}

func TestWidthCandidates(t *testing.T) {
	assert.Equal(t, []int64{4, 8, 16, 32, 64}, WidthCandidates(4, 64))
	assert.Equal(t, []int64{3, 4, 8, 16, 32, 64}, WidthCandidates(3, 64))
	assert.Equal(t, []int64{10, 12, 16, 32, 64}, WidthCandidates(10, 64))
	assert.Equal(t, []int64{64}, WidthCandidates(64, 64))
	assert.Equal(t, []int64{100}, WidthCandidates(100, 64), "above the reference: nothing to round up to")
	assert.Equal(t, []int64{0}, WidthCandidates(0, 64))
	assert.Equal(t, []int64{5, 6, 8, 12}, WidthCandidates(5, 12), "the reference width last")
}

func TestResolveWidth(t *testing.T) {
	cfg := models.Config{InChannels: 1, Classes: 2}
	spec := func(name string) models.Spec {
		s, ok := models.Lookup(name)
		require.True(t, ok, name)
		return s
	}
	w, err := ResolveWidth(spec("unet"), WidthRule{Scale: 0.0625}, cfg)
	require.NoError(t, err)
	assert.Equal(t, Width{Width: 4, Scaled: 4, Params: w.Params}, w)
	m, err := models.New("unet", models.Config{InChannels: 1, Classes: 2, Width: 4})
	require.NoError(t, err)
	assert.Equal(t, m.NumParams(), w.Params)
	m.Free()

	// setr's width is its embedding, a multiple of its 16 heads: 1024/128
	// = 8 is rounded up to 16, and the row says why.
	w, err = ResolveWidth(spec("setr"), WidthRule{Scale: 1.0 / 128}, cfg)
	require.NoError(t, err)
	assert.Equal(t, int64(16), w.Width)
	assert.Equal(t, int64(8), w.Scaled)
	assert.Contains(t, w.Note, "width 16, not 8")
	assert.Contains(t, w.Note, "multiple of 16")

	// A model whose constructor takes multiples of 3 only, and one that
	// takes nothing.
	threes := models.Spec{Name: "threes", DefaultWidth: 12, Build: func(c models.Config) (nn.Module, error) {
		if c.Width%3 != 0 {
			return nil, fmt.Errorf("width %d is not a multiple of 3", c.Width)
		}
		return nn.NewLinear(c.InChannels, c.Width), nil
	}}
	w, err = ResolveWidth(threes, WidthRule{Scale: 0.5}, cfg) // 6
	require.NoError(t, err)
	assert.Equal(t, Width{Width: 6, Scaled: 6, Params: 6 + 6}, w)
	w, err = ResolveWidth(threes, WidthRule{Scale: 1.0 / 3}, cfg) // 4, then 8 (not a multiple of 3), then 12
	require.NoError(t, err)
	assert.Equal(t, int64(12), w.Width)
	assert.Contains(t, w.Note, "models: threes: width 4 is not a multiple of 3")
	never := models.Spec{Name: "never", DefaultWidth: 8, Build: func(models.Config) (nn.Module, error) {
		return nil, errors.New("no")
	}}
	_, err = ResolveWidth(never, WidthRule{Scale: 0.5}, cfg)
	assert.ErrorContains(t, err, "no width from 4 up to 8 builds: models: never: no")
}

func TestSelect(t *testing.T) {
	all := models.Names()
	for _, in := range [][]string{nil, {}, {"all"}, {""}, {"ALL"}} {
		got, err := Select(in)
		require.NoError(t, err)
		assert.Equal(t, all, got, "%q", in)
	}
	got, err := Select([]string{"unet, attunet", "unet"})
	require.NoError(t, err)
	assert.Equal(t, []string{"attunet", "unet"}, got, "registry order, no repeats")
	_, err = Select([]string{"unet,nope"})
	assert.ErrorContains(t, err, `--models: unknown model "nope"`)
	_, err = Select([]string{"all,unet"})
	assert.ErrorContains(t, err, "--models")
}

func TestClassify(t *testing.T) {
	cases := []struct {
		ex       Exit
		timedOut bool
		reason   string
		msg      string
	}{
		{Exit{Code: 1, Stderr: "epoch 1/3 ...\njmedseg: train: the loss is not finite at epoch 2, batch 3 (NaN, lr 0.0001)\n"}, false, ReasonNaN, "the loss is not finite at epoch 2"},
		{Exit{Code: 1, Stderr: "jmedseg: torch: out of memory: conv2d ...\n"}, false, ReasonOOM, "out of memory"},
		{Exit{Code: -1, Signal: "killed", Stderr: "epoch 1/3\n"}, false, ReasonOOM, "out-of-memory killer; last output: epoch 1/3"},
		{Exit{Code: -1, Signal: "segmentation fault"}, false, ReasonCrash, "segmentation fault"},
		{Exit{Code: 130, Stderr: "jmedseg: train: interrupted at epoch 1\n"}, true, ReasonTimeout, "--model-timeout of 1m0s"},
		{Exit{Code: 1, Stderr: "jmedseg: models: setr: width 3 is not a multiple of 16\n\n"}, false, ReasonError, "models: setr: width 3"},
		{Exit{Code: 2}, false, ReasonError, "exit status 2"},
	}
	for _, c := range cases {
		reason, msg := classify(c.ex, c.timedOut, time.Minute)
		assert.Equal(t, c.reason, reason, "%+v", c.ex)
		assert.Contains(t, msg, c.msg)
	}
}

func TestProtocolDiff(t *testing.T) {
	a := Protocol{Epochs: 3, Loss: "ce", Size: [2]int{64, 64}}
	assert.Empty(t, a.diff(a))
	b := a
	b.Epochs = 4
	assert.Equal(t, "epochs 3, not 4", a.diff(b))
	b = a
	b.Size = [2]int{64, 32}
	assert.Equal(t, "size [64,64], not [64,32]", a.diff(b))
}

func TestProtocolDefaults(t *testing.T) {
	var p Protocol
	p.defaults()
	assert.Equal(t, Protocol{Epochs: 20, Batch: 8, LR: 1e-4, Optimizer: "adam", Loss: "ce", WidthScale: 1}, p)
	p = Protocol{Optimizer: "SGD"}
	p.defaults()
	assert.Equal(t, 1e-2, p.LR)
	assert.Equal(t, "sgd", p.Optimizer)
	for flag, bad := range map[string]Protocol{
		"--epochs": {Epochs: -1}, "--width-scale": {WidthScale: -2}, "--optimizer": {Optimizer: "lion"},
		"--batch": {Batch: -3}, "--lr": {LR: -1}, "--limit-batches": {LimitBatches: -1}, "--min-width": {MinWidth: -1},
	} {
		bad.defaults()
		assert.ErrorContains(t, bad.validate(), flag)
	}
}

func TestExitErrorLine(t *testing.T) {
	assert.Equal(t, "models: bad", Exit{Stderr: "jmedseg: models: bad\n"}.ErrorLine())
	assert.Equal(t, "last words", Exit{Stderr: "first\n\rlast words\n\n"}.ErrorLine())
	assert.Equal(t, "", Exit{}.ErrorLine())
	assert.Equal(t, "real error", Exit{Stderr: "jmedseg: real error\ntrailing noise\n"}.ErrorLine())
}

// makeData writes a tiny data set in the project's layout: 32×32 grey
// images of a bright square with its mask, in train, val, test and
// test_xsubject.
func makeData(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for split, n := range map[string]int{"train": 4, "val": 2, "test": 3, "test_xsubject": 2} {
		for _, sub := range []string{"images", "masks"} {
			require.NoError(t, os.MkdirAll(filepath.Join(dir, split, sub), 0o755))
		}
		for i := range n {
			img := image.NewGray(image.Rect(0, 0, 32, 32))
			mask := image.NewGray(image.Rect(0, 0, 32, 32))
			for y := 8 + i; y < 24; y++ {
				for x := 8; x < 24-i; x++ {
					img.SetGray(x, y, color.Gray{Y: 200})
					mask.SetGray(x, y, color.Gray{Y: 1})
				}
			}
			name := fmt.Sprintf("s%02d.png", i)
			writePNG(t, filepath.Join(dir, split, "images", name), img)
			writePNG(t, filepath.Join(dir, split, "masks", name), mask)
		}
	}
	require.NoError(t, data.WriteManifest(dir, &data.Manifest{Name: "squares", Classes: []string{"background", "square"},
		Width: 32, Height: 32, Channels: 1, PixelSpacing: []float64{1, 1}}))
	return dir
}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, png.Encode(f, img))
	require.NoError(t, f.Close())
}

// fakeRunner plays jmedseg train and predict: per model, what the child
// does is behaviour[model] ("ok", "nan", "oom", "error", "hang"), and
// every call is recorded.
type fakeRunner struct {
	t         *testing.T
	behaviour map[string]string
	mu        sync.Mutex
	calls     [][]string
}

func arg(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

func (f *fakeRunner) trained() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if c[0] == "train" {
			out = append(out, arg(c, "--model"))
		}
	}
	return out
}

func (f *fakeRunner) Run(ctx context.Context, args []string, onLine func([]byte), log io.Writer) (Exit, error) {
	f.mu.Lock()
	f.calls = append(f.calls, args)
	f.mu.Unlock()
	t := f.t
	fmt.Fprintln(log, "fake", strings.Join(args, " "))
	if args[0] == "predict" {
		out := arg(args, "--output")
		mask := image.NewGray(image.Rect(0, 0, 32, 32))
		for y := 10; y < 20; y++ {
			for x := 10; x < 20; x++ {
				mask.SetGray(x, y, color.Gray{Y: 1})
			}
		}
		writePNG(t, out, mask)
		return Exit{Wall: time.Millisecond}, nil
	}
	require.Equal(t, "train", args[0])
	model, dir := arg(args, "--model"), arg(args, "--out")
	epochs := 2
	writeReport := func(dice float64, epochs int, note string) {
		r := report.Run{Model: model, Params: 1000 + int64(len(model)), BestEpoch: epochs}
		for e := 1; e <= epochs; e++ {
			r.History = append(r.History, report.Epoch{Epoch: e, TrainLoss: 1, ValLoss: 1, ValDice: dice, ValIoU: dice, Seconds: float64(e), ImagesPerSecond: 10 * float64(e)})
		}
		for _, split := range []string{"test", "test_xsubject"} {
			rep := metric.Report{Split: metric.Summary{Foreground: metric.Means{Dice: metric.Score(dice), IoU: metric.Score(dice / 2)}},
				Surface: []metric.SurfaceMeans{{Class: 1, HD95: 3, ASSD: 1, Images: 3}}, PerImage: make([]metric.ImageResult, 3)}
			r.Tests = append(r.Tests, report.Test{Split: split, Metrics: rep})
		}
		if note != "" {
			r.Notes = []string{note}
		}
		require.NoError(t, report.Write(dir, r))
	}
	epochLine := func(e int) {
		b, _ := json.Marshal(map[string]any{"event": "epoch", "epoch": e, "epochs": epochs, "record": map[string]any{"epoch": e, "seconds": 1.5}})
		onLine(b)
	}
	switch f.behaviour[model] {
	case "ok":
		epochLine(1)
		epochLine(2)
		writeReport(0.9, 2, "")
		return Exit{Code: 0, PeakRSS: 300 << 20, Wall: 2 * time.Second, CPU: 3 * time.Second}, nil
	case "nan":
		epochLine(1)
		writeReport(0.7, 1, "Training stopped early: train: the loss is not finite at epoch 2, batch 1")
		return Exit{Code: 1, PeakRSS: 200 << 20, Wall: time.Second,
			Stderr: "jmedseg: train: the loss is not finite at epoch 2, batch 1 (NaN, lr 0.0001)\n"}, nil
	case "oom":
		return Exit{Code: -1, Signal: "killed", PeakRSS: 20 << 30, Wall: time.Second, Stderr: "epoch 1/2\n"}, nil
	case "hang": // until interrupted, having saved a state to resume from
		require.NoError(t, os.WriteFile(filepath.Join(dir, "last.safetensors"), []byte("state"), 0o644))
		<-ctx.Done()
		return Exit{Code: 130, Stderr: "jmedseg: train: interrupted at epoch 1, batch 1\n"}, nil
	}
	return Exit{Code: 1, Stderr: "jmedseg: models: " + model + ": something else\n"}, nil
}

// jsonField is one field of v as JSON decodes it.
func jsonField(t *testing.T, v any, name string) any {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	require.Contains(t, m, name)
	return m[name]
}

func readTable(t *testing.T, dir string) Table {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, JSONFile))
	require.NoError(t, err)
	var tab Table
	require.NoError(t, json.Unmarshal(b, &tab))
	return tab
}

func rowOf(t *testing.T, tab Table, model string) Row {
	t.Helper()
	for _, r := range tab.Rows {
		if r.Model == model {
			return r
		}
	}
	t.Fatalf("no row for %s", model)
	return Row{}
}

func TestRunRowsResumeAndFailures(t *testing.T) {
	ds := makeData(t)
	out := filepath.Join(t.TempDir(), "zoo")
	fr := &fakeRunner{t: t, behaviour: map[string]string{"unet": "ok", "attunet": "nan", "deeplab": "oom", "csnet": "error"}}
	var events []Event
	opt := Options{Data: ds, Out: out, Models: []string{"unet,attunet,deeplab,csnet,setr"}, Runner: fr,
		Protocol: Protocol{Epochs: 2, Size: [2]int{48, 48}, WidthScale: 0.0625, Loss: "ce:0.8+iou:0.2", Poly: true, Aug: true},
		Threads:  1, OnEvent: func(e Event) { events = append(events, e) }}
	tab, err := Run(context.Background(), opt)
	require.NoError(t, err)

	// setr takes multiples of 32: 48 is a size failure before any child
	// runs.
	assert.Equal(t, []string{"attunet", "csnet", "deeplab", "unet"}, fr.trained())
	require.Len(t, tab.Rows, 5)
	assert.Equal(t, []string{"attunet", "csnet", "deeplab", "setr", "unet"}, func() (n []string) {
		for _, r := range tab.Rows {
			n = append(n, r.Model)
		}
		return n
	}(), "registry order")

	unet := rowOf(t, *tab, "unet")
	assert.Equal(t, StatusOK, unet.Status)
	assert.Empty(t, unet.Reason)
	assert.Equal(t, int64(4), unet.Width)
	assert.Equal(t, int64(64), unet.RefWidth)
	assert.Equal(t, int64(17_267_458), unet.RefParams)
	assert.Equal(t, int64(1004), unet.Params, "from the run's report")
	assert.Equal(t, 2, unet.Epochs)
	assert.InDelta(t, 1.5, float64(unet.SecondsPerEpoch), 1e-12)
	assert.InDelta(t, 15, float64(unet.ImagesPerSecond), 1e-12)
	assert.Equal(t, int64(300<<20), unet.PeakRSS)
	assert.Equal(t, 2.0, unet.WallSeconds)
	assert.Equal(t, 3.0, unet.CPUSeconds)
	require.Len(t, unet.Tests, 2)
	assert.Equal(t, SplitScores{Split: "test", Dice: 0.9, IoU: 0.45, HD95: 3, ASSD: 1, Images: 3}, unet.Tests[0])
	assert.Equal(t, "unet/"+PredictionFile, unet.Prediction)
	assert.Equal(t, "test/s01", unet.PredictionOf, "the middle test image")

	att := rowOf(t, *tab, "attunet")
	assert.Equal(t, StatusStopped, att.Status)
	assert.Equal(t, ReasonNaN, att.Reason)
	assert.Contains(t, att.Error, "not finite")
	assert.Len(t, att.Tests, 2, "the best checkpoint was tested")
	assert.Empty(t, att.Notes, "the report's note says what Error says")
	assert.NotEmpty(t, att.Prediction)

	dl := rowOf(t, *tab, "deeplab")
	assert.Equal(t, StatusFailed, dl.Status)
	assert.Equal(t, ReasonOOM, dl.Reason)
	assert.Equal(t, int64(20<<30), dl.PeakRSS)
	assert.Empty(t, dl.Tests)
	assert.Empty(t, dl.Prediction)
	assert.Equal(t, int64(4), dl.Width)
	assert.Positive(t, dl.Params, "counted when the width was resolved")

	cs := rowOf(t, *tab, "csnet")
	assert.Equal(t, ReasonError, cs.Reason)
	assert.Equal(t, "models: csnet: something else", cs.Error)

	setr := rowOf(t, *tab, "setr")
	assert.Equal(t, StatusFailed, setr.Status)
	assert.Equal(t, ReasonSize, setr.Reason)
	assert.Contains(t, setr.Error, "multiples of 32")

	// The protocol went to every child as train's flags.
	for _, c := range fr.calls {
		if c[0] != "train" {
			continue
		}
		width := map[string]string{"csnet": "2"}[arg(c, "--model")] // 32/16; the others 64/16
		if width == "" {
			width = "4"
		}
		for flag, want := range map[string]string{"--epochs": "2", "--size": "48x48", "--width": width, "--loss": "ce:0.8+iou:0.2",
			"--batch": "8", "--lr": "0.0001", "--optimizer": "adam", "--seed": "0", "--threads": "1", "--data": ds} {
			assert.Equal(t, want, arg(c, flag), "%s of %v", flag, c)
		}
		assert.Contains(t, c, "--poly")
		assert.Contains(t, c, "--aug")
		assert.NotContains(t, c, "--geometric")
		assert.NotContains(t, c, "--resume")
		assert.Contains(t, c, "--json")
	}

	// Files: table, rows, logs, figures.
	disk := readTable(t, out)
	assert.Len(t, disk.Rows, 5)
	assert.Equal(t, []string{"test", "test_xsubject"}, disk.Splits)
	assert.Equal(t, [2]int{48, 48}, disk.Protocol.Size)
	for _, f := range append(disk.Files(), "unet/"+RowFile, "unet/"+LogFile, "setr/"+RowFile) {
		assert.FileExists(t, filepath.Join(out, f))
	}
	assert.Contains(t, disk.Figures, "zoo-dice-test.png")
	assert.Contains(t, disk.Figures, "zoo-dice-test_xsubject.svg")
	assert.Contains(t, disk.Figures, PredictionsPNG)
	md, err := os.ReadFile(filepath.Join(out, MarkdownFile))
	require.NoError(t, err)
	for _, want := range []string{
		"# Model zoo on squares",
		"rows: 1 ok, 1 stopped, 3 failed",
		"2 epochs of batch 8 at 48×48, adam lr 0.0001 with the poly schedule, loss ce:0.8+iou:0.2, SAS colour/blur augmentation, width scale 0.0625, seed 0",
		"| model | width (ref.) | params | ref. params | test Dice | test IoU | test HD95 | test ASSD | test_xsubject Dice |",
		"| unet | 4 (64) | 1.0 k | 17.27 M | 0.9000 | 0.4500 | 3.00 | 1.00 | 0.9000 | 0.4500 | 3.00 | 1.00 | 1.5 | 15.0 | 300 | ok |",
		"| setr | – | – | 64.03 M | – | – | – | – |",
		"failed: size |",
		"| deeplab | 4 (64) |",
		"20480 | failed: oom |",
		"stopped: nan |",
		"**setr** failed (size): models: setr ",
		"| – | – | – | failed: size |",
		"![zoo-dice-test](zoo-dice-test.png) ([SVG](zoo-dice-test.svg))",
		"![predictions](zoo-predictions.png)",
		"on test/s01",
	} {
		assert.Contains(t, string(md), want)
	}

	// Progress: start, a model/row pair per trained model, epochs with
	// an ETA, done.
	kinds := map[string]int{}
	for _, e := range events {
		kinds[e.Kind]++
		if e.Kind == "epoch" {
			assert.Equal(t, 5, e.N)
			assert.NotEmpty(t, e.Model)
			if e.Epoch == 1 {
				assert.Equal(t, 1500*time.Millisecond, e.ETA, "one epoch left at 1.5 s")
			}
		}
	}
	assert.Equal(t, map[string]int{"start": 1, "model": 4, "epoch": 3, "row": 5, "done": 1}, kinds)

	// Rerun: every row is kept, failures too; nothing is trained.
	fr2 := &fakeRunner{t: t, behaviour: fr.behaviour}
	opt.Runner, events = fr2, nil
	_, err = Run(context.Background(), opt)
	require.NoError(t, err)
	assert.Empty(t, fr2.trained())
	assert.Empty(t, fr2.calls, "the predictions are there too")
	kinds = map[string]int{}
	for _, e := range events {
		kinds[e.Kind]++
	}
	assert.Equal(t, map[string]int{"start": 1, "skip": 5, "done": 1}, kinds)

	// --retry-failed trains the failures again (setr fails at once); the
	// NaN is fixed this time.
	fr3 := &fakeRunner{t: t, behaviour: map[string]string{"attunet": "ok", "deeplab": "oom", "csnet": "ok"}}
	opt.Runner, opt.RetryFailed = fr3, true
	tab, err = Run(context.Background(), opt)
	require.NoError(t, err)
	assert.Equal(t, []string{"attunet", "csnet", "deeplab"}, fr3.trained())
	assert.Equal(t, StatusOK, rowOf(t, *tab, "attunet").Status)
	assert.Empty(t, rowOf(t, *tab, "attunet").Error)
	assert.Equal(t, ReasonOOM, rowOf(t, *tab, "deeplab").Reason)

	// Another protocol in the same directory is an error naming the field.
	opt.Protocol.Epochs = 3
	_, err = Run(context.Background(), opt)
	assert.ErrorContains(t, err, "epochs 2, not 3")
	assert.ErrorContains(t, err, RowFile)
}

func TestRunInterruptAndTimeout(t *testing.T) {
	ds := makeData(t)
	out := filepath.Join(t.TempDir(), "zoo")
	fr := &fakeRunner{t: t, behaviour: map[string]string{"attunet": "hang", "unet": "ok"}}
	ctx, cancel := context.WithCancel(context.Background())
	opt := Options{Data: ds, Out: out, Models: []string{"attunet,unet"}, Runner: fr,
		Protocol: Protocol{Epochs: 2, WidthScale: 0.0625},
		OnEvent: func(e Event) {
			if e.Kind == "model" && e.Model == "attunet" {
				go func() { time.Sleep(20 * time.Millisecond); cancel() }()
			}
		}}
	_, err := Run(ctx, opt)
	require.ErrorIs(t, err, context.Canceled)
	assert.ErrorContains(t, err, "attunet")
	assert.NoFileExists(t, filepath.Join(out, "attunet", RowFile), "an interrupted model has no row")
	assert.Equal(t, []string{"attunet"}, fr.trained(), "the zoo stops")
	assert.Equal(t, [2]int{32, 32}, readTable(t, out).Protocol.Size, "the data's size")

	// The rerun continues attunet from its saved state; it times out.
	fr2 := &fakeRunner{t: t, behaviour: fr.behaviour}
	opt.Runner, opt.OnEvent, opt.Timeout = fr2, nil, 30*time.Millisecond
	tab, err := Run(context.Background(), opt)
	require.NoError(t, err)
	require.Len(t, fr2.calls, 3) // attunet, unet, unet's prediction
	assert.Contains(t, fr2.calls[0], "--resume")
	assert.NotContains(t, fr2.calls[1], "--resume")
	att := rowOf(t, *tab, "attunet")
	assert.Equal(t, StatusFailed, att.Status)
	assert.Equal(t, ReasonTimeout, att.Reason)
	assert.Equal(t, StatusOK, rowOf(t, *tab, "unet").Status)

	// A timed-out model continues from its state when retried.
	fr3 := &fakeRunner{t: t, behaviour: map[string]string{"attunet": "ok"}}
	opt.Runner, opt.RetryFailed, opt.Timeout = fr3, true, 0
	tab, err = Run(context.Background(), opt)
	require.NoError(t, err)
	require.Equal(t, []string{"attunet"}, fr3.trained())
	assert.Contains(t, fr3.calls[0], "--resume")
	assert.Equal(t, StatusOK, rowOf(t, *tab, "attunet").Status)
}

func TestRunErrors(t *testing.T) {
	ds := makeData(t)
	fr := &fakeRunner{t: t}
	for want, opt := range map[string]Options{
		"--data":        {Out: t.TempDir(), Runner: fr},
		"--out":         {Data: ds, Runner: fr},
		"--models":      {Data: ds, Out: t.TempDir(), Runner: fr, Models: []string{"nope"}},
		"--width-scale": {Data: ds, Out: t.TempDir(), Runner: fr, Protocol: Protocol{WidthScale: math.Inf(1)}},
		"no such file":  {Data: filepath.Join(ds, "missing"), Out: t.TempDir(), Runner: fr},
		"binary":        {Data: ds, Out: t.TempDir()},
	} {
		_, err := Run(context.Background(), opt)
		assert.ErrorContains(t, err, want)
	}
	assert.Empty(t, fr.calls)
}

func TestExecRunner(t *testing.T) {
	r := ExecRunner{Exe: "/bin/sh", Grace: 5 * time.Second}
	var lines []string
	var log strings.Builder
	ex, err := r.Run(context.Background(), []string{"-c", `echo one; echo two; echo "jmedseg: it broke" >&2; exit 3`},
		func(l []byte) { lines = append(lines, string(l)) }, &log)
	require.NoError(t, err)
	assert.Equal(t, []string{"one", "two"}, lines)
	assert.Equal(t, 3, ex.Code)
	assert.Empty(t, ex.Signal)
	assert.Equal(t, "it broke", ex.ErrorLine())
	assert.Positive(t, ex.PeakRSS)
	assert.Positive(t, ex.Wall)
	assert.Contains(t, log.String(), "two\n")
	assert.Contains(t, log.String(), "it broke")

	// Cancelling interrupts the child with SIGINT, which it may handle (the
	// child loops forever otherwise, so exit code 130 is the proof; no wall
	// time is asserted, a loaded CI machine may be slow).
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	ex, err = r.Run(ctx, []string{"-c", `trap 'echo saved; exit 130' INT; echo ready; while :; do sleep 0.05; done`}, nil, &log)
	require.NoError(t, err)
	assert.Equal(t, 130, ex.Code)

	_, err = ExecRunner{Exe: "/nonexistent/jmedseg"}.Run(context.Background(), nil, nil, nil)
	assert.ErrorContains(t, err, "/nonexistent/jmedseg")
}

func TestFitSize(t *testing.T) {
	spec := func(mult, min int64) models.Spec { return models.Spec{Multiple: mult, MinSize: min} }
	assert.Equal(t, [2]int{64, 64}, FitSize(spec(32, 0), [2]int{48, 48}))
	assert.Equal(t, [2]int{192, 192}, FitSize(spec(32, 192), [2]int{128, 128}))
	assert.Equal(t, [2]int{192, 224}, FitSize(spec(32, 192), [2]int{128, 200}))
	assert.Equal(t, [2]int{128, 128}, FitSize(spec(16, 0), [2]int{128, 128}), "a size it takes stays")
	assert.Equal(t, [2]int{37, 53}, FitSize(spec(1, 0), [2]int{37, 53}))
}

func TestRunFitSize(t *testing.T) {
	ds := makeData(t)
	fr := &fakeRunner{t: t, behaviour: map[string]string{"setr": "ok", "unet": "ok"}}
	opt := Options{Data: ds, Out: t.TempDir(), Models: []string{"setr,unet"}, Runner: fr,
		Protocol: Protocol{Epochs: 2, Size: [2]int{48, 48}, WidthScale: 1.0 / 64, MinWidth: 8, FitSize: true}}
	tab, err := Run(context.Background(), opt)
	require.NoError(t, err)
	setr, unet := rowOf(t, *tab, "setr"), rowOf(t, *tab, "unet")
	assert.Equal(t, StatusOK, setr.Status)
	assert.Equal(t, [2]int{64, 64}, setr.Size)
	assert.Contains(t, setr.SizeNote, "trained and tested at 64×64, not 48×48")
	assert.Equal(t, [2]int{48, 48}, unet.Size)
	assert.Empty(t, unet.SizeNote)
	for _, c := range fr.calls {
		if c[0] == "train" {
			assert.Equal(t, map[string]string{"setr": "64x64", "unet": "48x48"}[arg(c, "--model")], arg(c, "--size"))
			assert.Equal(t, map[string]string{"setr": "16", "unet": "8"}[arg(c, "--model")], arg(c, "--width"), "1024/64 and max(8, 64/64)")
		}
	}
	md, err := os.ReadFile(filepath.Join(opt.Out, MarkdownFile))
	require.NoError(t, err)
	assert.Contains(t, string(md), "**setr**: trained and tested at 64×64, not 48×48")
	assert.Contains(t, string(md), "a model that cannot take the size trains at the next size it takes")
	assert.Contains(t, string(md), "width scale 0.015625 (width at least 8)")
	assert.Contains(t, string(md), "max(8, round(reference width × 0.015625)), at most the reference width")
	assert.Equal(t, int64(8), unet.Width)
}
