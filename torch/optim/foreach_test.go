package optim_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/optim"
)

// runSteps trains three parameters for 8 steps with build's optimizer; on
// steps 3 and 6 the second parameter gets no gradient, so that its step
// count falls behind the others' (the multi-tensor step buckets them).
func runSteps(t *testing.T, build func([]optim.Group) (optim.Optimizer, error)) [][]float64 {
	t.Helper()
	torch.ManualSeed(7)
	shapes := [][]int64{{4, 3}, {5}, {2, 2, 2}}
	var ps []*torch.Tensor
	for _, s := range shapes {
		p := torch.Randn(s, torch.RequiresGrad)
		ps = append(ps, p)
		defer p.Free()
	}
	opt, err := build([]optim.Group{optim.Params(ps[:2]), {Params: ps[2:], LR: 0.003, WeightDecay: optim.Float(0.05)}})
	require.NoError(t, err)
	defer opt.Free()
	for step := 0; step < 8; step++ {
		require.NoError(t, opt.ZeroGrad())
		require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
			loss := s.Track(ps[0].Sin()).Sum().Add(s.Track(ps[2].Mul(ps[2])).Sum())
			if step%3 != 2 {
				loss = loss.Add(s.Track(ps[1].Cos()).Sum())
			}
			return loss.Backward()
		}))
		require.NoError(t, opt.Step())
	}
	var out [][]float64
	for _, p := range ps {
		v, err := p.Float64s()
		require.NoError(t, err)
		out = append(out, v)
	}
	return out
}

// The multi-tensor step equals the per-tensor one (the same kernels run, so
// on the CPU bit for bit), also with parameters at different step counts.
func TestForeachEqualsPerTensorStep(t *testing.T) {
	cases := []struct {
		name string
		mk   func(optim.Impl) func([]optim.Group) (optim.Optimizer, error)
	}{
		{"adam", func(i optim.Impl) func([]optim.Group) (optim.Optimizer, error) {
			return adam(optim.AdamConfig{LR: 0.01, WeightDecay: 0.01, Impl: i})
		}},
		{"adam_amsgrad", func(i optim.Impl) func([]optim.Group) (optim.Optimizer, error) {
			return adam(optim.AdamConfig{LR: 0.01, AMSGrad: true, Betas: [2]float64{0.8, 0.99}, Impl: i})
		}},
		{"adamw", func(i optim.Impl) func([]optim.Group) (optim.Optimizer, error) {
			return adamw(optim.AdamConfig{LR: 0.01, WeightDecay: 0.1, Impl: i})
		}},
		{"sgd", func(i optim.Impl) func([]optim.Group) (optim.Optimizer, error) {
			return sgd(optim.SGDConfig{LR: 0.05, Impl: i})
		}},
		{"sgd_momentum", func(i optim.Impl) func([]optim.Group) (optim.Optimizer, error) {
			return sgd(optim.SGDConfig{LR: 0.05, Momentum: 0.9, Dampening: 0.1, WeightDecay: 1e-3, Impl: i})
		}},
		{"sgd_nesterov", func(i optim.Impl) func([]optim.Group) (optim.Optimizer, error) {
			return sgd(optim.SGDConfig{LR: 0.05, Momentum: 0.9, Nesterov: true, Impl: i})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			loop := runSteps(t, c.mk(optim.ImplPerTensor))
			multi := runSteps(t, c.mk(optim.ImplForeach))
			auto := runSteps(t, c.mk(optim.ImplAuto)) // CPU parameters: per-tensor
			worst := 0.0
			for i := range loop {
				for j := range loop[i] {
					worst = math.Max(worst, math.Abs(loop[i][j]-multi[i][j])/(1+math.Abs(loop[i][j])))
					require.Equal(t, loop[i][j], auto[i][j])
				}
			}
			require.LessOrEqual(t, worst, 1e-7)
			t.Logf("%s: largest relative difference %.3g", c.name, worst)
		})
	}
}
