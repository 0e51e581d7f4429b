package augment

import (
	"context"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/jmedseg/jmedseg/data"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blob returns a w×h example whose image is bright exactly where the mask
// is non-zero: an off-centre ellipse with label 1 and a square with label 3.
func blob(w, h int) *data.Example {
	img := image.NewGray(image.Rect(0, 0, w, h))
	m := data.NewMask(w, h)
	for y := range h {
		for x := range w {
			dx, dy := float64(x)-0.4*float64(w), float64(y)-0.55*float64(h)
			switch {
			case dx*dx/sq(0.25*float64(w))+dy*dy/sq(0.2*float64(h)) < 1:
				m.Set(x, y, 1)
				img.Pix[x+w*y] = 200
			case x > 3*w/4 && x < 7*w/8 && y > h/8 && y < h/4:
				m.Set(x, y, 3)
				img.Pix[x+w*y] = 120
			default:
				img.Pix[x+w*y] = 10
			}
		}
	}
	return &data.Example{Name: "blob.png", Image: img, Mask: m}
}

func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 7)) }

func geometric() map[string]data.Transform {
	return map[string]data.Transform{
		"resize":    Resize{Width: 48, Height: 40},
		"crop":      RandomResizedCrop{Width: 64, Height: 64, ScaleMin: 0.2, ScaleMax: 1},
		"hflip":     HFlip{P: 1},
		"vflip":     VFlip{P: 1},
		"rotate":    Rotate{Degrees: 180},
		"affine":    Affine{Degrees: 30, Translate: [2]float64{0.1, 0.1}, ScaleMin: 0.8, ScaleMax: 1.2, Shear: 10},
		"elastic":   Elastic{Alpha: 3, Sigma: 6},
		"phone":     PhoneScreen{Perspective: 0.1},
		"geometric": Geometric(nil),
		"sslview":   Compose(RandomResizedCrop{Width: 64, Height: 64, ScaleMin: 0.2, ScaleMax: 1}, HFlip{P: 0.5}),
	}
}

