package optim_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/optim"
)

// A scaled backward followed by the wrapped step moves the parameters as an
// unscaled one does; a non-finite gradient skips the step and halves the
// scale.
func TestGradScaler(t *testing.T) {
	run := func(scaler *optim.GradScaler, inject float64) []float64 {
		p := torch.FromSlice([]float32{0.5, -1, 2}, []int64{3}, torch.RequiresGrad)
		defer p.Free()
		var opt optim.Optimizer
		opt, err := optim.NewSGD(optim.SGDConfig{LR: 0.1, Momentum: 0.9}, optim.Params([]*torch.Tensor{p}))
		require.NoError(t, err)
		defer opt.Free()
		k := 1.0
		if scaler != nil {
			opt = scaler.Wrap(opt)
			k = scaler.Scale()
		}
		require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
			return s.Track(p.Mul(p)).Sum().MulScalar(k * inject).Backward()
		}))
		require.NoError(t, opt.Step())
		v, err := p.Float64s()
		require.NoError(t, err)
		return v
	}
	plain := run(nil, 1)
	g := optim.NewGradScaler()
	scaled := run(g, 1)
	for i := range plain {
		assert.InDelta(t, plain[i], scaled[i], 1e-6)
	}
	assert.Equal(t, 1, g.Stepped)
	assert.Equal(t, 65536.0, g.Scale())
	skipped := run(g, math.Inf(1))
	assert.Equal(t, []float64{0.5, -1, 2}, skipped, "a step with infinite gradients is skipped")
	assert.Equal(t, 1, g.Skipped)
	assert.Equal(t, 32768.0, g.Scale())
}
