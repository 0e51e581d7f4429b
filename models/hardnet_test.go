package models_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
)

// hardnet and hardalter list their heads before the backbone, in the
// reference's registration order; BasicConv2d has "conv" and "bn" only.
func TestHarDMSEGStateDictKeys(t *testing.T) {
	for _, tc := range []struct {
		name, first string
		has, hasNot []string
	}{
		{"hardnet", "rfb2_1.branch0.0.conv.weight",
			[]string{"rfb4_1.branch3.3.bn.running_var", "rfb3_1.conv_cat.conv.weight", "rfb2_1.conv_res.bn.bias",
				"agg1.conv_upsample5.conv.weight", "agg1.conv_concat3.bn.weight", "agg1.conv4.conv.weight", "agg1.conv5.bias",
				"hardnet.base.0.conv.weight", "hardnet.base.14.layers.3.norm.running_mean"},
			[]string{"rfb1_1.branch0.0.conv.weight", "agg1.conv_upsample6.conv.weight", "agg1.conv_concat4.conv.weight", "rfb2_1.conv_cat.conv.bias"}},
		{"hardalter", "rfb1_1.branch0.0.conv.weight",
			[]string{"rfb1_1.conv_res.bn.weight", "agg1.conv_upsample6.conv.weight", "agg1.conv_concat4.bn.running_mean", "agg1.conv5.weight"},
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := models.New(tc.name, models.Config{Width: 4})
			require.NoError(t, err)
			defer m.Free()
			k := stateKeys(m.StateDict())
			assert.Equal(t, tc.first, k[0])
			assert.Equal(t, "hardnet.base.15.norm.num_batches_tracked", k[len(k)-1])
			for _, h := range tc.has {
				assert.True(t, slices.Contains(k, h), "missing %s", h)
			}
			for _, h := range tc.hasNot {
				assert.False(t, slices.Contains(k, h), "unexpected %s", h)
			}
		})
	}
}

// An input the HarD-MSEG models cannot take is an error naming the model
// and the sizes it takes.
func TestHarDMSEGInputSides(t *testing.T) {
	for _, name := range []string{"hardnet", "hardalter"} {
		m := build(t, spec(t, name), 3, 2)
		s := torch.NewScope()
		for _, hw := range [][2]int64{{16, 16}, {48, 64}} {
			err := m.Forward(torch.Zeros([]int64{2, 3, hw[0], hw[1]}, s)).Err()
			require.Error(t, err)
			assert.Contains(t, err.Error(), name+" takes a height and width that are multiples of 32, got "+sizeName(hw))
		}
		s.Close()
	}
}
