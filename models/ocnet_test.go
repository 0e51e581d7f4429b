package models_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// paramByName returns m's parameter called name, failing t without one.
func paramByName(t *testing.T, m nn.Module, name string) *torch.Tensor {
	for _, p := range m.NamedParameters() {
		if p.Name == name {
			return p.Tensor
		}
	}
	t.Fatalf("no parameter %s", name)
	return nil
}

// ocnet's keys are the reference's, and the object context's scale_conv
// starts with a zero weight (its bias as PyTorch initialises it).
func TestOCNetStateDictKeysAndZeroInit(t *testing.T) {
	m, err := models.New("ocnet", models.Config{Width: 4})
	require.NoError(t, err)
	defer m.Free()
	k := stateKeys(m.StateDict())
	assert.Equal(t, "backbone.conv1.0.weight", k[0])
	assert.Equal(t, "head.conv_2.1.bias", k[len(k)-1])
	for _, h := range []string{"backbone.conv1.6.weight", "backbone.layer4.2.bn3.running_var", "head.conv_0.0.weight",
		"head.conv_0.1.running_mean", "head.oc.query_conv.bias", "head.oc.key_conv.weight", "head.oc.value_conv.weight",
		"head.oc.scale_conv.weight", "head.oc.scale_conv.bias", "head.conv_1.0.weight", "head.conv_2.1.weight"} {
		assert.True(t, slices.Contains(k, h), "missing %s", h)
	}
	assert.False(t, slices.Contains(k, "head.conv_0.0.bias"))
	s := torch.NewScope()
	defer s.Close()
	w, err := s.Track(paramByName(t, m, "head.oc.scale_conv.weight").Abs()).Max().Item()
	require.NoError(t, err)
	assert.Zero(t, w)
	b, err := s.Track(paramByName(t, m, "head.oc.scale_conv.bias").Abs()).Max().Item()
	require.NoError(t, err)
	assert.NotZero(t, b)
}

// The zero scale_conv weight hides the attention from the registry's
// parity test; with it set (and live BatchNorm statistics) ocnet equals its
// twin, and every parameter gets a gradient (but the key's bias, to which a
// softmax over keys is blind). Not at 16×16, where the 1×1 map makes the
// attention a constant 1.
func TestOCNetAttentionMatchesPyTorch(t *testing.T) {
	var built []nn.Module
	runTwinParity(t, []twinParityCase{{name: "ocnet", twin: "ocnet.OCNet", width: 4,
		build: func(c models.Config) nn.Module { return models.NewOCNet(c) },
		edit: func(t *testing.T, m nn.Module) {
			liveBatchNormStats(t, m)
			require.NoError(t, nn.Uniform(paramByName(t, m, "head.oc.scale_conv.weight"), -0.2, 0.2))
			built = append(built, m)
		}}}, [][2]int64{{32, 32}, {64, 96}})
	require.Len(t, built, 2)
	for _, m := range built {
		requireAllGradients(t, m, "head.oc.key_conv.bias")
	}
}

// An input ocnet cannot take is an error naming it and the sizes it takes.
func TestOCNetInputSides(t *testing.T) {
	m := build(t, spec(t, "ocnet"), 3, 2)
	s := torch.NewScope()
	defer s.Close()
	err := m.Forward(torch.Zeros([]int64{2, 3, 40, 48}, s)).Err()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ocnet takes a height and width that are multiples of 16, got 40x48")
}
