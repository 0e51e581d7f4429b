package torch_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/torch"
)

// TestWinogradPieces: a batch whose oneDNN buffers would pass the cap runs
// in pieces (the last one shorter), each image as right as a whole batch's;
// contiguous and channels-last, with and without a bias.
func TestWinogradPieces(t *testing.T) {
	needWinograd(t)
	defer torch.SetWinograd(torch.SetWinograd(torch.WinogradInference))
	defer torch.SetWinogradBuffers(torch.SetWinogradBuffers(1 << 20))
	one := [2]int64{1, 1}
	for _, c := range []winoCase{
		{"contiguous", []int64{5, 32, 20, 30}, []int64{48, 32, 3, 3}, true, one, "", kernelWinograd},
		{"channels-last-no-bias", []int64{3, 64, 24, 24}, []int64{32, 64, 3, 3}, false, one, "channels_last", kernelWinograd},
		{"valid-padding", []int64{4, 32, 30, 30}, []int64{32, 32, 3, 3}, true, [2]int64{0, 0}, "", kernelWinograd},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := torch.NewScope()
			defer s.Close()
			x, w, b := c.inputs(t, s, 3)
			before := torch.WinogradPieces()
			var y *torch.Tensor
			var k int
			torch.NoGrad(func() { y, k = torch.Conv2dWhich(x, w, b, one, c.pad, one, 1) })
			s.Track(y)
			require.Equal(t, kernelWinograd, k)
			assert.Equal(t, before+1, torch.WinogradPieces(), "ran in pieces")
			assert.LessOrEqual(t, errVs64(t, s, y, conv64(s, x, w, b, c.pad)), 2e-6)
			if c.layout == "channels_last" {
				assert.True(t, y.IsContiguousAs(torch.ChannelsLastFormat), "the output keeps the input's layout")
			}
			// The whole batch at once (a cap it fits under): the same kernel,
			// the same answer to round-off.
			prev := torch.SetWinogradBuffers(1 << 40)
			var whole *torch.Tensor
			torch.NoGrad(func() { whole, k = torch.Conv2dWhich(x, w, b, one, c.pad, one, 1) })
			s.Track(whole)
			torch.SetWinogradBuffers(prev)
			require.Equal(t, kernelWinograd, k)
			assert.Equal(t, before+1, torch.WinogradPieces(), "in one call")
			assert.LessOrEqual(t, relDiff(t, s.Track(y.ToDType(torch.Float64)), s.Track(whole.ToDType(torch.Float64))), 2e-6)
		})
	}
	assert.Equal(t, int64(1<<20), torch.SetWinogradBuffers(0), "below 1 changes nothing")
}

// TestWinogradLayoutShared: input shapes whose kernels take the weight in
// the same layout share one packed copy, so a server cycling through batch
// sizes 1 to 8 packs each weight a few times once (here 3 layouts for 5
// sizes), instead of repacking as shapes come and go.
func TestWinogradLayoutShared(t *testing.T) {
	needWinograd(t)
	defer torch.SetWinograd(torch.SetWinograd(torch.WinogradInference))
	torch.ClearWinogradCache()
	s := torch.NewScope()
	defer s.Close()
	one := [2]int64{1, 1}
	w := torch.Randn([]int64{64, 64, 3, 3}, s)
	var settled int
	for cycle := range 2 {
		for _, n := range []int64{1, 2, 3, 4, 8} {
			x := torch.Randn([]int64{n, 64, 16, 16}, s)
			var y *torch.Tensor
			var k int
			torch.NoGrad(func() { y, k = torch.Conv2dWhich(x, w, nil, one, one, one, 1) })
			s.Track(y)
			require.Equal(t, kernelWinograd, k)
			assert.LessOrEqual(t, errVs64(t, s, y, conv64(s, x, w, nil, one)), 1e-5, "batch %d", n)
			entries, _ := torch.WinogradCache()
			if cycle == 0 {
				settled = entries
				t.Logf("batch %d: %d packed", n, entries)
			} else {
				assert.Equal(t, settled, entries, "second cycle, batch %d: nothing repacked", n)
			}
		}
	}
	assert.Less(t, settled, 5, "fewer packed copies than shapes")
}

