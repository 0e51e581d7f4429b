package infer_test

import (
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/data/nifti"
	"github.com/jmedseg/jmedseg/data/npy"
	"github.com/jmedseg/jmedseg/infer"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
)

// sizedModel writes an untrained seeded unet (width 4, 1 channel, 2
// classes) built for size×size inputs.
func sizedModel(t testing.TB, size int) string {
	t.Helper()
	torch.ManualSeed(5)
	info := models.Info{Model: "unet", Config: models.Config{InChannels: 1, Classes: 2, Width: 4}, Classes: []string{"bg", "fg"},
		Size: [2]int{size, size}, Norm: models.DefaultNormalization()}
	m, err := models.Build(info)
	require.NoError(t, err)
	defer m.Free()
	// Untrained, this unet predicts one constant everywhere; random weights
	// (fixed by the seed) make its prediction vary over the image, so that
	// windows and flips matter.
	torch.NoGrad(func() {
		for _, e := range m.StateDict() {
			if strings.HasSuffix(e.Name, "weight") || strings.HasSuffix(e.Name, "bias") {
				require.NoError(t, e.Tensor.NormalInPlace(0, 0.4))
			}
		}
	})
	path := filepath.Join(t.TempDir(), "model.safetensors")
	require.NoError(t, models.Save(path, m, info))
	return path
}

// blobs is a w×h grey image of smooth blobs (so that an untrained model's
// prediction varies over it).
func blobs(w, h int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			v := 128 + 90*math.Sin(float64(x)/9)*math.Cos(float64(y)/13) + 30*math.Sin(float64(x+2*y)/5)
			g.Pix[y*w+x] = uint8(max(0, min(255, v)))
		}
	}
	return g
}

func crop(g *image.Gray, x0, y0, w, h int) *image.Gray {
	c := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		copy(c.Pix[y*w:(y+1)*w], g.Pix[(y0+y)*g.Stride+x0:(y0+y)*g.Stride+x0+w])
	}
	return c
}

// starts lists window starts the way MONAI's dense_patch_slices does,
// written out independently: every multiple of the stride while the window
// before it has not reached the end, the last pushed back to end flush.
func starts(n, win int, overlap float64) []int {
	stride := int(float64(win) * (1 - overlap))
	var out []int
	for s := 0; ; s += stride {
		if s+win >= n {
			out = append(out, n-win)
			return out
		}
		out = append(out, s)
	}
}

// TestSlidingWindowBruteForce: a 256×224 image with a model built at 128²,
// against the Gaussian-weighted mean of the model's probabilities on every
// window, each predicted on its own through the plain Probabilities API.
func TestSlidingWindowBruteForce(t *testing.T) {
	for _, tc := range []struct {
		win, w, h int
		overlap   float64
		windows   int
	}{
		{128, 256, 224, 0.5, 3 * 3}, // the 256² case of the issue, one side shorter
		{32, 80, 72, 0.25, 3 * 3},
	} {
		bruteForce(t, tc.win, tc.w, tc.h, tc.overlap, tc.windows)
	}
}

// bruteForce compares the sliding window on a w×h image with a model built
// at win² against the Gaussian-weighted mean of the model's probabilities
// on every window, each predicted on its own through the plain
// Probabilities API.
func bruteForce(t *testing.T, win, w, h int, overlap float64, windows int) {
	p, err := infer.NewPredictor(sizedModel(t, win), torch.CPU)
	require.NoError(t, err)
	defer p.Close()
	img := blobs(w, h)
	got, err := p.PredictWith(img, infer.Options{SlidingWindow: true, Overlap: overlap, WindowBatch: 2})
	require.NoError(t, err)
	require.Equal(t, []int{2, h, w}, got.Probs.Shape)

	sigma := 0.125 * float64(win)
	gauss := func(i int) float64 { d := float64(i) - float64(win-1)/2; return math.Exp(-d * d / (2 * sigma * sigma)) }
	floor := math.Max(gauss(0)*gauss(0), 1e-3)
	acc := make([]float64, 2*h*w)
	wsum := make([]float64, h*w)
	n := 0
	for _, y0 := range starts(h, win, overlap) {
		for _, x0 := range starts(w, win, overlap) {
			pr, err := p.Probabilities([]image.Image{crop(img, x0, y0, win, win)})
			require.NoError(t, err)
			n++
			for y := range win {
				for x := range win {
					g := math.Max(gauss(y)*gauss(x), floor)
					at := (y0+y)*w + x0 + x
					wsum[at] += g
					for c := range 2 {
						acc[c*h*w+at] += g * float64(pr[0].Data[(c*win+y)*win+x])
					}
				}
			}
		}
	}
	assert.Equal(t, windows, n)
	worst, spread := 0.0, 0.0
	for i := range acc {
		worst = math.Max(worst, math.Abs(acc[i]/wsum[i%(h*w)]-float64(got.Probs.Data[i])))
		spread = math.Max(spread, math.Abs(float64(got.Probs.Data[i]-got.Probs.Data[0])))
	}
	assert.Less(t, worst, 1e-5, "%dx%d, window %d, overlap %v: largest difference from the brute-force sum", w, h, win, overlap)
	assert.Greater(t, spread, 0.01, "the prediction varies over the image")
	checkProbs(t, got)
	// Smaller than a window: padded, cropped back.
	small, err := p.PredictWith(blobs(win*3/4, win*5/8), infer.Options{SlidingWindow: true, Overlap: 0.5})
	require.NoError(t, err)
	assert.Equal(t, []int{2, win * 5 / 8, win * 3 / 4}, small.Probs.Shape)
	checkProbs(t, small)
}

