package models_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
)

// resunet's layer0..layer3 are the backbone's conv1 and layer1..3: both
// names are in the state dict and the checkpoint (BatchNorm buffers too),
// the parameters count once.
func TestResUNetAliases(t *testing.T) {
	checkAliases(t, aliasCase{name: "resunet", width: 4, hw: [2]int64{32, 48}, aliases: [][2]string{
		{"backbone.conv1", "layer0"}, {"backbone.layer1", "layer1"}, {"backbone.layer2", "layer2"}, {"backbone.layer3", "layer3"}}})
}

// resunet's keys are the reference's, in PyTorch's state_dict() order,
// without the backbone's unused layer4.
func TestResUNetStateDictKeys(t *testing.T) {
	m, err := models.New("resunet", models.Config{Width: 4})
	require.NoError(t, err)
	defer m.Free()
	k := stateKeys(m.StateDict())
	assert.Equal(t, "backbone.conv1.0.weight", k[0])
	assert.Equal(t, "outc.conv.bias", k[len(k)-1])
	for _, h := range []string{"backbone.conv1.6.weight", "backbone.layer3.22.bn3.running_var", "layer0.1.num_batches_tracked",
		"layer1.0.downsample.1.weight", "layer3.22.conv3.weight", "bottleneck.double_conv.4.running_mean",
		"conv_decode3.conv.double_conv.0.weight", "conv_decode0.conv.double_conv.3.bias"} {
		assert.True(t, slices.Contains(k, h), "missing %s", h)
	}
	assert.False(t, slices.ContainsFunc(k, func(s string) bool { return len(s) > 15 && s[:15] == "backbone.layer4" }))
	assert.Less(t, slices.Index(k, "backbone.layer3.22.bn3.num_batches_tracked"), slices.Index(k, "layer0.0.weight"))
	assert.Less(t, slices.Index(k, "layer3.22.bn3.num_batches_tracked"), slices.Index(k, "bottleneck.double_conv.0.weight"))
}

// Inputs that are not multiples of 16 are errors naming the model.
func TestResUNetErrors(t *testing.T) {
	m, err := models.New("resunet", models.Config{Width: 4})
	require.NoError(t, err)
	defer m.Free()
	s := torch.NewScope()
	defer s.Close()
	for _, hw := range [][2]int64{{8, 8}, {24, 32}, {32, 40}} {
		err := m.Forward(torch.Zeros([]int64{1, 3, hw[0], hw[1]}, s)).Err()
		require.ErrorContains(t, err, "resunet takes a height and width that are multiples of 16", "%v", hw)
	}
}
