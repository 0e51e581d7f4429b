package report

import (
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/jmedseg/jmedseg/metric"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// square returns a w×h label map with label l on the rectangle r.
func square(w, h int, r image.Rectangle, l int64) []int64 {
	m := make([]int64, w*h)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			m[y*w+x] = l
		}
	}
	return m
}

func TestOverlayHandCase(t *testing.T) {
	// 5×5, truth a 3×3 square at (1..3, 1..3), prediction the same square
	// one column to the right. Enlarged ×3.
	const w, h = 5, 5
	truth := square(w, h, image.Rect(1, 1, 4, 4), 1)
	pred := square(w, h, image.Rect(2, 1, 5, 4), 1)
	grey := image.NewGray(image.Rect(0, 0, w, h))
	for i := range grey.Pix {
		grey.Pix[i] = 100
	}
	out, err := Overlay(grey, truth, pred, w, h, "")
	require.NoError(t, err)
	s := OverlayScale(w, h)
	require.Equal(t, 3, s)
	require.Equal(t, image.Rect(0, 0, w*s, h*s), out.Bounds())

	// Boundary pixels: a 4-neighbour with another label or off the image.
	boundary := func(m []int64, x, y int) bool {
		l := m[y*w+x]
		if l == 0 {
			return false
		}
		for _, d := range []image.Point{{-1, 0}, {1, 0}, {0, -1}, {0, 1}} {
			nx, ny := x+d.X, y+d.Y
			if nx < 0 || ny < 0 || nx >= w || ny >= h || m[ny*w+nx] != l {
				return true
			}
		}
		return false
	}
	greyC := color.RGBA{100, 100, 100, 255}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var green, red bool
			for by := 0; by < s; by++ {
				for bx := 0; bx < s; bx++ {
					switch c := out.RGBAAt(x*s+bx, y*s+by); c {
					case TruthColor:
						green = true
					case PredColor:
						red = true
					case BothColor:
						green, red = true, true
					default:
						assert.Equal(t, greyC, c, "pixel (%d,%d) sub (%d,%d)", x, y, bx, by)
					}
				}
			}
			assert.Equal(t, boundary(truth, x, y), green, "truth outline at (%d,%d)", x, y)
			assert.Equal(t, boundary(pred, x, y), red, "prediction outline at (%d,%d)", x, y)
			// The centre of an enlarged pixel is never on an outline.
			assert.Equal(t, greyC, out.RGBAAt(x*s+1, y*s+1))
		}
	}
	// Pixel (2,1): top edge of both squares (yellow), left edge of the
	// prediction only (red); pixel (1,1): the truth's top-left corner.
	assert.Equal(t, BothColor, out.RGBAAt(2*s+1, 1*s))
	assert.Equal(t, BothColor, out.RGBAAt(2*s, 1*s))
	assert.Equal(t, PredColor, out.RGBAAt(2*s, 1*s+1))
	assert.Equal(t, TruthColor, out.RGBAAt(1*s, 1*s+1))
	assert.Equal(t, TruthColor, out.RGBAAt(1*s+1, 1*s))
	// Pixel (4,2): the prediction's right edge meets the image border.
	assert.Equal(t, PredColor, out.RGBAAt(4*s+2, 2*s+1))
}

func TestOverlayScaleOneExact(t *testing.T) {
	// Wide enough to stay at scale 1: outlines are exactly the boundary
	// pixels. Two classes side by side: both sides of their border count.
	const w, h = 340, 6
	truth := make([]int64, w*h)
	for y := 1; y < 5; y++ {
		for x := 10; x < 14; x++ {
			truth[y*w+x] = 1
		}
		for x := 14; x < 18; x++ {
			truth[y*w+x] = 2
		}
	}
	pred := make([]int64, w*h)
	out, err := Overlay(nil, truth, pred, w, h, "")
	require.NoError(t, err)
	require.Equal(t, 1, OverlayScale(w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			inside := y >= 1 && y < 5 && x >= 10 && x < 18
			edge := inside && (y == 1 || y == 4 || x == 10 || x == 13 || x == 14 || x == 17)
			want := color.RGBA{0, 0, 0, 255}
			if edge {
				want = TruthColor
			}
			require.Equal(t, want, out.RGBAAt(x, y), "(%d,%d)", x, y)
		}
	}
}