// checkProbs checks that each pixel's probabilities sum to 1 and that the
// mask is their argmax.
func checkProbs(t *testing.T, pr *infer.Prediction) {
	t.Helper()
	k, h, w := pr.Probs.Shape[0], pr.Probs.Shape[1], pr.Probs.Shape[2]
	require.Equal(t, [2]int{w, h}, [2]int{pr.Mask.W, pr.Mask.H})
	worst := 0.0
	for i := range h * w {
		s, best := 0.0, 0
		for c := range k {
			v := pr.Probs.Data[c*h*w+i]
			s += float64(v)
			if v > pr.Probs.Data[best*h*w+i] {
				best = c
			}
		}
		worst = math.Max(worst, math.Abs(s-1))
		require.Equal(t, int32(best), pr.Mask.Pix[i], "pixel %d", i)
	}
	assert.Less(t, worst, 1e-5, "probabilities sum to 1")
}

func flipGray(g *image.Gray, lr, ud bool) *image.Gray {
	b := g.Bounds()
	w, h := b.Dx(), b.Dy()
	out := image.NewGray(b)
	for y := range h {
		for x := range w {
			sx, sy := x, y
			if lr {
				sx = w - 1 - x
			}
			if ud {
				sy = h - 1 - y
			}
			out.Pix[y*w+x] = g.Pix[sy*w+sx]
		}
	}
	return out
}

// TestTTAByHand: TTA equals the mean of the probabilities of the four
// flipped images, each flipped back, computed through Probabilities.
func TestTTAByHand(t *testing.T) {
	const size = 32
	p, err := infer.NewPredictor(sizedModel(t, size), torch.CPU)
	require.NoError(t, err)
	defer p.Close()
	img := blobs(size, size)
	want := make([]float64, 2*size*size)
	for _, f := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
		pr, err := p.Probabilities([]image.Image{flipGray(img, f[0], f[1])})
		require.NoError(t, err)
		for c := range 2 {
			for y := range size {
				for x := range size {
					sx, sy := x, y
					if f[0] {
						sx = size - 1 - x
					}
					if f[1] {
						sy = size - 1 - y
					}
					want[(c*size+y)*size+x] += float64(pr[0].Data[(c*size+sy)*size+sx]) / 4
				}
			}
		}
	}
	plain, err := p.PredictWith(img, infer.Options{})
	require.NoError(t, err)
	got, err := p.PredictWith(img, infer.Options{TTA: true})
	require.NoError(t, err)
	worst, moved := 0.0, 0.0
	for i := range want {
		worst = math.Max(worst, math.Abs(want[i]-float64(got.Probs.Data[i])))
		moved = math.Max(moved, math.Abs(float64(plain.Probs.Data[i]-got.Probs.Data[i])))
	}
	assert.Less(t, worst, 1e-5)
	assert.Greater(t, moved, 1e-4, "TTA changes an untrained model's prediction")
	checkProbs(t, got)
	// With the sliding window (the window is the image) TTA is the same.
	sl, err := p.PredictWith(img, infer.Options{TTA: true, SlidingWindow: true})
	require.NoError(t, err)
	assert.InDeltaSlice(t, got.Probs.Data, sl.Probs.Data, 1e-5)
}

