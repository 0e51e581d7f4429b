package models_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/optim"
)

// smallest is the model's declared test size of fewest pixels.
func smallest(s models.Spec) [2]int64 {
	best := s.TestSizes[0]
	for _, hw := range s.TestSizes[1:] {
		if hw[0]*hw[1] < best[0]*best[1] {
			best = hw
		}
	}
	return best
}

// leakCheck runs f once and reports, after it returns, how many more tensor
// handles are alive than before and how many the garbage collector's safety
// net released (handles f lost without freeing). Garbage of earlier work is
// collected before the count starts.
func leakCheck(f func()) (live, leaked int64) {
	l0 := torch.SettleLeaks()
	n0, _ := torch.Live()
	f()
	n1, _ := torch.Live()
	return n1 - n0, torch.SettleLeaks() - l0
}

// The documented way to call a model, logits := m.Forward(x) with an
// unscoped x and no scope around it, leaves nothing behind once the caller
// frees x and the logits: no live handle and nothing for the garbage
// collector's safety net. In eval mode under NoGrad (inference) and in
// train mode with gradients on, at the model's smallest test size and test
// width, after one scoped warm-up forward (which may create lasting caches).
func TestUnscopedForwardLeavesNothing(t *testing.T) {
	for _, name := range models.Names() {
		t.Run(name, func(t *testing.T) {
			s := spec(t, name)
			m := build(t, s, 3, 2)
			hw := smallest(s)
			shape := []int64{batchFor(hw), 3, hw[0], hw[1]}
			for _, mode := range []struct {
				name  string
				train bool
				run   func(func())
			}{
				{"eval_nograd", false, torch.NoGrad},
				{"train_grad", true, torch.WithGrad},
			} {
				t.Run(mode.name, func(t *testing.T) {
					m.Train(mode.train)
					mode.run(func() {
						require.NoError(t, torch.WithScope(func(sc *torch.Scope) error {
							return m.Forward(torch.Randn(shape, sc)).Err()
						}))
					})
					var err error
					live, leaked := leakCheck(func() {
						mode.run(func() {
							x := torch.Randn(shape)
							y := m.Forward(x)
							err = y.Err()
							y.Free()
							x.Free()
						})
					})
					require.NoError(t, err)
					assert.Zero(t, live, "an unscoped forward left %d tensor handles alive", live)
					assert.Zero(t, leaked, "an unscoped forward left %d tensor handles to the garbage collector's safety net", leaked)
				})
			}
		})
	}
}

// A training step (forward, cross-entropy, backward, Adam step, zero grad)
// inside a torch.Scope leaves the live handles as they were before it:
// measured after one warm-up step, which creates the gradients' and the
// optimizer's lasting state. Nothing reaches the safety net either.
func TestTrainingStepLeavesNothing(t *testing.T) {
	for _, name := range models.Names() {
		t.Run(name, func(t *testing.T) {
			s := spec(t, name)
			m := build(t, s, 3, 2)
			m.Train(true)
			hw := smallest(s)
			opt, err := optim.NewAdam(optim.AdamConfig{LR: 1e-3}, optim.Params(m.Parameters()))
			require.NoError(t, err)
			defer opt.Free()
			step := func() error {
				return torch.WithScope(func(sc *torch.Scope) error {
					x := torch.Randn([]int64{batchFor(hw), 3, hw[0], hw[1]}, sc)
					y := torch.RandInt(0, 2, []int64{batchFor(hw), hw[0], hw[1]}, sc)
					l := torch.CrossEntropy(m.Forward(x), y, nil, torch.ReduceMean, -100, 0)
					if err := l.Backward(); err != nil {
						return err
					}
					if err := opt.Step(); err != nil {
						return err
					}
					return opt.ZeroGrad()
				})
			}
			require.NoError(t, step(), "warm-up step")
			live, leaked := leakCheck(func() { err = step() })
			require.NoError(t, err)
			assert.Zero(t, live, "a scoped training step left %d tensor handles alive", live)
			assert.Zero(t, leaked, "a scoped training step left %d tensor handles to the garbage collector's safety net", leaked)
		})
	}
}
