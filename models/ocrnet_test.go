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

// ocrnet's keys are the reference's, in its order (backbone, head,
// get_context, conv_3x3), and the head's conv_1x1 starts with a zero
// weight.
func TestOCRNetStateDictKeysAndZeroInit(t *testing.T) {
	m, err := models.New("ocrnet", models.Config{Width: 4})
	require.NoError(t, err)
	defer m.Free()
	k := stateKeys(m.StateDict())
	assert.Equal(t, "backbone.conv1.0.weight", k[0])
	assert.Equal(t, "conv_3x3.1.num_batches_tracked", k[len(k)-1])
	order := []string{"backbone.layer4.2.bn3.running_var", "head.conv_1x1.weight", "head.conv_1x1.bias", "head.last_conv.weight",
		"head.last_conv.bias", "get_context.0.weight", "get_context.0.bias", "get_context.1.running_mean", "get_context.4.weight",
		"get_context.4.bias", "conv_3x3.0.weight", "conv_3x3.0.bias", "conv_3x3.1.weight"}
	last := -1
	for _, h := range order {
		i := slices.Index(k, h)
		assert.Greater(t, i, last, "%s missing or out of order", h)
		last = i
	}
	s := torch.NewScope()
	defer s.Close()
	w, err := s.Track(paramByName(t, m, "head.conv_1x1.weight").Abs()).Max().Item()
	require.NoError(t, err)
	assert.Zero(t, w)
}

// The zero conv_1x1 weight hides the object context from the registry's
// parity test; with it set (and live BatchNorm statistics) ocrnet equals
// its twin, with the published relation (the default) and the reference's
// (ReferenceRelation), and every parameter gets a gradient. Not at 16×16,
// where the 1×1 map makes the region softmax a constant 1.
func TestOCRNetContextMatchesPyTorch(t *testing.T) {
	var built []nn.Module
	edit := func(t *testing.T, m nn.Module) {
		liveBatchNormStats(t, m)
		require.NoError(t, nn.Uniform(paramByName(t, m, "head.conv_1x1.weight"), -0.2, 0.2))
		built = append(built, m)
	}
	build := func(o models.OCRNetOptions) func(c models.Config) nn.Module {
		return func(c models.Config) nn.Module { return models.NewOCRNet(c, o) }
	}
	runTwinParity(t, []twinParityCase{
		{name: "ocrnet", twin: "ocrnet.OCRNet", width: 4, build: build(models.OCRNetOptions{}), edit: edit},
		{name: "ocrnet-reference-relation", twin: "ocrnet.OCRNetReferenceRelation", width: 4,
			build: build(models.OCRNetOptions{ReferenceRelation: true}), edit: edit},
	}, [][2]int64{{32, 32}, {64, 96}})
	require.Len(t, built, 4)
	for _, m := range built {
		requireAllGradients(t, m)
	}
}

// ReferenceRelation changes the output once conv_1x1 moves.
func TestOCRNetReferenceRelationDiffers(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	c := models.Config{InChannels: 3, Classes: 2, Width: 4}
	x := torch.Randn([]int64{2, 3, 64, 64}, s)
	var outs []*torch.Tensor
	for _, o := range []models.OCRNetOptions{{}, {ReferenceRelation: true}} {
		torch.ManualSeed(3)
		m := models.NewOCRNet(c, o)
		require.NoError(t, m.Err())
		defer m.Free()
		require.NoError(t, nn.Uniform(paramByName(t, m, "head.conv_1x1.weight"), -0.5, 0.5))
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

// An input ocrnet cannot take is an error naming it and the sizes it takes.
func TestOCRNetInputSides(t *testing.T) {
	m := build(t, spec(t, "ocrnet"), 3, 2)
	s := torch.NewScope()
	defer s.Close()
	err := m.Forward(torch.Zeros([]int64{2, 3, 40, 48}, s)).Err()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ocrnet takes a height and width that are multiples of 16, got 40x48")
}
