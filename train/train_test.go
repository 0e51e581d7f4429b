package train_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/train"
)

var (
	brainOnce sync.Once
	brainDir  string
	brainErr  error
)

// brain builds the default data set once per test binary (about 2 s).
func brain(t *testing.T) string {
	t.Helper()
	brainOnce.Do(func() {
		dir, err := os.MkdirTemp("", "jmedseg-brain-")
		if err != nil {
			brainErr = err
			return
		}
		brainDir = filepath.Join(dir, "brain")
		_, brainErr = data.Prepare(context.Background(), data.PrepareOptions{Out: brainDir, Size: 64})
	})
	require.NoError(t, brainErr)
	return brainDir
}

func small(t *testing.T, out string) train.Options {
	return train.Options{Model: "unet", Net: models.Config{Width: 4}, Data: brain(t), Out: out, Epochs: 2, Batch: 4,
		LR: 1e-3, Workers: 2, Seed: 7, LimitBatches: 3, Threads: 1}
}

func weights(t *testing.T, path string) map[string][]float64 {
	ts, _, err := ckpt.ReadTensors(path)
	require.NoError(t, err)
	defer ckpt.Free(ts)
	out := map[string][]float64{}
	for _, n := range ts {
		v, err := n.Tensor.Float64s()
		require.NoError(t, err)
		out[n.Name] = v
	}
	return out
}

func TestRunWritesCheckpointsAndReport(t *testing.T) {
	out := t.TempDir()
	tr, err := train.New(small(t, out))
	require.NoError(t, err)
	defer tr.Close()
	var events []train.Event
	tr.OnEvent = func(e train.Event) { events = append(events, e) }
	run, err := tr.Run(context.Background())
	require.NoError(t, err)
	for _, f := range []string{train.BestFile, train.LastFile, "report.md", "report.json", "loss.png", "dice.png"} {
		assert.FileExists(t, filepath.Join(out, f))
	}
	require.Len(t, run.History, 2)
	var splits []string
	for _, ts := range run.Tests {
		splits = append(splits, ts.Split)
		assert.NotEmpty(t, ts.Overlays)
		for _, o := range ts.Overlays {
			assert.FileExists(t, filepath.Join(out, o))
		}
	}
	assert.ElementsMatch(t, []string{"test", "test_xsubject"}, splits)
	kinds := map[string]int{}
	for _, e := range events {
		kinds[e.Kind]++
	}
	assert.Equal(t, 6, kinds["step"])
	assert.Equal(t, 2, kinds["epoch"])
	assert.Equal(t, 2, kinds["test"])

	// test and predict work from the best checkpoint
	rep, err := train.Test(context.Background(), filepath.Join(out, train.BestFile), brain(t), []string{"test"}, filepath.Join(out, "eval"), "cpu", 4)
	require.NoError(t, err)
	require.Len(t, rep.Tests, 1)
	assert.FileExists(t, filepath.Join(out, "eval", "report.md"))
}

// Training 2 epochs straight equals training 1, stopping, and resuming for
// the second: the same weights, bit for bit.
func TestResumeIsExact(t *testing.T) {
	a := t.TempDir()
	ta, err := train.New(small(t, a))
	require.NoError(t, err)
	require.NoError(t, ta.Fit(context.Background()))
	ta.Close()

	b := t.TempDir()
	ob := small(t, b)
	ob.Epochs = 1
	tb, err := train.New(ob)
	require.NoError(t, err)
	require.NoError(t, tb.Fit(context.Background()))
	tb.Close()
	ob.Epochs, ob.Resume = 2, true
	tb, err = train.New(ob)
	require.NoError(t, err)
	require.NoError(t, tb.Fit(context.Background()))
	tb.Close()

	wa, wb := weights(t, filepath.Join(a, train.LastFile)), weights(t, filepath.Join(b, train.LastFile))
	require.Equal(t, len(wa), len(wb))
	for k, v := range wa {
		require.Equal(t, v, wb[k], "%s differs after resuming", k)
	}
}

// Interrupting mid-epoch saves the state; resuming finishes the run with
// the weights an uninterrupted run reaches.
func TestInterruptAndResume(t *testing.T) {
	a := t.TempDir()
	ta, err := train.New(small(t, a))
	require.NoError(t, err)
	require.NoError(t, ta.Fit(context.Background()))
	ta.Close()

	b := t.TempDir()
	ob := small(t, b)
	tb, err := train.New(ob)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	steps := 0
	tb.OnEvent = func(e train.Event) {
		if e.Kind == "step" {
			if steps++; steps == 4 { // epoch 2, batch 1
				cancel()
			}
		}
	}
	err = tb.Fit(ctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "--resume")
	tb.Close()
	ob.Resume = true
	tb, err = train.New(ob)
	require.NoError(t, err)
	require.NoError(t, tb.Fit(context.Background()))
	tb.Close()
	wa, wb := weights(t, filepath.Join(a, train.LastFile)), weights(t, filepath.Join(b, train.LastFile))
	for k, v := range wa {
		require.Equal(t, v, wb[k], "%s differs after an interrupted run", k)
	}
}

func TestNonFiniteLossStops(t *testing.T) {
	o := small(t, t.TempDir())
	o.Optimizer, o.LR = "sgd", 1e30
	tr, err := train.New(o)
	require.NoError(t, err)
	defer tr.Close()
	err = tr.Fit(context.Background())
	require.Error(t, err)
	assert.True(t, errors.Is(err, train.ErrNonFinite), err.Error())
}

func TestBadOptions(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*train.Options)
		want string
	}{
		{"no data", func(o *train.Options) { o.Data = "" }, "no data set"},
		{"missing data", func(o *train.Options) { o.Data = "/nonexistent" }, "/nonexistent"},
		{"model", func(o *train.Options) { o.Model = "resnet9000" }, `unknown model "resnet9000"`},
		{"loss", func(o *train.Options) { o.Loss = "hinge" }, "unknown loss"},
		{"optimizer", func(o *train.Options) { o.Optimizer = "lbfgs" }, "unknown optimizer"},
		{"size", func(o *train.Options) { o.Size = [2]int{60, 60} }, "multiples of 16"},
		{"resume without state", func(o *train.Options) { o.Resume = true }, "last.safetensors"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := small(t, t.TempDir())
			tc.mod(&o)
			tr, err := train.New(o)
			if err == nil {
				tr.Close()
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// Device "cuda" where libtorch has no CUDA is an error naming CUDA, never a
// silent fall-back to the CPU; where CUDA is available the trainer is built.
func TestDeviceCUDA(t *testing.T) {
	o := small(t, t.TempDir())
	o.Device = "cuda"
	tr, err := train.New(o)
	if torch.CUDAAvailable() {
		require.NoError(t, err)
		tr.Close()
		return
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), "CUDA")
}