// TestWinogradScratch: a training step's oneDNN buffers come from one
// reused block: once grown (the first step), kept between steps and not
// grown by a repeat, freed by EmptyCPUCache, and not kept with the cache
// off.
func TestWinogradScratch(t *testing.T) {
	needWinograd(t)
	defer torch.SetWinograd(torch.SetWinograd(torch.WinogradTraining))
	one := [2]int64{1, 1}
	c := winoCase{"scratch", []int64{4, 32, 16, 16}, []int64{32, 32, 3, 3}, true, one, "", kernelWinograd}
	step := func() {
		s := torch.NewScope()
		defer s.Close()
		x, w, b := c.inputs(t, s, 7)
		for _, p := range []*torch.Tensor{x, w, b} {
			require.NoError(t, p.SetRequiresGrad(true))
		}
		y, k := torch.Conv2dWhich(x, w, b, one, c.pad, one, 1)
		s.Track(y)
		require.Equal(t, kernelWinograd, k)
		require.NoError(t, s.Track(y.Sum()).Backward())
		require.NoError(t, s.Track(w.Grad()).Err())
	}
	torch.EmptyCPUCache()
	require.Zero(t, torch.CPUScratch())
	step() // grows the block to the largest call's needs
	step()
	kept := torch.CPUScratch()
	assert.Positive(t, kept, "kept for the next step")
	// Three oneDNN calls of a 4×32×16² convolution need well under 64 MiB.
	assert.Less(t, kept, int64(64<<20))
	step()
	assert.Equal(t, kept, torch.CPUScratch(), "a repeat reuses the block")
	torch.EmptyCPUCache()
	assert.Zero(t, torch.CPUScratch())
	defer torch.SetCPUCache(torch.SetCPUCache(0))
	step()
	assert.Zero(t, torch.CPUScratch(), "nothing kept with the cache off")
}

// TestWinogradTrainingPieces: a training convolution whose buffers would
// pass the cap runs forward and backward in pieces of the batch (the
// weight and bias gradients summed over them), as right as in one call.
func TestWinogradTrainingPieces(t *testing.T) {
	needWinograd(t)
	defer torch.SetWinograd(torch.SetWinograd(torch.WinogradTraining))
	one := [2]int64{1, 1}
	for _, c := range []winoCase{
		{"contiguous", []int64{5, 32, 20, 30}, []int64{48, 32, 3, 3}, true, one, "", kernelWinograd},
		{"channels-last-no-bias", []int64{3, 64, 24, 24}, []int64{32, 64, 3, 3}, false, one, "channels_last", kernelWinograd},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := torch.NewScope()
			defer s.Close()
			x0, w0, b0 := c.inputs(t, s, 11)
			g := torch.Randn(conv64(s, x0, w0, b0, c.pad).Shape(), s)
			// run returns the output and the gradients of x, w (and b).
			run := func(dt torch.DType, buffers int64) []*torch.Tensor {
				defer torch.SetWinogradBuffers(torch.SetWinogradBuffers(buffers))
				ps := []*torch.Tensor{s.Track(s.Track(x0.ToDType(dt)).Detach()), s.Track(s.Track(w0.ToDType(dt)).Detach())}
				var b *torch.Tensor
				if b0 != nil {
					b = s.Track(s.Track(b0.ToDType(dt)).Detach())
					ps = append(ps, b)
				}
				for _, p := range ps {
					require.NoError(t, p.SetRequiresGrad(true))
				}
				y, k := torch.Conv2dWhich(ps[0], ps[1], b, one, c.pad, one, 1)
				s.Track(y)
				if dt == torch.Float32 {
					require.Equal(t, kernelWinograd, k)
				}
				require.NoError(t, s.Track(y.Mul(s.Track(g.ToDType(dt))).Sum()).Backward())
				out := []*torch.Tensor{y}
				for _, p := range ps {
					out = append(out, s.Track(p.Grad()))
				}
				return out
			}
			ref := run(torch.Float64, 1<<40)
			before := torch.WinogradPieces()
			pieces := run(torch.Float32, 1<<20)
			assert.Equal(t, before+2, torch.WinogradPieces(), "forward and backward in pieces")
			whole := run(torch.Float32, 1<<40)
			assert.Equal(t, before+2, torch.WinogradPieces(), "in one call")
			for i := range ref {
				assert.LessOrEqual(t, errVs64(t, s, pieces[i], ref[i]), 5e-6, "output or gradient %d", i)
				assert.LessOrEqual(t, errVs64(t, s, pieces[i], s.Track(whole[i].ToDType(torch.Float64))), 5e-6, "pieces vs one call, %d", i)
			}
			if c.layout == "channels_last" {
				assert.True(t, pieces[1].IsContiguousAs(torch.ChannelsLastFormat), "the input gradient keeps the layout")
			}
		})
	}
}
