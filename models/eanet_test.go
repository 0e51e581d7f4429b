package models_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models"
)

// eanet's keys are the reference's: NormLayer's "norm" child everywhere,
// the deep stem's conv1.N and bn1, fc0/fc1's ConvBNReLU and DeconvBNReLU
// names, the external attention's conv1/linear_0/linear_1/conv2.
func TestEANetStateDictKeys(t *testing.T) {
	m, err := models.New("eanet", models.Config{Width: 4})
	require.NoError(t, err)
	defer m.Free()
	k := stateKeys(m.StateDict())
	assert.Equal(t, "backbone.conv1.0.weight", k[0])
	assert.Equal(t, "fc2.bias", k[len(k)-1])
	for _, h := range []string{"backbone.conv1.1.norm.weight", "backbone.conv1.4.norm.bias", "backbone.conv1.6.weight",
		"backbone.bn1.norm.weight", "backbone.layer3.22.bn3.norm.weight", "backbone.layer4.0.downsample.1.norm.bias",
		"backbone.layer4.2.conv2.weight", "fc0.conv.weight", "fc0.bn.norm.weight", "head.conv1.bias", "head.linear_0.weight",
		"head.linear_1.weight", "head.conv2.0.weight", "head.conv2.1.norm.weight", "fc1.0.deconv.weight", "fc1.0.bn.norm.bias"} {
		assert.True(t, slices.Contains(k, h), "missing %s", h)
	}
	assert.Empty(t, m.NamedBuffers(), "GroupNorm everywhere: no running statistics")
}
