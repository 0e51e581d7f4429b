package cli

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/train"
)

// runApp runs the jmedseg command in-process and returns its error.
func runApp(args ...string) error {
	app := App()
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	return app.RunContext(context.Background(), append([]string{"jmedseg"}, args...))
}

// Issue 12: every numeric flag is checked where it is read, naming the
// flag; 0 for --epochs or --batch is an error, not the default.
func TestBadFlagValues(t *testing.T) {
	tmp := t.TempDir()
	tr := func(extra ...string) []string {
		return append([]string{"train", "--data", filepath.Join(tmp, "none"), "--out", filepath.Join(tmp, "run")}, extra...)
	}
	limit := strconv.Itoa(4 * runtime.NumCPU())
	existing := filepath.Join(tmp, "trace.json")
	require.NoError(t, os.WriteFile(existing, []byte("mine"), 0o644))
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"epochs 0", tr("--epochs", "0"), []string{"--epochs 0", "1 or more"}},
		{"epochs -3", tr("--epochs", "-3"), []string{"--epochs -3"}},
		{"batch 0", tr("--batch", "0"), []string{"--batch 0"}},
		{"lr 0", tr("--lr", "0"), []string{"--lr 0", "positive finite"}},
		{"lr NaN", tr("--lr", "NaN"), []string{"--lr NaN"}},
		{"lr Inf", tr("--lr", "Inf"), []string{"--lr +Inf"}},
		{"lr negative", tr("--lr", "-1e-3"), []string{"--lr -0.001"}},
		{"weight decay -1", tr("--weight-decay", "-1"), []string{"--weight-decay -1"}},
		{"weight decay NaN", tr("--weight-decay", "nan"), []string{"--weight-decay NaN"}},
		{"threads -1", tr("--threads", "-1"), []string{"--threads -1"}},
		{"threads 100000", tr("--threads", "100000"), []string{"--threads 100000", "more than " + limit}},
		{"threads 2000", tr("--threads", "2000"), []string{"--threads 2000", limit}},
		{"width", tr("--width", "-1"), []string{"--width -1"}},
		{"in-channels", tr("--in-channels", "-2"), []string{"--in-channels -2"}},
		{"in-channels huge", tr("--in-channels", "1000"), []string{"--in-channels 1000"}},
		{"workers", tr("--workers", "-1"), []string{"--workers -1"}},
		{"workers huge", tr("--workers", "1000000"), []string{"--workers 1000000"}},
		{"limit-batches", tr("--limit-batches", "-1"), []string{"--limit-batches -1"}},
		{"size 0", tr("--size", "0"), []string{"--size", `"0"`}},
		{"size huge", tr("--size", "100000x64"), []string{"--size"}},
		{"size junk", tr("--size", "64x"), []string{"--size"}},
		{"resume and force", tr("--resume", "--force"), []string{"--resume", "--force"}},
		{"bench batch", []string{"bench", "--batch", "0"}, []string{"--batch 0"}},
		{"bench size", []string{"bench", "--size", "-5"}, []string{"--size -5"}},
		{"bench steps", []string{"bench", "--steps", "0"}, []string{"--steps 0"}},
		{"bench warmup", []string{"bench", "--warmup", "-1"}, []string{"--warmup -1"}},
		{"bench threads", []string{"bench", "--threads", "-2"}, []string{"--threads -2"}},
		{"bench profile exists", []string{"bench", "--profile", existing}, []string{"--profile " + existing, "exists", "--force"}},
		{"bench profile directory", []string{"bench", "--profile", tmp}, []string{"--profile " + tmp, "is a directory"}},
		{"bench profile no directory", []string{"bench", "--profile", filepath.Join(tmp, "no", "t.json")}, []string{"--profile", "no directory"}},
		{"test batch", []string{"test", "--checkpoint", "x", "--data", tmp, "--out", tmp, "--batch", "0"}, []string{"--batch 0"}},
		{"pretrain lr", []string{"pretrain", "--data", tmp, "--out", filepath.Join(tmp, "e"), "--lr", "NaN"}, []string{"--lr NaN"}},
		{"pretrain temperature", []string{"pretrain", "--data", tmp, "--out", filepath.Join(tmp, "e"), "--temperature", "0"}, []string{"--temperature 0"}},
		{"pretrain queue", []string{"pretrain", "--data", tmp, "--out", filepath.Join(tmp, "e"), "--queue", "0"}, []string{"--queue 0"}},
		{"pretrain epochs", []string{"pretrain", "--data", tmp, "--out", filepath.Join(tmp, "e"), "--epochs", "0"}, []string{"--epochs 0"}},
		{"prepare size", []string{"data", "prepare", "--out", filepath.Join(tmp, "ds"), "--size", "0"}, []string{"--size 0"}},
		{"models classes", []string{"models", "--classes", "0"}, []string{"--classes 0"}},
		{"predict threads", []string{"predict", "--checkpoint", "x", "--input", "y", "--output", "z", "--threads", "-1"}, []string{"--threads -1"}},
		{"predict layout", []string{"predict", "--checkpoint", "x", "--input", tmp, "--output", filepath.Join(tmp, "pred"), "--layout", "nhwc"}, []string{`--layout "nhwc"`, "channels_last"}},
		{"data check threads", []string{"data", "check", tmp, "--threads", "-1"}, []string{"--threads -1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = runApp(tc.args...) })
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// data check DIR --json: flags after the directory are flags.
func TestDataCheckFlagsAfterDir(t *testing.T) {
	tmp := t.TempDir()
	for _, args := range [][]string{{"data", "check", tmp, "--json"}, {"data", "check", "--json", tmp}, {"data", "check", tmp, "--threads", "1", "--json=true"}} {
		err := runApp(args...)
		require.Error(t, err, args) // tmp is no data set
		assert.NotContains(t, err.Error(), "arguments", args)
		assert.Contains(t, err.Error(), "no data set found", args)
	}
	err := runApp("data", "check", tmp, "--bogus")
	assert.ErrorContains(t, err, "--bogus")
	err = runApp("data", "check", tmp, "--threads")
	assert.ErrorContains(t, err, "--threads")
	err = runApp("data", "check", tmp, tmp)
	assert.ErrorContains(t, err, "2 arguments")
}

// data prepare names its flag, not the Go field.
func TestPrepareNotEmptySaysForce(t *testing.T) {
	out := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(out, "keep.txt"), []byte("mine"), 0o644))
	err := runApp("data", "prepare", "--out", out, "--size", "64")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--force")
	assert.NotContains(t, err.Error(), "use Force")
	b, err := os.ReadFile(filepath.Join(out, "keep.txt"))
	require.NoError(t, err)
	assert.Equal(t, "mine", string(b))
}

