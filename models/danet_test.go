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

// danet's keys are the reference's: the deep-stem backbone, the head's
// Sequentials and the two attention scales.
func TestDANetStateDictKeys(t *testing.T) {
	m, err := models.New("danet", models.Config{Width: 4})
	require.NoError(t, err)
	defer m.Free()
	k := stateKeys(m.StateDict())
	assert.Equal(t, "backbone.conv1.0.weight", k[0])
	assert.Equal(t, "head.conv8.1.bias", k[len(k)-1])
	for _, h := range []string{"backbone.conv1.6.weight", "backbone.layer4.2.bn3.running_var", "head.conv5a.0.weight",
		"head.conv5c.1.running_mean", "head.sa.gamma", "head.sa.query_conv.bias", "head.sa.key_conv.weight",
		"head.sa.value_conv.weight", "head.sc.gamma", "head.conv51.1.weight", "head.conv52.0.weight"} {
		assert.True(t, slices.Contains(k, h), "missing %s", h)
	}
	assert.Less(t, slices.Index(k, "head.sa.gamma"), slices.Index(k, "head.sa.query_conv.weight"), "a module's own parameters come first, as in PyTorch")
	for _, h := range []string{"head.conv5a.0.bias", "head.conv6.1.weight", "head.conv7.1.weight"} {
		assert.False(t, slices.Contains(k, h), "unexpected %s", h)
	}
}

// DANet's attention scales start at zero, which hides the attention from
// the registry's parity test (its weights get no gradient); with them set,
// the model equals its twin, with the reference's channel attention (the
// default) and with the official code's (OfficialCAM), and every parameter
// gets a gradient (but the key's bias, to which a softmax over keys is
// blind: its gradient is rounding). Not at 16×16: there the map is 1×1 and
// the position attention a constant 1, whose queries and keys get none.
func TestDANetAttentionMatchesPyTorch(t *testing.T) {
	var built []nn.Module
	gammas := func(t *testing.T, m nn.Module) {
		liveBatchNormStats(t, m)
		setParam(t, m, "head.sa.gamma", 0.7)
		setParam(t, m, "head.sc.gamma", -0.4)
		built = append(built, m)
	}
	build := func(o models.DANetOptions) func(c models.Config) nn.Module {
		return func(c models.Config) nn.Module { return models.NewDANet(c, o) }
	}
	runTwinParity(t, []twinParityCase{
		{name: "danet", twin: "danet.DANet", width: 4, build: build(models.DANetOptions{}), edit: gammas},
		{name: "danet-official-cam", twin: "danet.DANetOfficialCAM", width: 4, build: build(models.DANetOptions{OfficialCAM: true}), edit: gammas},
	}, [][2]int64{{32, 32}, {64, 96}})
	require.Len(t, built, 4)
	for _, m := range built {
		requireAllGradients(t, m, "head.sa.key_conv.bias")
	}
}

// OfficialCAM changes the output once the channel attention's scale moves
// (in training mode, where BatchNorm gives the attention features of unit
// scale; at initialisation in eval mode they are too small for the two
// softmaxes to differ).
func TestDANetOfficialCAMDiffers(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	c := models.Config{InChannels: 3, Classes: 2, Width: 4}
	x := torch.Randn([]int64{2, 3, 64, 64}, s)
	var outs []*torch.Tensor
	for _, o := range []models.DANetOptions{{}, {OfficialCAM: true}} {
		torch.ManualSeed(3)
		m := models.NewDANet(c, o)
		require.NoError(t, m.Err())
		defer m.Free()
		setParam(t, m, "head.sc.gamma", 0.5)
		var y *torch.Tensor
		torch.ManualSeed(4) // the same dropout mask
		torch.NoGrad(func() { y = m.Forward(x) })
		require.NoError(t, y.Err())
		outs = append(outs, y)
	}
	d, err := outs[0].Sub(outs[1]).Abs().Max().Item()
	require.NoError(t, err)
	assert.Greater(t, d, 1e-6)
}

// An input danet cannot take is an error naming it and the sizes it takes.
func TestDANetInputSides(t *testing.T) {
	m := build(t, spec(t, "danet"), 3, 2)
	s := torch.NewScope()
	defer s.Close()
	err := m.Forward(torch.Zeros([]int64{2, 3, 40, 48}, s)).Err()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "danet takes a height and width that are multiples of 16, got 40x48")
}
