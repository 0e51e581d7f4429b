package train_test

import (
	"context"
	"encoding/binary"
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/torch/safetensors"
	"github.com/jmedseg/jmedseg/train"
)

// Issue 12: after Ctrl-C mid-epoch and --resume, the history's training
// loss of that epoch covers every batch of it, as without the interruption.
func TestInterruptedEpochLossCoversTheEpoch(t *testing.T) {
	a := t.TempDir()
	ta, err := train.New(small(t, a))
	require.NoError(t, err)
	require.NoError(t, ta.Fit(context.Background()))
	want := ta.History()
	ta.Close()

	b := t.TempDir()
	ob := small(t, b)
	tb, err := train.New(ob)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	steps := 0
	tb.OnEvent = func(e train.Event) {
		if e.Kind == "step" {
			if steps++; steps == 5 { // epoch 2, batch 2 of 3
				cancel()
			}
		}
	}
	require.ErrorIs(t, tb.Fit(ctx), context.Canceled)
	tb.Close()
	ob.Resume = true
	tb, err = train.New(ob)
	require.NoError(t, err)
	require.NoError(t, tb.Fit(context.Background()))
	got := tb.History()
	tb.Close()
	require.Len(t, got, 2)
	for i := range want {
		assert.Equal(t, want[i].TrainLoss, got[i].TrainLoss, "epoch %d", i+1)
		assert.Equal(t, want[i].ValDice, got[i].ValDice, "epoch %d", i+1)
	}
}

// Issue 12: --resume and --pretrained check the model the file holds
// against the one the run builds and say in one sentence what differs; a
// NaN weight is refused.
func TestResumeAndPretrainedChecks(t *testing.T) {
	base := t.TempDir()
	o := small(t, base)
	o.Epochs = 1
	tr, err := train.New(o)
	require.NoError(t, err)
	require.NoError(t, tr.Fit(context.Background()))
	tr.Close()
	best := filepath.Join(base, train.BestFile)

	fails := func(t *testing.T, o train.Options, want ...string) {
		t.Helper()
		tr, err := train.New(o)
		if err == nil {
			tr.Close()
		}
		require.Error(t, err)
		assert.Less(t, len(err.Error()), 500, err.Error())
		for _, w := range want {
			assert.Contains(t, err.Error(), w)
		}
	}
	t.Run("resume width", func(t *testing.T) {
		r := o
		r.Epochs, r.Resume, r.Net.Width = 2, true, 8
		fails(t, r, "this checkpoint is unet width 4, 1 input channel, 2 classes, without STN", "this run builds unet width 8", "width")
	})
	t.Run("resume stn", func(t *testing.T) {
		r := o
		r.Epochs, r.Resume, r.STN = 2, true, true
		fails(t, r, "without STN", "with STN", "drop --stn")
	})
	t.Run("resume size", func(t *testing.T) {
		r := o
		r.Epochs, r.Resume, r.Size = 2, true, [2]int{32, 32}
		fails(t, r, "64x64", "32x32", "--size")
	})
	t.Run("pretrained width", func(t *testing.T) {
		p := small(t, t.TempDir())
		p.Pretrained, p.Net.Width = best, 8
		fails(t, p, "--pretrained", "unet width 4", "unet width 8")
	})
	t.Run("pretrained stn", func(t *testing.T) {
		p := small(t, t.TempDir())
		p.Pretrained, p.STN = best, true
		fails(t, p, "--pretrained", "without STN", "drop --stn")
	})
	t.Run("pretrained other model", func(t *testing.T) {
		p := small(t, t.TempDir())
		p.Pretrained, p.Model = best, "attunet"
		fails(t, p, "unet", "attunet")
	})
	t.Run("pretrained same", func(t *testing.T) {
		p := small(t, t.TempDir())
		p.Pretrained = best
		tr, err := train.New(p)
		require.NoError(t, err)
		tr.Close()
	})
	t.Run("resume nan weight", func(t *testing.T) {
		last := filepath.Join(base, train.LastFile)
		f, err := safetensors.ReadFile(last)
		require.NoError(t, err)
		for i := range f.Tensors {
			if st := &f.Tensors[i]; st.DType == safetensors.F32 && len(st.Data) >= 4 {
				binary.LittleEndian.PutUint32(st.Data, math.Float32bits(float32(math.Inf(-1))))
				break
			}
		}
		require.NoError(t, safetensors.WriteFile(last, f))
		r := o
		r.Epochs, r.Resume = 2, true
		fails(t, r, "infinite", last)
	})
}
