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

// hrnet's keys follow the reference's nesting: the transitions' Sequential
// inside a Sequential, empty fuse entries, the last stage fusing to
// branch 0 only.
func TestHRNetStateDictKeys(t *testing.T) {
	m, err := models.New("hrnet", models.Config{Width: 4})
	require.NoError(t, err)
	defer m.Free()
	k := stateKeys(m.StateDict())
	assert.Equal(t, "conv1.weight", k[0])
	assert.Equal(t, "final_layer.bias", k[len(k)-1])
	for _, h := range []string{"layer1.0.downsample.0.weight", "layer1.3.bn3.running_var", "transition1.0.0.weight",
		"transition1.1.0.0.weight", "transition2.2.0.0.weight", "transition3.3.0.1.running_mean",
		"stage2.0.branches.1.3.conv2.weight", "stage3.3.fuse_layers.0.2.0.weight", "stage3.3.fuse_layers.2.0.1.0.weight",
		"stage4.2.fuse_layers.0.3.1.num_batches_tracked", "stage4.1.fuse_layers.3.0.2.1.num_batches_tracked"} {
		assert.True(t, slices.Contains(k, h), "missing %s", h)
	}
	for _, h := range []string{"layer1.1.downsample.0.weight", "stage4.2.fuse_layers.1.0.0.0.weight", "transition2.0.0.weight"} {
		assert.False(t, slices.Contains(k, h), "unexpected %s", h)
	}
}

// An input hrnet cannot take is an error naming it and the sizes it takes.
func TestHRNetInputSides(t *testing.T) {
	m := build(t, spec(t, "hrnet"), 3, 2)
	s := torch.NewScope()
	defer s.Close()
	err := m.Forward(torch.Zeros([]int64{2, 3, 20, 16}, s)).Err()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "hrnet takes a height and width that are multiples of 8, got 20x16")
}

func stateKeys(sd []nn.Named) []string {
	out := make([]string, len(sd))
	for i, n := range sd {
		out[i] = n.Name
	}
	return out
}
