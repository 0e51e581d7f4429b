package infer_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/infer"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
)

// With JITBatches the jit engine builds those batch sizes only (all of
// them at Warm, none after): batches of every count from 1 past the
// largest size (padded up, or run in pieces) give the eager logits to
// 1e-5, and nothing leaks.
func TestJITBatchesPadded(t *testing.T) {
	path := modelFile(t, models.DefaultNormalization())
	imgs := images(11)
	eager, err := infer.NewPredictorWith(path, torch.CPU, infer.LoadOptions{Layout: infer.LayoutContiguous})
	require.NoError(t, err)
	defer eager.Close()
	want, err := eager.Logits(imgs)
	require.NoError(t, err)
	jp, err := infer.NewPredictorWith(path, torch.CPU, infer.LoadOptions{Engine: infer.EngineJIT, JITBatches: []int{4, 1}})
	require.NoError(t, err)
	defer jp.Close()
	assert.Equal(t, 0, eager.JITBuilds())
	require.NoError(t, jp.Warm([]int{1, 4}))
	assert.Equal(t, 2, jp.JITBuilds())
	l0 := torch.SettleLeaks()
	live, _ := torch.Live()
	for _, n := range []int{1, 2, 3, 4, 5, 8, 11} {
		got, err := jp.Logits(imgs[:n])
		require.NoError(t, err, "batch %d", n)
		require.Len(t, got, n)
		for i := range got {
			assert.Equal(t, want[i].Shape, got[i].Shape)
			rel, _ := relDiff(got[i].Data, want[i].Data)
			assert.LessOrEqual(t, rel, jitTol, "batch %d, image %d", n, i)
		}
	}
	assert.Equal(t, 2, jp.JITBuilds(), "no build after Warm")
	after, _ := torch.Live()
	assert.Equal(t, live, after)
	assert.Equal(t, l0, torch.SettleLeaks(), "tensors the garbage collector freed")

	for _, tc := range []struct {
		opt  infer.LoadOptions
		want string
	}{
		{infer.LoadOptions{Engine: "jit", JITBatches: []int{1, 2, 4, 8, 16}}, "at most 4"},
		{infer.LoadOptions{Engine: "jit", JITBatches: []int{0}}, "batch size 0: want 1 to 16"},
		{infer.LoadOptions{Engine: "jit", JITBatches: []int{17}}, "batch size 17"},
		{infer.LoadOptions{Engine: "jit", JITBatches: []int{2, 2}}, "each once"},
		{infer.LoadOptions{JITBatches: []int{1}}, "without the jit engine"},
	} {
		_, err := infer.NewPredictorWith(path, torch.CPU, tc.opt)
		assert.ErrorContains(t, err, tc.want, "%v", tc.opt.JITBatches)
	}
	assert.ErrorContains(t, jp.Warm([]int{0}), "batch size 0")
}
