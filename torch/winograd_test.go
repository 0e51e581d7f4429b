package torch_test

import (
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/torch"
)

const (
	kernelATen     = 0
	kernelDirect   = 1
	kernelWinograd = 2
)

func needWinograd(t *testing.T) {
	t.Helper()
	if !torch.OneDNNConv() || !torch.WinogradAvailable() {
		t.Skip("no oneDNN 2 Winograd kernels in this build (-tags nowinograd) or on this CPU")
	}
}

// conv64 is the convolution in float64 (the reference both kernels'
// float32 round-off is measured against).
func conv64(s *torch.Scope, x, w, b *torch.Tensor, pad [2]int64) *torch.Tensor {
	one := [2]int64{1, 1}
	var b64 *torch.Tensor
	if b != nil {
		b64 = s.Track(b.ToDType(torch.Float64))
	}
	return s.Track(torch.Conv2d(s.Track(x.ToDType(torch.Float64)), s.Track(w.ToDType(torch.Float64)), b64, one, pad, one, 1))
}

// errVs64 is max|got−ref| / max|ref| with got in float32.
func errVs64(t *testing.T, s *torch.Scope, got, ref *torch.Tensor) float64 {
	t.Helper()
	return relDiff(t, s.Track(got.ToDType(torch.Float64)), ref)
}

// winoCase is a convolution and the kernel expected to run it.
type winoCase struct {
	name   string
	x, w   []int64
	bias   bool
	pad    [2]int64
	layout string
	kernel int
}

// inputs draws the case's input, weight (He-like scale) and bias (nil
// without one) from seed, in the case's layout.
func (c winoCase) inputs(t *testing.T, s *torch.Scope, seed uint64) (x, w, b *torch.Tensor) {
	t.Helper()
	torch.ManualSeed(seed)
	x, w = torch.Randn(c.x, s), torch.Randn(c.w, s)
	require.NoError(t, w.MulScalarInPlace(0.05))
	if c.bias {
		b = torch.Randn([]int64{c.w[0]}, s)
	}
	return inLayout(s, x, c.layout), w, b
}

// winoCases: the kernel is the one inference takes.
var winoCases = []winoCase{
	{"64ch", []int64{1, 64, 16, 16}, []int64{64, 64, 3, 3}, true, [2]int64{1, 1}, "", kernelWinograd},
	{"no-bias-batch2-rect", []int64{2, 32, 9, 14}, []int64{48, 32, 3, 3}, false, [2]int64{1, 1}, "", kernelWinograd},
	{"valid-padding", []int64{1, 32, 12, 12}, []int64{32, 32, 3, 3}, true, [2]int64{0, 0}, "", kernelWinograd},
	{"mixed-padding", []int64{1, 32, 12, 12}, []int64{32, 32, 3, 3}, true, [2]int64{1, 0}, "", kernelWinograd},
	{"channels-last", []int64{1, 32, 8, 8}, []int64{64, 32, 3, 3}, true, [2]int64{1, 1}, "channels_last", kernelWinograd},
	{"non-contiguous", []int64{1, 32, 8, 16}, []int64{32, 32, 3, 3}, true, [2]int64{1, 1}, "strided", kernelWinograd},
	{"512ch-small-map", []int64{1, 512, 4, 4}, []int64{256, 512, 3, 3}, true, [2]int64{1, 1}, "", kernelWinograd},
	{"thin-layer", []int64{1, 8, 16, 16}, []int64{32, 8, 3, 3}, true, [2]int64{1, 1}, "", kernelDirect},
	{"padding-2", []int64{1, 32, 12, 12}, []int64{32, 32, 3, 3}, true, [2]int64{2, 2}, "", kernelDirect},
}

// TestWinogradInference: in inference the Winograd kernel runs for the
// shapes it is chosen for, its float32 error against float64 stays within
// 2e-6 of the output's scale (the direct kernel's: 1e-7 to 2e-6), and the
// output's layout follows the input's.
func TestWinogradInference(t *testing.T) {
	needWinograd(t)
	defer torch.SetWinograd(torch.SetWinograd(torch.WinogradInference))
	one := [2]int64{1, 1}
	for _, c := range winoCases {
		t.Run(c.name, func(t *testing.T) {
			s := torch.NewScope()
			defer s.Close()
			before, _ := torch.Live()
			x, w, b := c.inputs(t, s, 3)
			ref := conv64(s, x, w, b, c.pad)
			var got, direct *torch.Tensor
			var kernel int
			torch.NoGrad(func() {
				got, kernel = torch.Conv2dWhich(x, w, b, one, c.pad, one, 1)
				s.Track(got)
				torch.WithoutOneDNNConv(func() { direct = s.Track(torch.Conv2d(x, w, b, one, c.pad, one, 1)) })
			})
			require.NoError(t, got.Err())
			assert.Equal(t, c.kernel, kernel)
			assert.Equal(t, ref.Shape(), got.Shape())
			e, ed := errVs64(t, s, got, ref), errVs64(t, s, direct, ref)
			t.Logf("error vs float64: winograd %.3g, at::conv2d %.3g", e, ed)
			// Winograd's transforms add round-off: measured up to 4× the
			// direct kernel's, 1e-6 of the output's scale.
			assert.LessOrEqual(t, e, 2e-6)
			if c.layout == "channels_last" {
				assert.True(t, got.IsContiguousAs(torch.ChannelsLastFormat), "channels-last in, channels-last out")
			}
			s.Close()
			torch.ClearWinogradCache()
			after, _ := torch.Live()
			assert.Equal(t, before, after, "no handles leak")
		})
	}
}

