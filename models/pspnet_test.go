package models_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// liveBatchNormStats sets m's BatchNorm running statistics near the
// identity: means 0.1·N(0, 1), variances 0.5 + U(0, 1). The registry's
// parity test adds U(0, 1) to the means, which through ResNet-101's 33
// blocks at a small width switches off every ReLU: the output is then a
// constant and every parameter but the last bias gets a zero gradient, so
// the parity of pspnet, danet, ocnet and ocrnet is checked again with these
// statistics (and every gradient non-zero).
func liveBatchNormStats(t *testing.T, m nn.Module) {
	for _, b := range m.NamedBuffers() {
		if !b.Tensor.DType().IsFloat() {
			continue
		}
		require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
			v := torch.Rand(b.Tensor.Shape(), b.Tensor.DType(), s).AddScalar(0.5)
			if strings.HasSuffix(b.Name, "running_mean") {
				v = torch.Randn(b.Tensor.Shape(), b.Tensor.DType(), s).MulScalar(0.1)
			}
			var err error
			torch.NoGrad(func() { err = b.Tensor.CopyFrom(v) })
			return err
		}), b.Name)
	}
}

// requireAllGradients fails t for each parameter of m whose gradient is
// missing or zero, but for those named in exempt.
func requireAllGradients(t *testing.T, m nn.Module, exempt ...string) {
	s := torch.NewScope()
	defer s.Close()
	for _, p := range m.NamedParameters() {
		if slices.Contains(exempt, p.Name) {
			continue
		}
		g := p.Tensor.Grad()
		require.NotNil(t, g, "%s has no gradient", p.Name)
		v, err := s.Track(g).Abs().Max().Item()
		require.NoError(t, err)
		assert.NotZero(t, v, "%s has a zero gradient: the parity test does not reach it", p.Name)
	}
}

// With live BatchNorm statistics pspnet equals its twin and every
// parameter's gradient is checked.
func TestPSPNetLiveMatchesPyTorch(t *testing.T) {
	var m nn.Module
	runTwinParity(t, []twinParityCase{{name: "pspnet", twin: "pspnet.PSPNet", width: 4,
		build: func(c models.Config) nn.Module { return models.NewPSPNet(c) },
		edit:  func(t *testing.T, n nn.Module) { liveBatchNormStats(t, n); m = n }}}, [][2]int64{{96, 96}})
	require.NotNil(t, m)
	requireAllGradients(t, m)
}

// pspnet's keys are the reference's: the deep-stem backbone's conv1.N, the
// pyramid bins as layer5a..d, final_conv's Sequential indices.
func TestPSPNetStateDictKeys(t *testing.T) {
	m, err := models.New("pspnet", models.Config{Width: 4})
	require.NoError(t, err)
	defer m.Free()
	k := stateKeys(m.StateDict())
	assert.Equal(t, "backbone.conv1.0.weight", k[0])
	assert.Equal(t, "final_conv.4.bias", k[len(k)-1])
	for _, h := range []string{"backbone.conv1.1.running_mean", "backbone.conv1.4.weight", "backbone.conv1.6.weight",
		"backbone.layer3.22.bn3.weight", "backbone.layer4.0.downsample.1.running_var", "backbone.layer4.2.conv2.weight",
		"layer5a.conv.1.weight", "layer5d.conv.2.num_batches_tracked", "final_conv.0.weight", "final_conv.1.bias"} {
		assert.True(t, slices.Contains(k, h), "missing %s", h)
	}
	for _, h := range []string{"backbone.conv1.7.weight", "backbone.bn1.weight", "layer5a.conv.1.bias", "final_conv.0.bias"} {
		assert.False(t, slices.Contains(k, h), "unexpected %s", h)
	}
}

// pspnet takes multiples of 16 from 96 (its 6×6 bin needs a 6×6 map at
// 1/16); anything else is an error naming it and those sizes.
func TestPSPNetInputSides(t *testing.T) {
	s := spec(t, "pspnet")
	assert.Equal(t, int64(96), s.MinSide())
	m := build(t, s, 3, 2)
	sc := torch.NewScope()
	defer sc.Close()
	for _, hw := range [][2]int64{{64, 64}, {80, 128}, {100, 96}} {
		err := m.Forward(torch.Zeros([]int64{2, 3, hw[0], hw[1]}, sc)).Err()
		require.Error(t, err, sizeName(hw))
		assert.Contains(t, err.Error(), "pspnet takes a height and width that are multiples of 16 and at least 96, got "+sizeName(hw))
	}
	require.NoError(t, m.Forward(torch.Zeros([]int64{2, 3, 96, 112}, sc)).Err())
}