func TestLargestComponent(t *testing.T) {
	rows := []string{
		"11.22.",
		"11..2.",
		"...22.",
		"1....2",
		".1.111",
	}
	m := data.NewMask(6, 5)
	for y, r := range rows {
		for x, c := range r {
			if c != '.' {
				m.Set(x, y, int32(c-'0'))
			}
		}
	}
	infer.LargestComponent(m)
	want := []string{
		"11.22.",
		"11..2.",
		"...22.",
		"......", // (0,3) touches (1,4) only diagonally: 4-connectivity
		"......", // 1: the block of four wins over the 3-pixel run
	}
	for y, r := range want {
		for x, c := range r {
			v := int32(0)
			if c != '.' {
				v = int32(c - '0')
			}
			assert.Equal(t, v, m.At(x, y), "(%d,%d)", x, y)
		}
	}
}

// TestFileWithVolume: a volume predicted on its native slices with the
// sliding window, probabilities as NPY and as NIfTI.
func TestFileWithVolume(t *testing.T) {
	p, err := infer.NewPredictor(sizedModel(t, 32), torch.CPU)
	require.NoError(t, err)
	defer p.Close()
	dir := t.TempDir()
	v := &nifti.Volume{Dim: [4]int{40, 36, 3, 1}, Spacing: [3]float64{1, 1, 2}, Affine: [3][4]float64{{-1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 2, 0}}}
	g := blobs(40, 36*3)
	for _, px := range g.Pix {
		v.Data = append(v.Data, float64(px))
	}
	in := filepath.Join(dir, "vol.nii.gz")
	f, err := os.Create(in)
	require.NoError(t, err)
	require.NoError(t, nifti.Encode(f, v, nifti.DTFloat32, true))
	require.NoError(t, f.Close())
	o := infer.Options{SlidingWindow: true, Overlap: 0.5, WindowBatch: 5, TTA: true}
	out, probsNPY, probsNII := filepath.Join(dir, "seg.nii.gz"), filepath.Join(dir, "p.npy"), filepath.Join(dir, "p.nii.gz")
	require.NoError(t, p.FileWith(in, out, probsNPY, o))
	require.NoError(t, p.FileWith(in, out, probsNII, o))
	seg, err := nifti.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, [4]int{40, 36, 3, 1}, seg.Dim)
	a, err := npy.ReadFile(probsNPY)
	require.NoError(t, err)
	assert.Equal(t, []int{2, 3, 36, 40}, a.Shape)
	pv, err := nifti.ReadFile(probsNII)
	require.NoError(t, err)
	assert.Equal(t, [4]int{40, 36, 3, 2}, pv.Dim)
	assert.Equal(t, v.Affine, pv.Affine)
	n := 40 * 36 * 3
	fg := 0
	for i := range n {
		assert.InDelta(t, 1, a.Data[i]+a.Data[n+i], 1e-5)
		assert.InDelta(t, a.Data[i], pv.Data[i], 1e-6, "NPY and NIfTI agree")
		lab := 0.0
		if a.Data[n+i] > a.Data[i] {
			lab = 1
			fg++
		}
		require.Equal(t, lab, seg.Data[i], "voxel %d: the label is the argmax", i)
	}
	t.Logf("%d of %d voxels foreground", fg, n)
	// Largest component: a subset of the foreground, one 6-connected piece.
	o.LargestComponent = true
	require.NoError(t, p.FileWith(in, out, "", o))
	lc, err := nifti.ReadFile(out)
	require.NoError(t, err)
	kept := 0
	for i := range n {
		if lc.Data[i] > 0 {
			kept++
			assert.Equal(t, 1.0, seg.Data[i])
		}
	}
	assert.LessOrEqual(t, kept, fg)
	assert.Positive(t, kept)

	// Refused before predicting: probabilities of a framed volume, a bad
	// overlap.
	assert.ErrorContains(t, p.FileWith(in, out, probsNPY, infer.Options{TTA: true}), "--sliding-window")
	assert.ErrorContains(t, p.FileWith(in, out, "", infer.Options{Overlap: 1}), "want 0 <= overlap < 1")
	// The framed path with TTA and the largest component runs.
	require.NoError(t, p.FileWith(in, out, "", infer.Options{TTA: true, LargestComponent: true}))
}