// TestWinogradCache: a weight is packed once per input shape, an in-place
// update of it or a new tensor is never served stale packed values, and a
// freed weight's entries go.
func TestWinogradCache(t *testing.T) {
	needWinograd(t)
	defer torch.SetWinograd(torch.SetWinograd(torch.WinogradInference))
	torch.ClearWinogradCache()
	s := torch.NewScope()
	defer s.Close()
	one := [2]int64{1, 1}
	x := torch.Randn([]int64{1, 32, 8, 8}, s)
	w := torch.Randn([]int64{32, 32, 3, 3}, s)
	conv := func(x, w *torch.Tensor) *torch.Tensor {
		var y *torch.Tensor
		var k int
		torch.NoGrad(func() { y, k = torch.Conv2dWhich(x, w, nil, one, one, one, 1) })
		require.Equal(t, kernelWinograd, k)
		return s.Track(y)
	}
	check := func(y, x, w *torch.Tensor) {
		t.Helper()
		assert.LessOrEqual(t, errVs64(t, s, y, conv64(s, x, w, nil, one)), 1e-5)
	}
	y1 := conv(x, w)
	check(y1, x, w)
	n, bytes := torch.WinogradCache()
	assert.Equal(t, 1, n)
	assert.Greater(t, bytes, int64(32*32*9*4), "packed weights are larger than the plain ones")
	conv(x, w)
	n, _ = torch.WinogradCache()
	assert.Equal(t, 1, n, "the same weight and shape reuse the entry")

	// In place: the version counter moves, the entry is repacked.
	require.NoError(t, w.MulScalarInPlace(-2))
	check(conv(x, w), x, w)
	// A copy into the weight (as loading a checkpoint does).
	w2 := torch.Randn([]int64{32, 32, 3, 3}, s)
	require.NoError(t, w.CopyFrom(w2))
	check(conv(x, w), x, w2)

	// Another input shape: a second entry for the weight.
	x2 := torch.Randn([]int64{2, 32, 6, 10}, s)
	check(conv(x2, w), x2, w)
	n, _ = torch.WinogradCache()
	assert.Equal(t, 2, n)

	// A freed weight: its entries are dropped at the next packing.
	w3 := torch.Randn([]int64{32, 32, 3, 3})
	check(conv(x, w3), x, w3)
	n, _ = torch.WinogradCache()
	assert.Equal(t, 3, n)
	w3.Free()
	n, _ = torch.WinogradCache()
	assert.Equal(t, 2, n, "a freed weight's entry no longer counts")
	w4 := torch.Randn([]int64{32, 32, 3, 3}, s) // may reuse w3's memory
	check(conv(x, w4), x, w4)

	// Not a mode: nothing changes.
	assert.Equal(t, torch.WinogradInference, torch.SetWinograd(torch.WinogradMode(7)))
	assert.Equal(t, torch.WinogradInference, torch.Winograd())

	// Switching the mode empties the cache.
	torch.SetWinograd(torch.WinogradOff)
	n, bytes = torch.WinogradCache()
	assert.Equal(t, 0, n)
	assert.Zero(t, bytes)
	var k int
	torch.NoGrad(func() { _, k = torch.Conv2dWhich(x, w, nil, one, one, one, 1) })
	assert.Equal(t, kernelDirect, k, "off: the direct kernel")
}

// trainCases: the kernel is the one taken with gradients recorded (from
// 1024 output pixels per batch).
var trainCases = []winoCase{
	{"64ch", []int64{1, 64, 32, 32}, []int64{64, 64, 3, 3}, true, [2]int64{1, 1}, "", kernelWinograd},
	{"no-bias-batch2-rect", []int64{2, 32, 20, 30}, []int64{48, 32, 3, 3}, false, [2]int64{1, 1}, "", kernelWinograd},
	{"valid-padding", []int64{1, 32, 36, 36}, []int64{32, 32, 3, 3}, true, [2]int64{0, 0}, "", kernelWinograd},
	{"mixed-padding", []int64{1, 32, 34, 32}, []int64{32, 32, 3, 3}, true, [2]int64{1, 0}, "", kernelWinograd},
	{"channels-last", []int64{1, 32, 32, 32}, []int64{64, 32, 3, 3}, true, [2]int64{1, 1}, "channels_last", kernelWinograd},
	{"small-map", []int64{2, 64, 16, 16}, []int64{64, 64, 3, 3}, true, [2]int64{1, 1}, "", kernelDirect},
}

