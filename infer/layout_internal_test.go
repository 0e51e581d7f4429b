package infer

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
)

// autoLayout decides once per input shape, returns the contiguous model's
// logits (to float32 round-off) in the contiguous layout, and frees what
// its timing runs made.
func TestAutoLayoutPerShape(t *testing.T) {
	torch.ManualSeed(3)
	m, err := models.New("unet", models.Config{InChannels: 3, Classes: 2, Width: 4})
	require.NoError(t, err)
	defer m.Free()
	m.Eval()
	a := newAutoLayout(m)
	for _, shape := range [][4]int64{{1, 3, 32, 32}, {2, 3, 16, 48}, {1, 3, 32, 32}} {
		torch.InferenceMode(func() {
			s := torch.NewScope()
			defer s.Close()
			x := torch.Randn(shape[:], s)
			want := m.Forward(x)
			before, _ := torch.Live()
			got := a.Forward(x)
			require.NoError(t, got.Err())
			after, _ := torch.Live()
			assert.Equal(t, before+1, after, "only the result is left")
			cl, decided := a.ChannelsLast(shape)
			assert.True(t, decided)
			t.Logf("%v: channels-last %v", shape, cl)
			assert.True(t, got.IsContiguousAs(torch.ContiguousFormat), "contiguous logits")
			d, err := got.Sub(want).Abs().Max().Item()
			require.NoError(t, err)
			scale, err := want.Abs().Max().Item()
			require.NoError(t, err)
			assert.LessOrEqual(t, d/max(scale, 1), 1e-5)
		})
	}
	assert.Len(t, a.choice, 2, "one decision per shape")
	// Inputs it does not time pass through: a failed one keeps its error.
	y := a.Forward(torch.FromError(assert.AnError))
	assert.ErrorIs(t, y.Err(), assert.AnError)
}
