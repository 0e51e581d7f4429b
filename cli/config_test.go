package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/train"
)

// configApp is jmedseg with train wrapped by withRunConfig whether or not
// App already wraps it.
func configApp() *cli.App {
	app := App()
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	for i, c := range app.Commands {
		if c.Name == "train" {
			app.Commands[i] = withRunConfig(trainCommand())
		}
	}
	return app
}

// optionsApp runs train's flag handling (with --config) and captures the
// options instead of training.
func optionsApp(opt *train.Options) *cli.App {
	cmd := withRunConfig(&cli.Command{Name: "train", Flags: trainFlags(), Action: func(c *cli.Context) error {
		o, err := trainOptions(c)
		*opt = o
		return err
	}})
	return &cli.App{Commands: []*cli.Command{cmd}, Writer: io.Discard, ErrWriter: io.Discard}
}

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

func TestConfigFile(t *testing.T) {
	tmp := t.TempDir()
	js := writeFile(t, filepath.Join(tmp, "run.json"), `{"data": "d", "out": "o", "epochs": 3, "lr": 0.002, "poly": true, "seed": 18446744073709551615, "model": "unet"}`)
	yml := writeFile(t, filepath.Join(tmp, "run.yaml"), "data: d\nout: o\nepochs: 3\nlr: 2e-3\npoly: true\nseed: 5\n")
	tests := []struct {
		name    string
		args    []string
		want    func(*testing.T, train.Options)
		wantErr []string
	}{
		{"json", []string{"--config", js}, func(t *testing.T, o train.Options) {
			assert.Equal(t, 3, o.Epochs)
			assert.Equal(t, "d", o.Data)
			assert.Equal(t, "o", o.Out)
			assert.Equal(t, 0.002, o.LR)
			assert.True(t, o.Poly)
			assert.Equal(t, uint64(18446744073709551615), o.Seed)
			assert.Equal(t, 8, o.Batch) // the flag's default where the file is silent
		}, nil},
		{"yaml", []string{"--config", yml}, func(t *testing.T, o train.Options) {
			assert.Equal(t, 3, o.Epochs)
			assert.Equal(t, 0.002, o.LR)
			assert.Equal(t, uint64(5), o.Seed)
		}, nil},
		{"flags win", []string{"--config", js, "--epochs", "7", "--out", "other", "--poly=false"}, func(t *testing.T, o train.Options) {
			assert.Equal(t, 7, o.Epochs)
			assert.Equal(t, "other", o.Out)
			assert.False(t, o.Poly)
			assert.Equal(t, 0.002, o.LR)
		}, nil},
		{"unknown key", []string{"--config", writeFile(t, filepath.Join(tmp, "u.json"), `{"data": "d", "out": "o", "epochz": 3}`)}, nil,
			[]string{"u.json", `"epochz"`, "unknown key"}},
		{"unknown yaml key", []string{"--config", writeFile(t, filepath.Join(tmp, "u.yml"), "data: d\nlearning_rate: 1\n")}, nil,
			[]string{"u.yml", `"learning_rate"`}},
		{"wrong type", []string{"--config", writeFile(t, filepath.Join(tmp, "w.json"), `{"data": "d", "out": "o", "epochs": "three"}`)}, nil,
			[]string{"w.json", `"epochs"`, "an integer", `"three"`}},
		{"fraction for int", []string{"--config", writeFile(t, filepath.Join(tmp, "f.json"), `{"batch": 2.5}`)}, nil,
			[]string{`"batch"`, "an integer"}},
		{"string for bool", []string{"--config", writeFile(t, filepath.Join(tmp, "b.yaml"), "poly: \"yes\"\n")}, nil,
			[]string{`"poly"`, "true or false"}},
		{"bad json", []string{"--config", writeFile(t, filepath.Join(tmp, "bad.json"), `{"data": `)}, nil, []string{"bad.json"}},
		{"missing file", []string{"--config", filepath.Join(tmp, "none.json")}, nil, []string{"none.json"}},
		{"other extension", []string{"--config", writeFile(t, filepath.Join(tmp, "run.toml"), "")}, nil, []string{"run.toml", ".yaml"}},
		{"required still", []string{"--config", writeFile(t, filepath.Join(tmp, "nodata.json"), `{"out": "o"}`)}, nil, []string{"--data is required"}},
		{"no config", []string{"--data", "d", "--out", "o"}, func(t *testing.T, o train.Options) { assert.Equal(t, 20, o.Epochs) }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opt train.Options
			err := optionsApp(&opt).RunContext(context.Background(), append([]string{"jmedseg", "train"}, tc.args...))
			if tc.wantErr != nil {
				require.Error(t, err)
				for _, w := range tc.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				return
			}
			require.NoError(t, err)
			tc.want(t, opt)
		})
	}
}