// test --out RUN and pretrain --out FILE do not replace a run's report or
// an existing encoder file without --force.
func TestTestAndPretrainRefuseOverwrite(t *testing.T) {
	run := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(run, train.BestFile), []byte("x"), 0o644))
	err := runApp("test", "--checkpoint", filepath.Join(run, train.BestFile), "--data", run, "--out", run)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "training run directory")
	assert.Contains(t, err.Error(), "--force")
}

func TestParseSize(t *testing.T) {
	good := map[string][2]int{"": {}, "64": {64, 64}, "64x32": {64, 32}, "64X32": {64, 32}, "64,32": {64, 32}, "16384": {16384, 16384}, "007x8": {7, 8}}
	for s, want := range good {
		got, err := parseSize("size", s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
	}
	for _, s := range []string{"0", "-64", "+64", "64x", "x64", "64xx64", "64x32x16", " 64", "64 ", "16385", "1e3", "0x40", "64x0", "9999999999999999999x1", "x", ",", "6 4"} {
		_, err := parseSize("size", s)
		require.Error(t, err, s)
		assert.Contains(t, err.Error(), "--size", s)
	}
}

// FuzzParseSize: parseSize never panics; what it accepts is in range, as
// models.ParseSize reads it, and prints back to itself.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"", "64", "64x32", "128X128", "64,32", "0", "-1", "64x", "x", "64xx64", "1x2x3", "99999999999999999999", "+5", " 5", "16384", "16385", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseSize("size", s)
		if err != nil {
			if !strings.Contains(err.Error(), "--size") {
				t.Fatalf("%q: the error does not name the flag: %v", s, err)
			}
			return
		}
		if s == "" {
			if got != [2]int{} {
				t.Fatalf("empty: %v", got)
			}
			return
		}
		for _, v := range got {
			if v < 1 || v > train.MaxSize {
				t.Fatalf("%q: accepted %v", s, got)
			}
		}
		if m, err := models.ParseSize(s); err != nil || m != got {
			t.Fatalf("%q: models.ParseSize reads %v, %v; parseSize %v", s, m, err, got)
		}
		again, err := parseSize("size", fmt.Sprintf("%dx%d", got[0], got[1]))
		if err != nil || again != got {
			t.Fatalf("%q: %v does not print back (%v, %v)", s, got, again, err)
		}
	})
}

