package models_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
)

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
