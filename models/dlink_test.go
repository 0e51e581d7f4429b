package models_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// The reference's sigmoid output (DLinkOptions.Sigmoid) equals the twin's.
func TestDLinkSigmoidMatchesPyTorch(t *testing.T) {
	runTwinParity(t, []twinParityCase{{name: "dlink-sigmoid", twin: "dlink.DLinkNet50Sigmoid", width: 4,
		build: func(c models.Config) nn.Module { return models.NewDLinkNet(c, models.DLinkOptions{Sigmoid: true}) }}},
		[][2]int64{{64, 64}})
}

// dlink's keys are the reference's: the ResNet-50 taken apart as firstconv,
// firstbn, encoder1..4, then dblock, decoder4..1 and the final convs; the
// D-block's biases start at zero.
func TestDLinkStateDictKeys(t *testing.T) {
	m, err := models.New("dlink", models.Config{Width: 4})
	require.NoError(t, err)
	defer m.Free()
	k := stateKeys(m.StateDict())
	assert.Equal(t, "firstconv.weight", k[0])
	assert.Equal(t, "finalconv3.bias", k[len(k)-1])
	for _, h := range []string{"firstbn.running_var", "encoder1.0.downsample.0.weight", "encoder3.5.conv3.weight",
		"encoder4.2.bn3.num_batches_tracked", "dblock.dilate1.weight", "dblock.dilate5.bias", "decoder4.conv1.weight",
		"decoder1.norm3.running_mean", "finaldeconv1.weight", "finalconv2.weight"} {
		assert.True(t, slices.Contains(k, h), "missing %s", h)
	}
	for _, p := range m.NamedParameters() {
		if strings.HasPrefix(p.Name, "dblock.") && strings.HasSuffix(p.Name, ".bias") {
			v, err := p.Tensor.Float32s()
			require.NoError(t, err)
			assert.False(t, slices.ContainsFunc(v, func(f float32) bool { return f != 0 }), p.Name)
		}
	}
}