// FuzzTrainFlags: train's numeric flag values, parsed by urfave/cli then
// checked by trainOptions, never panic; what is accepted is in range and
// finite, and every rejection names a flag.
func FuzzTrainFlags(f *testing.F) {
	f.Add("20", "8", "1e-4", "0", "0", "", "0")
	f.Add("0", "0", "NaN", "-1", "-1", "64x", "-1")
	f.Add("1", "1", "Inf", "nan", "100000", "0", "1")
	f.Add("-5", "99999999999999999999", "-0", "1e400", "2000", "99999x1", "x")
	f.Add("3", "2", "0x1p-3", "1e-5", "1", "128", "4")
	f.Fuzz(func(t *testing.T, epochs, batch, lr, wd, threads, size, workers string) {
		var opt train.Options
		var optErr error
		called := false
		app := &cli.App{Name: "jmedseg", Writer: io.Discard, ErrWriter: io.Discard, HideHelpCommand: true, ExitErrHandler: func(*cli.Context, error) {},
			Commands: []*cli.Command{{Name: "train", Flags: trainFlags(),
				Action: func(c *cli.Context) error { called = true; opt, optErr = trainOptions(c); return optErr }}}}
		app.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return err }
		args := []string{"jmedseg", "train", "--data", "d", "--out", "o", "--epochs=" + epochs, "--batch=" + batch, "--lr=" + lr,
			"--weight-decay=" + wd, "--threads=" + threads, "--size=" + size, "--workers=" + workers}
		err := app.Run(args)
		if err != nil {
			if !strings.Contains(err.Error(), "-") {
				t.Fatalf("%q: the error names no flag: %v", args, err)
			}
			return
		}
		if !called {
			t.Fatalf("%q: no error and no action", args)
		}
		finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
		switch {
		case opt.Epochs < 1, opt.Batch < 1:
			t.Fatalf("%q: epochs %d, batch %d", args, opt.Epochs, opt.Batch)
		case opt.LR < 0 || !finite(opt.LR):
			t.Fatalf("%q: lr %g", args, opt.LR)
		case opt.Decay < 0 || !finite(opt.Decay):
			t.Fatalf("%q: weight decay %g", args, opt.Decay)
		case opt.Threads < 0 || opt.Threads > train.MaxThreads():
			t.Fatalf("%q: threads %d", args, opt.Threads)
		case opt.Workers < 0 || opt.Workers > train.MaxWorkers():
			t.Fatalf("%q: workers %d", args, opt.Workers)
		case opt.Size[0] < 0 || opt.Size[1] < 0 || opt.Size[0] > train.MaxSize || opt.Size[1] > train.MaxSize:
			t.Fatalf("%q: size %v", args, opt.Size)
		}
	})
}

// FuzzInterspersed: flags after a positional argument never panic, and
// the positional arguments come back in order, never a flag among them.
func FuzzInterspersed(f *testing.F) {
	f.Add("DIR", "--json", "")
	f.Add("--json", "DIR", "--threads")
	f.Add("DIR", "--threads", "3")
	f.Add("DIR", "--", "--json")
	f.Add("-", "--seed=x", "--json=maybe")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		var pos []string
		app := &cli.App{Name: "jmedseg", Writer: io.Discard, ErrWriter: io.Discard, HideHelpCommand: true, ExitErrHandler: func(*cli.Context, error) {},
			Commands: []*cli.Command{{Name: "check", Flags: withCommon(), HideHelpCommand: true,
				Action: func(ctx *cli.Context) error {
					var err error
					pos, err = interspersed(ctx)
					return err
				}}}}
		app.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return err }
		if err := app.Run([]string{"jmedseg", "check", a, b, c}); err != nil {
			return
		}
		dashdash := false
		for _, p := range pos {
			if p == "--" {
				dashdash = true
			}
		}
		if !dashdash && !contains([]string{a, b, c}, "--") {
			for _, p := range pos {
				if len(p) > 1 && p[0] == '-' && lookupFlag(withCommon(), strings.SplitN(strings.TrimLeft(p, "-"), "=", 2)[0]) != nil {
					t.Fatalf("%q %q %q: flag %q left among the arguments %q", a, b, c, p, pos)
				}
			}
		}
	})
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestParseBytes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"off", 0, false}, {"OFF", 0, false}, {"0", 0, false}, {"123", 123, false},
		{"1KiB", 1024, false}, {"1.5GiB", 3 << 29, false}, {"2 MiB", 2 << 20, false}, {"4gib", 4 << 30, false},
		{"2GB", 2e9, false}, {"10MB", 1e7, false}, {"7B", 7, false},
		{"", 0, true}, {"-1", 0, true}, {"MiB", 0, true}, {"1XB", 0, true}, {"inf", 0, true}, {"1e30", 0, true}, {"NaN", 0, true},
	} {
		got, err := parseBytes(c.in)
		if c.err {
			assert.Error(t, err, c.in)
			continue
		}
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, got, c.in)
	}
	assert.Equal(t, "6.0 GiB", formatBytes(6<<30))
	assert.Equal(t, "512.0 MiB", formatBytes(512<<20))
	assert.Equal(t, "0 B", formatBytes(0))
}
