package models_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
)

// The STN starts as the identity: the wrapped model gives the bare model's
// output, and gradients reach the localisation head.
func TestSTNStartsAsIdentity(t *testing.T) {
	torch.ManualSeed(3)
	net, err := models.New("unet", models.Config{InChannels: 1, Classes: 2, Width: 4})
	require.NoError(t, err)
	w := models.NewWithSTN(1, net)
	require.NoError(t, w.Err())
	defer w.Free()
	w.Eval()
	s := torch.NewScope()
	defer s.Close()
	x := torch.Rand([]int64{2, 1, 32, 32}, s)
	var a, b []float32
	torch.NoGrad(func() {
		a, err = w.Forward(x).Float32s()
		require.NoError(t, err)
		b, err = net.Forward(x).Float32s()
		require.NoError(t, err)
	})
	for i := range a {
		require.InDelta(t, b[i], a[i], 1e-4)
	}
	keys := map[string]bool{}
	for _, n := range w.StateDict() {
		keys[n.Name] = true
	}
	assert.True(t, keys["stn.fc_loc.2.bias"] && keys["net.inc.double_conv.0.weight"], "state-dict layout stn.*, net.*")

	w.Train(true)
	require.NoError(t, w.Forward(x).Sum().Backward())
	for _, p := range w.NamedParameters() {
		if p.Name == "stn.fc_loc.2.weight" {
			g := s.Track(p.Tensor.Grad())
			require.NotNil(t, g)
			n, _ := g.Norm(2, nil, false).Item()
			assert.Greater(t, n, 0.0, "the transform learns from the segmentation loss")
		}
	}
}

func TestInvertAffine(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	theta := torch.FromSlice([]float64{1.1, 0.2, 0.1, -0.15, 0.9, -0.05, 0.8, 0, 0.3, 0, 1.2, 0}, []int64{2, 2, 3}, s)
	back, err := models.InvertAffine(models.InvertAffine(theta)).Float64s()
	require.NoError(t, err)
	want, _ := theta.Float64s()
	assert.InDeltaSlice(t, want, back, 1e-12)
	// θ ∘ θ⁻¹ is the identity on homogeneous coordinates.
	row := torch.FromSlice([]float64{0, 0, 1}, []int64{1, 1, 3}, s).Expand(2, 1, 3)
	full := func(m *torch.Tensor) *torch.Tensor { return torch.Cat([]*torch.Tensor{m, row}, 1) }
	id, err := full(theta).Bmm(full(models.InvertAffine(theta))).Float64s()
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float64{1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1}, id, 1e-12)
}

// An unscoped call of the wrapper leaves nothing for the garbage
// collector: the result is the caller's, every intermediate is freed.
func TestSTNUnscopedForwardLeaksNothing(t *testing.T) {
	net, err := models.New("unet", models.Config{InChannels: 1, Classes: 2, Width: 4})
	require.NoError(t, err)
	w := models.NewWithSTN(1, net)
	require.NoError(t, w.Err())
	defer w.Free()
	w.Eval()
	x := torch.Rand([]int64{1, 1, 32, 32})
	defer x.Free()
	n0, _ := torch.Live()
	torch.NoGrad(func() {
		for range 3 {
			y := w.Forward(x)
			require.NoError(t, y.Err())
			y.Free()
		}
	})
	n1, _ := torch.Live()
	assert.Equal(t, n0, n1, "live tensors after unscoped forwards")
}