// Issue 18: two --deterministic runs give bit-identical checkpoints, and
// the saved config.json reproduces the run as --config.
func TestDeterministicRunsAreIdentical(t *testing.T) {
	if testing.Short() {
		t.Skip("trains three tiny models")
	}
	// What to know when it fails on another machine.
	t.Logf("threads %d, Winograd available %v, CPU %q", torch.NumThreads(), torch.WinogradAvailable(), cpuModel())
	tmp := t.TempDir()
	ds := filepath.Join(tmp, "brain")
	_, err := data.Prepare(context.Background(), data.PrepareOptions{Out: ds, Size: 64})
	require.NoError(t, err)
	args := func(out string) []string {
		return []string{"jmedseg", "train", "--deterministic", "--data", ds, "--out", out, "--model", "unet", "--width", "4",
			"--epochs", "2", "--batch", "4", "--limit-batches", "3", "--workers", "3", "--threads", "2", "--seed", "11",
			"--geometric", "--lr", "1e-3"}
	}
	run := func(a ...string) {
		require.NoError(t, configApp().RunContext(context.Background(), a))
	}
	a, b, c := filepath.Join(tmp, "a"), filepath.Join(tmp, "b"), filepath.Join(tmp, "c")
	run(args(a)...)
	run(args(b)...)
	// config.json as --config, with only --out on the command line.
	run("jmedseg", "train", "--config", filepath.Join(a, "config.json"), "--out", c)
	for _, dir := range []string{b, c} {
		// The model file is byte for byte the same.
		want, err := os.ReadFile(filepath.Join(a, "best.safetensors"))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(dir, "best.safetensors"))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(want, got), "best.safetensors differs between %s and %s", a, dir)
		// The training checkpoint's tensors (weights, optimizer moments, RNG
		// state) are; its metadata records the timings and --out too.
		sameCheckpoint(t, filepath.Join(a, "last.safetensors"), filepath.Join(dir, "last.safetensors"))
	}

	var m train.Manifest
	raw, err := os.ReadFile(filepath.Join(a, "manifest.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &m))
	assert.Equal(t, uint64(11), m.Seed)
	assert.True(t, m.Deterministic)
	assert.NotEmpty(t, m.Libtorch)
	assert.NotEmpty(t, m.Jmedseg)
	assert.Len(t, m.Data.SHA256, 64)
	assert.Positive(t, m.Data.Files)
	assert.Equal(t, float64(4), m.Flags["width"])
	assert.Equal(t, float64(0), m.Flags["folds"]) // the manifest has the defaults too
	want, err := train.HashData(ds)
	require.NoError(t, err)
	assert.Equal(t, want.SHA256, m.Data.SHA256)

	var cfg map[string]any
	raw, err = os.ReadFile(filepath.Join(c, "config.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &cfg))
	assert.Equal(t, c, cfg["out"])
	assert.Equal(t, true, cfg["deterministic"])
	assert.Equal(t, float64(11), cfg["seed"])
	assert.NotContains(t, cfg, "folds") // defaults are not restated
	assert.NotContains(t, cfg, "force")
	assert.NotContains(t, cfg, "config")
}

// sameCheckpoint checks that two training checkpoints hold the same
// tensors bit for bit and the same metadata but for the timings in the
// history and the options (which name --out).
func sameCheckpoint(t *testing.T, pa, pb string) {
	t.Helper()
	ta, ma, err := ckpt.ReadTensors(pa)
	require.NoError(t, err)
	defer ckpt.Free(ta)
	tb, mb, err := ckpt.ReadTensors(pb)
	require.NoError(t, err)
	defer ckpt.Free(tb)
	require.Equal(t, len(ta), len(tb))
	for i := range ta {
		require.Equal(t, ta[i].Name, tb[i].Name)
		require.Equal(t, ta[i].Tensor.Shape(), tb[i].Tensor.Shape(), ta[i].Name)
		require.Equal(t, ta[i].Tensor.DType(), tb[i].Tensor.DType(), ta[i].Name)
		va, err := ta[i].Tensor.Float64s() // exact for every stored dtype (float32, int64 RNG bytes)
		require.NoError(t, err)
		vb, err := tb[i].Tensor.Float64s()
		require.NoError(t, err)
		for j := range va {
			if math.Float64bits(va[j]) != math.Float64bits(vb[j]) {
				t.Fatalf("%s: tensor %s differs at %d: %v vs %v", pb, ta[i].Name, j, va[j], vb[j])
			}
		}
	}
	untimed := func(raw string) []map[string]any {
		var h []map[string]any
		require.NoError(t, json.Unmarshal([]byte(raw), &h))
		for _, r := range h {
			for k := range r {
				if strings.Contains(strings.ToLower(k), "second") {
					delete(r, k)
				}
			}
		}
		return h
	}
	assert.Equal(t, untimed(ma["jmedseg.history"]), untimed(mb["jmedseg.history"]))
	for k := range ma {
		if k != "jmedseg.history" && k != "jmedseg.options" {
			assert.Equal(t, ma[k], mb[k], "metadata %s", k)
		}
	}
	assert.Equal(t, len(ma), len(mb))
}

// The data hash covers names and bytes, not the directory's order or times.
func TestHashData(t *testing.T) {
	tmp := t.TempDir()
	mk := func(dir string, files map[string]string) string {
		for name, text := range files {
			p := filepath.Join(tmp, dir, name)
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		}
		return filepath.Join(tmp, dir)
	}
	base := map[string]string{"images/a.png": "x", "masks/a.png": "y"}
	h := func(dir string) string {
		d, err := train.HashData(dir)
		require.NoError(t, err)
		return d.SHA256
	}
	ref := h(mk("ref", base))
	assert.Equal(t, ref, h(mk("same", base)))
	assert.NotEqual(t, ref, h(mk("bytes", map[string]string{"images/a.png": "z", "masks/a.png": "y"})))
	assert.NotEqual(t, ref, h(mk("names", map[string]string{"images/b.png": "x", "masks/a.png": "y"})))
	// Moving a byte from one file to the next changes the hash (sizes are hashed).
	assert.NotEqual(t, h(mk("s1", map[string]string{"a": "xy", "b": ""})), h(mk("s2", map[string]string{"a": "x", "b": "y"})))
	_, err := train.HashData(filepath.Join(tmp, "none"))
	assert.ErrorContains(t, err, "none")
}

// cpuModel is /proc/cpuinfo's first model name ("" where there is none).
func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