func TestOverlayColourImageAndCaption(t *testing.T) {
	const w, h = 200, 100
	img := image.NewRGBA(image.Rect(10, 20, 10+w, 20+h)) // offset bounds
	fillRect(img, img.Rect, color.RGBA{10, 20, 200, 255})
	lab := make([]int64, w*h)
	out, err := Overlay(img, lab, lab, w, h, Caption(Worst, 1, "case_07/slice 12", metric.Score(0.4312)))
	require.NoError(t, err)
	s := OverlayScale(w, h)
	assert.Equal(t, 2, s)
	assert.Equal(t, image.Rect(0, 0, w*s, h*s+CaptionHeight), out.Bounds())
	assert.Equal(t, color.RGBA{10, 20, 200, 255}, out.RGBAAt(5, 5))
	strip := out.SubImage(image.Rect(0, h*s, w*s, h*s+CaptionHeight))
	assert.Greater(t, countColor(strip, captionFg), 20)
	assert.Greater(t, countColor(strip, captionBg), 20)
}

func TestOverlayErrors(t *testing.T) {
	ok := make([]int64, 16)
	for _, c := range []struct {
		name        string
		img         image.Image
		truth, pred []int64
		w, h        int
	}{
		{"short truth", nil, ok[:15], ok, 4, 4},
		{"short pred", nil, ok, ok[:3], 4, 4},
		{"image size", image.NewGray(image.Rect(0, 0, 5, 4)), ok, ok, 4, 4},
		{"zero size", nil, nil, nil, 0, 4},
	} {
		_, err := Overlay(c.img, c.truth, c.pred, c.w, c.h, "x")
		assert.Error(t, err, c.name)
	}
}

func TestCaptionAndNames(t *testing.T) {
	assert.Equal(t, "best 2: a  Dice 0.9500", Caption(Best, 2, "a", 0.95))
	assert.Equal(t, "b  Dice -", Caption("", 0, "b", metric.Score(math.NaN())))
	assert.Equal(t, "case_07_slice_12", SafeName("case/07 slice:12"))
	assert.Equal(t, "_", SafeName(".."))
	for _, w := range []int{1, 64, 128} {
		assert.Equal(t, 3, OverlayScale(w, w))
	}
	assert.Equal(t, 2, OverlayScale(256, 200))
	assert.Equal(t, 1, OverlayScale(512, 512))
}

func TestGray(t *testing.T) {
	g, err := Gray([]float32{-1, 0, 1, float32(math.NaN())}, 2, 2)
	require.NoError(t, err)
	assert.Equal(t, []uint8{0, 128, 255, 0}, g.Pix)
	g, err = Gray([]float32{3, 3}, 2, 1)
	require.NoError(t, err)
	assert.Equal(t, []uint8{0, 0}, g.Pix)
	_, err = Gray([]float32{1}, 2, 1)
	assert.Error(t, err)
}

// evalReport scores a few 8×8 images with 4 classes, class 3 never present.
func evalReport(t *testing.T) metric.Report {
	t.Helper()
	e := metric.NewEvaluator(4, []string{"background", "liver", "tumour", "cyst"}, -1)
	const w, h = 8, 8
	add := func(id string, truth, pred []int64) {
		require.NoError(t, e.Add(id, "vol1", pred, truth, h, w, [2]float64{0.8, 0.8}))
	}
	liver := square(w, h, image.Rect(1, 1, 6, 6), 1)
	add("perfect", liver, liver)
	add("shifted", liver, square(w, h, image.Rect(2, 2, 7, 7), 1))
	tum := square(w, h, image.Rect(2, 2, 4, 4), 2)
	add("tumour/missed", tum, make([]int64, w*h))
	add("empty", make([]int64, w*h), make([]int64, w*h))
	return e.Report()
}

func TestSaveOverlays(t *testing.T) {
	dir := t.TempDir()
	rep := evalReport(t)
	var asked []string
	paths, err := SaveOverlays(dir, "test set", rep, 2, func(id string) (Sample, error) {
		asked = append(asked, id)
		for _, r := range rep.PerImage {
			if r.ID == id {
				return Sample{Truth: make([]int64, 64), Pred: make([]int64, 64), W: 8, H: 8}, nil
			}
		}
		return Sample{}, os.ErrNotExist
	})
	require.NoError(t, err)
	// "empty" has no defined Dice; best of the rest first.
	assert.Equal(t, []string{"perfect", "shifted", "tumour/missed"}, asked)
	assert.Equal(t, []string{
		"overlays/test_set/best-1-perfect.png",
		"overlays/test_set/best-2-shifted.png",
		"overlays/test_set/worst-1-tumour_missed.png",
	}, paths)
	for _, p := range paths {
		img := decodePNG(t, filepath.Join(dir, p))
		assert.Equal(t, image.Rect(0, 0, 24, 24+CaptionHeight), img.Bounds())
	}
	noTemps(t, dir)

	_, err = SaveOverlays(dir, "x", rep, 1, func(string) (Sample, error) { return Sample{}, os.ErrNotExist })
	assert.ErrorIs(t, err, os.ErrNotExist)
}
