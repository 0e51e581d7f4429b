package models_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
)

// lrfea's keys are the reference's: one flat backbone Sequential, the
// NormLayer's "norm" child, the external attention's Conv1d memories.
func TestLRFEANetStateDictKeys(t *testing.T) {
	m, err := models.New("lrfea", models.Config{Width: 8})
	require.NoError(t, err)
	defer m.Free()
	k := stateKeys(m.StateDict())
	assert.Equal(t, "backbone.net.0.block.0.weight", k[0])
	assert.Equal(t, "fc.bias", k[len(k)-1])
	for _, h := range []string{"backbone.net.0.block.1.norm.weight", "backbone.net.1.block.4.norm.bias", "backbone.net.7.17.block.3.weight",
		"backbone.net.8.weight", "backbone.net.9.norm.bias", "backbone.net.11.3.block.0.weight",
		"head.conv1.bias", "head.linear_0.weight", "head.linear_1.weight", "head.conv2.1.norm.weight",
		"split.0.block.3.weight", "split.0.block.4.norm.bias", "fc.weight"} {
		assert.True(t, slices.Contains(k, h), "missing %s", h)
	}
	for _, h := range []string{"backbone.net.7.18.block.0.weight", "head.linear_0.bias", "split.0.block.3.bias"} {
		assert.False(t, slices.Contains(k, h), "unexpected %s", h)
	}
}

// An input lrfea cannot take is an error naming it and the sizes it takes.
func TestLRFEANetInputSides(t *testing.T) {
	m := build(t, spec(t, "lrfea"), 3, 2)
	s := torch.NewScope()
	defer s.Close()
	err := m.Forward(torch.Zeros([]int64{2, 3, 40, 48}, s)).Err()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "lrfea takes a height and width that are multiples of 16, got 40x48")
}