// TestWinogradTraining: with WinogradTraining the forward and the
// gradients of x, w and b are the float64 ones to 5e-6 of their scale
// (the direct kernel's error is up to 10× smaller on the input gradient); with WinogradInference a recorded convolution stays direct.
func TestWinogradTraining(t *testing.T) {
	needWinograd(t)
	defer torch.SetWinograd(torch.SetWinograd(torch.WinogradInference))
	one := [2]int64{1, 1}
	for _, c := range trainCases {
		t.Run(c.name, func(t *testing.T) {
			s := torch.NewScope()
			defer s.Close()
			before, _ := torch.Live()
			x0, w0, b0 := c.inputs(t, s, 5)
			g := torch.Randn(conv64(s, x0, w0, b0, c.pad).Shape(), s)
			run := func(dt torch.DType, mode torch.WinogradMode) (y *torch.Tensor, grads []*torch.Tensor, kernel int) {
				defer torch.SetWinograd(torch.SetWinograd(mode))
				// Fresh leaves each run (ToDType to the same dtype would alias).
				leaf := func(v *torch.Tensor) *torch.Tensor { return s.Track(s.Track(v.ToDType(dt)).Detach()) }
				ps := []*torch.Tensor{leaf(x0), leaf(w0)}
				if b0 != nil {
					ps = append(ps, leaf(b0))
				}
				for _, p := range ps {
					require.NoError(t, p.SetRequiresGrad(true))
				}
				var b *torch.Tensor
				if len(ps) == 3 {
					b = ps[2]
				}
				y, kernel = torch.Conv2dWhich(ps[0], ps[1], b, one, c.pad, one, 1)
				s.Track(y)
				require.NoError(t, y.Err())
				require.NoError(t, y.Mul(s.Track(g.ToDType(dt))).Sum().Backward())
				for _, p := range ps {
					grads = append(grads, s.Track(p.Grad()))
				}
				return y, grads, kernel
			}
			y64, g64, _ := run(torch.Float64, torch.WinogradTraining)
			y, gw, k := run(torch.Float32, torch.WinogradTraining)
			assert.Equal(t, c.kernel, k)
			yd, gd, kd := run(torch.Float32, torch.WinogradInference)
			assert.Equal(t, kernelDirect, kd, "a recorded convolution stays direct in inference mode")
			// Training takes F(4×4,3×3) more often than inference's F(2×2,3×3).
			assert.LessOrEqual(t, errVs64(t, s, y, y64), 2e-6)
			assert.LessOrEqual(t, errVs64(t, s, yd, y64), 2e-6)
			for i := range g64 {
				require.NoError(t, gw[i].Err())
				e, ed := errVs64(t, s, gw[i], g64[i]), errVs64(t, s, gd[i], g64[i])
				t.Logf("gradient %d error vs float64: winograd %.3g, direct %.3g", i, e, ed)
				assert.LessOrEqual(t, e, 5e-6, "gradient %d", i) // measured up to 10× direct's
				assert.LessOrEqual(t, ed, 5e-6, "gradient %d", i)
			}
			if c.layout == "channels_last" {
				assert.True(t, gw[0].IsContiguousAs(torch.ChannelsLastFormat))
			}
			s.Close()
			after, _ := torch.Live()
			assert.Equal(t, before, after, "no handles leak")
		})
	}
}

// TestWinogradConcurrent: goroutines convolving with one weight (as serve's
// workers share a model) get the same outputs as one alone.
func TestWinogradConcurrent(t *testing.T) {
	needWinograd(t)
	defer torch.SetWinograd(torch.SetWinograd(torch.WinogradInference))
	torch.ClearWinogradCache()
	s := torch.NewScope()
	defer s.Close()
	one := [2]int64{1, 1}
	w := torch.Randn([]int64{32, 32, 3, 3}, s)
	xs := []*torch.Tensor{torch.Randn([]int64{1, 32, 8, 8}, s), torch.Randn([]int64{2, 32, 10, 6}, s)}
	var want []*torch.Tensor
	torch.NoGrad(func() {
		for _, x := range xs {
			want = append(want, s.Track(torch.Conv2dOneDNN(x, w, nil, one, one, one, 1)))
		}
	})
	torch.ClearWinogradCache()
	var wg sync.WaitGroup
	diffs := make([]float64, 8)
	for g := range diffs {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for i := 0; i < 5; i++ {
				j := (g + i) % len(xs)
				gs := torch.NewScope()
				torch.NoGrad(func() {
					y := gs.Track(torch.Conv2dOneDNN(xs[j], w, nil, one, one, one, 1))
					d, err := y.Sub(want[j]).Abs().Max().Item()
					if err == nil && d > diffs[g] {
						diffs[g] = d
					}
				})
				gs.Close()
			}
		}(g)
	}
	wg.Wait()
	for g, d := range diffs {
		assert.Zero(t, d, "goroutine %d", g)
	}
}
