// Package fusetest holds what the BatchNorm-folding tests of models and
// models/encoder share.
package fusetest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// RandomiseBatchNorms moves the running statistics and affine parameters
// of every BatchNorm of m that keeps statistics away from their initial
// values (mean 0, var 1, γ 1, β 0, which make folding nearly the
// identity), so that a wrong fold shows; it returns how many it changed.
func RandomiseBatchNorms(t *testing.T, m nn.Node) int {
	t.Helper()
	n := 0
	torch.NoGrad(func() {
		s := torch.NewScope()
		defer s.Close()
		for _, nm := range m.NamedModules() {
			bn, ok := nm.Node.(*nn.BatchNorm)
			if !ok || bn.RunningMean == nil {
				continue
			}
			n++
			sh := bn.RunningMean.Shape()
			require.NoError(t, bn.RunningMean.CopyFrom(s.Track(torch.Randn(sh)).MulScalar(0.2)))
			require.NoError(t, bn.RunningVar.CopyFrom(s.Track(torch.Rand(sh)).AddScalar(0.5)))
			if bn.Weight != nil {
				require.NoError(t, bn.Weight.CopyFrom(s.Track(torch.Rand(sh)).AddScalar(0.5)))
				require.NoError(t, bn.Bias.CopyFrom(s.Track(torch.Randn(sh)).MulScalar(0.2)))
			}
		}
	})
	return n
}

// Forward runs m on x in inference mode and returns the output's values
// (the output freed).
func Forward(t *testing.T, m nn.Module, x *torch.Tensor) []float32 {
	t.Helper()
	var v []float32
	torch.InferenceMode(func() {
		y := m.Forward(x)
		defer y.Free()
		var err error
		v, err = y.Float32s()
		require.NoError(t, err)
	})
	return v
}