// TestGeometricAlignment checks that image and mask move together: after
// the transform, thresholding the image reproduces the mask.
func TestGeometricAlignment(t *testing.T) {
	for name, tr := range geometric() {
		t.Run(name, func(t *testing.T) {
			for seed := range uint64(5) {
				ex := blob(96, 80)
				require.NoError(t, tr.Apply(rng(seed), ex))
				b := ex.Image.Bounds()
				require.Equal(t, b.Dx(), ex.Mask.W)
				require.Equal(t, b.Dy(), ex.Mask.H)
				lum, err := data.ToCHW(ex.Image, 1)
				require.NoError(t, err)
				agree, fg := 0, 0
				for i, v := range ex.Mask.Pix {
					bright := lum.Data[i] > 0.3
					if bright == (v == 1) {
						agree++
					}
					if v != 0 {
						fg++
					}
				}
				frac := float64(agree) / float64(len(ex.Mask.Pix))
				assert.Greater(t, frac, 0.97, "seed %d", seed)
				assert.Subset(t, []int32{0, 1, 3}, ex.Mask.Labels(), "no new labels")
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	all := geometric()
	all["jitter"] = SASJitter
	all["blur"] = SASBlur
	all["sas"] = SASSupervised()
	all["ssl"] = SSLView(32, 32)
	all["phonephoto"] = PhonePhoto()
	for name, tr := range all {
		t.Run(name, func(t *testing.T) {
			a, b, c := blob(64, 48), blob(64, 48), blob(64, 48)
			require.NoError(t, tr.Apply(rng(1), a))
			require.NoError(t, tr.Apply(rng(1), b))
			require.NoError(t, tr.Apply(rng(2), c))
			assert.Equal(t, a, b)
			if name != "hflip" && name != "vflip" && name != "resize" {
				assert.NotEqual(t, a, c, "different seeds differ")
			}
		})
	}
}

func TestHFlipPairs(t *testing.T) {
	m := data.NewMask(4, 1)
	m.Pix = []int32{1, 1, 2, 5}
	ex := &data.Example{Name: "x", Image: image.NewGray(image.Rect(0, 0, 4, 1)), Mask: m}
	require.NoError(t, HFlip{P: 1, Pairs: [][2]int{{1, 2}}}.Apply(rng(0), ex))
	assert.Equal(t, []int32{5, 1, 2, 2}, ex.Mask.Pix)
	require.NoError(t, HFlip{P: 0}.Apply(rng(0), ex))
	assert.Equal(t, []int32{5, 1, 2, 2}, ex.Mask.Pix)
}

func TestVFlipExact(t *testing.T) {
	ex := blob(10, 7)
	orig := ex.Mask.Clone()
	require.NoError(t, VFlip{P: 1}.Apply(rng(0), ex))
	require.NoError(t, VFlip{P: 1}.Apply(rng(0), ex))
	assert.Equal(t, orig, ex.Mask)
}

func TestColorJitter(t *testing.T) {
	tests := []struct {
		name   string
		cj     ColorJitter
		lo, hi float64
	}{
		{"brightness", ColorJitter{Brightness: 0.5}, 0.5 * 100, 1.5 * 100},
		{"contrast", ColorJitter{Contrast: 0.4}, 100, 100}, // constant image: contrast is a no-op
		{"saturation", ColorJitter{Saturation: 0.4}, 100, 100},
		{"hue", ColorJitter{Hue: 0.5}, 100, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(10) {
				img := image.NewGray(image.Rect(0, 0, 8, 8))
				for i := range img.Pix {
					img.Pix[i] = 100
				}
				m := data.NewMask(8, 8)
				ex := &data.Example{Name: "c", Image: img, Mask: m}
				require.NoError(t, tc.cj.Apply(rng(seed), ex))
				out := ex.Image.(*image.Gray)
				v := out.Pix[0]
				for _, p := range out.Pix {
					require.Equal(t, v, p, "grey stays grey and uniform")
				}
				assert.InDelta(t, (tc.lo+tc.hi)/2, float64(v), (tc.hi-tc.lo)/2+1)
				assert.Same(t, m, ex.Mask, "colour transforms leave the mask alone")
			}
		})
	}
	assert.Error(t, ColorJitter{Hue: 0.7}.Apply(rng(0), blob(4, 4)))
}

func TestBlurAndNormalize(t *testing.T) {
	ex := blob(32, 32)
	before, _ := data.ToCHW(ex.Image, 1)
	require.NoError(t, GaussianBlur{SigmaMin: 2, SigmaMax: 2}.Apply(rng(0), ex))
	after, _ := data.ToCHW(ex.Image, 1)
	assert.Less(t, variance(after.Data), variance(before.Data))
	assert.Error(t, GaussianBlur{SigmaMin: 2, SigmaMax: 1}.Apply(rng(0), ex))

	require.NoError(t, ImageNet().Apply(rng(0), ex))
	require.NotNil(t, ex.Float)
	assert.Equal(t, []int{3, 32, 32}, ex.Float.Shape)
	want := (after.Data[0] - ImageNetMean[2]) / ImageNetStd[2]
	assert.InDelta(t, want, ex.Float.Data[2*32*32], 1e-2)
	assert.ErrorContains(t, SASBlur.Apply(rng(0), ex), "put Normalize last")
	assert.Error(t, Normalize{Mean: []float32{0, 0}, Std: []float32{1, 1}}.Apply(rng(0), blob(4, 4)))
}

func variance(x []float32) float64 {
	var s, ss float64
	for _, v := range x {
		s += float64(v)
		ss += float64(v) * float64(v)
	}
	n := float64(len(x))
	return ss/n - (s/n)*(s/n)
}

func TestErrors(t *testing.T) {
	ex := blob(8, 8)
	ex.Mask = data.NewMask(7, 8)
	for name, tr := range geometric() {
		err := tr.Apply(rng(0), ex)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), "blob.png: mask of the wrong size", name)
	}
	assert.Error(t, Resize{}.Apply(rng(0), blob(4, 4)))
	assert.Error(t, Elastic{Sigma: 0}.Apply(rng(0), blob(4, 4)))
	assert.Error(t, PhoneScreen{JPEGMin: 50, JPEGMax: 40}.Apply(rng(0), blob(4, 4)))
	assert.ErrorContains(t, SASJitter.Apply(rng(0), &data.Example{Name: "n"}), "n: no image")
}

func TestPhoneScreenChangesImage(t *testing.T) {
	ex := blob(64, 64)
	orig, _ := data.ToCHW(ex.Image, 3)
	require.NoError(t, PhonePhoto().Apply(rng(3), ex))
	out, _ := data.ToCHW(ex.Image, 3)
	var diff float64
	for i := range out.Data {
		diff += math.Abs(float64(out.Data[i] - orig.Data[i]))
	}
	assert.Greater(t, diff/float64(len(out.Data)), 0.02)
	// Colour fringes: channels differ somewhere.
	n := 64 * 64
	assert.False(t, slices.Equal(out.Data[:n], out.Data[n:2*n]))
}

func TestSixteenBit(t *testing.T) {
	img := image.NewGray16(image.Rect(0, 0, 16, 16))
	for i := range 256 {
		img.Pix[2*i] = uint8(i)
	}
	ex := &data.Example{Name: "g16", Image: img}
	require.NoError(t, Compose(Affine{Degrees: 10}, SASJitter, Rotate{Degrees: 5}).Apply(rng(0), ex))
	assert.IsType(t, &image.NRGBA64{}, ex.Image, "16-bit precision is kept")
}

func TestColorJitterGreyMatchesRGB(t *testing.T) {
	g := blob(16, 12).Image.(*image.Gray)
	for seed := range uint64(20) {
		a := &data.Example{Name: "g", Image: g}
		b := &data.Example{Name: "rgb", Image: toNRGBA(g)}
		cj := ColorJitter{Brightness: 0.4, Contrast: 0.4, Saturation: 0.4, Hue: 0.1}
		require.NoError(t, cj.Apply(rng(seed), a))
		require.NoError(t, cj.Apply(rng(seed), b))
		ga, _ := data.ToCHW(a.Image, 3)
		gb, _ := data.ToCHW(b.Image, 3)
		assert.InDeltaSlice(t, ga.Data, gb.Data, 1.0/255+1e-6, "seed %d", seed)
	}
}

func TestHueShift(t *testing.T) {
	tests := []struct {
		in   [3]float32
		h    float32
		want [3]float32
	}{
		{[3]float32{1, 0, 0}, 1.0 / 3, [3]float32{0, 1, 0}},
		{[3]float32{1, 0, 0}, -1.0 / 3, [3]float32{0, 0, 1}},
		{[3]float32{0, 1, 0}, 0.5, [3]float32{1, 0, 1}},
		{[3]float32{0.5, 0.5, 0.5}, 0.3, [3]float32{0.5, 0.5, 0.5}},
		{[3]float32{0.8, 0.4, 0.2}, 0, [3]float32{0.8, 0.4, 0.2}},
	}
	for _, tc := range tests {
		r, g, b := hueShift(tc.in[0], tc.in[1], tc.in[2], tc.h)
		assert.InDeltaSlice(t, tc.want[:], []float32{r, g, b}, 1e-5, "%v by %v", tc.in, tc.h)
	}
}

func TestWriteShifted(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, data.WriteManifest(dir, &data.Manifest{Name: "t", Classes: []string{"bg", "a", "b", "c"},
		Samples: []data.SampleInfo{{Split: "test", Image: "test/images/s0.png", Mask: "test/masks/s0.png", Subject: "x", Index: 4}}}))
	for i := range 3 {
		ex := blob(40, 32)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "test", "images"), 0o755))
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "test", "masks"), 0o755))
		name := fmt.Sprintf("s%d.png", i)
		require.NoError(t, writePNG(filepath.Join(dir, "test", "images", name), ex.Image))
		mi, _ := ex.Mask.Image()
		require.NoError(t, writePNG(filepath.Join(dir, "test", "masks", name), mi))
	}
	n, err := WriteShifted(context.Background(), dir, "test", "test_phone", PhonePhoto(), 1)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	rep, err := data.Check(context.Background(), dir, data.CheckOptions{})
	require.NoError(t, err)
	assert.True(t, rep.OK(), "%v", rep.Issues)
	assert.Equal(t, 3, rep.Splits["test_phone"].Valid)
	m, err := data.ReadManifest(dir)
	require.NoError(t, err)
	require.Len(t, m.Samples, 4)
	assert.Equal(t, data.SampleInfo{Split: "test_phone", Image: "test_phone/images/s0.png", Mask: "test_phone/masks/s0.png", Subject: "x", Index: 4}, m.Samples[1])
	_, err = WriteShifted(context.Background(), dir, "test", "test", PhonePhoto(), 1)
	assert.Error(t, err)
}

func TestTinyImages(t *testing.T) {
	all := geometric()
	all["sas"] = SASSupervised()
	all["ssl"] = SSLView(4, 4)
	all["phonephoto"] = PhonePhoto()
	for name, tr := range all {
		for _, sz := range [][2]int{{1, 1}, {1, 7}, {5, 1}, {2, 2}} {
			ex := blob(sz[0], sz[1])
			assert.NotPanics(t, func() { _ = tr.Apply(rng(1), ex) }, "%s %v", name, sz)
		}
	}
}
