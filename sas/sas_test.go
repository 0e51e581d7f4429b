package sas_test

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/internal/oracle"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/sas"
	"github.com/jmedseg/jmedseg/torch"
)

func TestInfoNCEMatchesPyTorch(t *testing.T) {
	const py = "F.cross_entropy(torch.cat([(a * b).sum(1, keepdim=True), a @ c.t()], 1) / 0.07, torch.zeros(a.shape[0], dtype=torch.long))"
	norm := func(x *torch.Tensor) *torch.Tensor { return x.Div(x.Norm(2, []int64{1}, true)) }
	oracle.Check(t, []oracle.Case{{
		Name: "infonce", In: []oracle.Input{oracle.F64(4, 8), oracle.F64(4, 8), oracle.NoGrad(oracle.F64(16, 8))},
		Setup: "a = a / a.norm(dim=1, keepdim=True); b = b / b.norm(dim=1, keepdim=True); c = c / c.norm(dim=1, keepdim=True)",
		Py:    py,
		Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return oracle.One(sas.InfoNCE(norm(x[0]), norm(x[1]), norm(x[2]), 0.07))
		},
	}})
}

// The STN starts as the identity: the wrapped model gives the bare model's
// output, and gradients reach the localisation head.
func TestSTNStartsAsIdentity(t *testing.T) {
	torch.ManualSeed(3)
	net, err := models.New("unet", models.Config{InChannels: 1, Classes: 2, Width: 4})
	require.NoError(t, err)
	w := sas.NewWithSTN(1, net)
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

func TestInvert(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	theta := torch.FromSlice([]float64{1.1, 0.2, 0.1, -0.15, 0.9, -0.05, 0.8, 0, 0.3, 0, 1.2, 0}, []int64{2, 2, 3}, s)
	back, err := sas.Invert(sas.Invert(theta)).Float64s()
	require.NoError(t, err)
	want, _ := theta.Float64s()
	assert.InDeltaSlice(t, want, back, 1e-12)
	// θ ∘ θ⁻¹ is the identity on homogeneous coordinates.
	row := torch.FromSlice([]float64{0, 0, 1}, []int64{1, 1, 3}, s).Expand(2, 1, 3)
	full := func(m *torch.Tensor) *torch.Tensor { return torch.Cat([]*torch.Tensor{m, row}, 1) }
	id, err := full(theta).Bmm(full(sas.Invert(theta))).Float64s()
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float64{1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1}, id, 1e-12)
}

func TestPretrain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "brain")
	_, err := data.Prepare(context.Background(), data.PrepareOptions{Out: dir, Size: 64})
	require.NoError(t, err)
	ds, err := data.Open(dir)
	require.NoError(t, err)
	samples, err := ds.Split("train")
	require.NoError(t, err)
	torch.ManualSeed(1)
	m, err := models.New("unet", models.Config{InChannels: 1, Classes: 2, Width: 4})
	require.NoError(t, err)
	defer m.Free()
	before, _ := m.StateDict()[0].Tensor.Float32s()
	n0, _ := torch.Live()
	losses, err := sas.Pretrain(context.Background(), m.(sas.Encoder), samples, sas.PretrainOptions{Epochs: 2, Batch: 8, LR: 1e-3,
		Queue: 20, Size: [2]int{64, 64}, Channels: 1, Workers: 2, Device: torch.CPU})
	require.NoError(t, err)
	require.Len(t, losses, 2)
	for _, l := range losses {
		assert.False(t, math.IsNaN(l))
		assert.Greater(t, l, 0.0)
	}
	after, _ := m.StateDict()[0].Tensor.Float32s()
	assert.NotEqual(t, before, after, "the encoder was trained")
	n1, _ := torch.Live()
	assert.Equal(t, n0, n1, "pretraining frees what it creates")

	_, err = sas.Pretrain(context.Background(), m.(sas.Encoder), samples[:1], sas.PretrainOptions{Size: [2]int{64, 64}, Channels: 1})
	require.ErrorContains(t, err, "at least 2 images")
}
