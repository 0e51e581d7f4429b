package report

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodePNG reads a PNG file.
func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	img, err := png.Decode(bytes.NewReader(b))
	require.NoError(t, err)
	return img
}

// countColor counts the pixels of img exactly equal to c.
func countColor(img image.Image, c color.Color) int {
	want := rgba(c)
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if rgba(img.At(x, y)) == want {
				n++
			}
		}
	}
	return n
}

// noTemps fails if dir holds a temporary file left by writeAtomic.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		require.NoError(t, err)
		assert.NotContains(t, d.Name(), ".tmp-", "temporary file left: %s", p)
		return nil
	}))
}

func TestLinePlot(t *testing.T) {
	nan := math.NaN()
	magenta := color.RGBA{0xcc, 0x00, 0xcc, 0xff}
	cases := []struct {
		name   string
		plot   Plot
		colors []color.Color // each must appear
	}{
		{"two series, palette", Plot{Title: "Loss", XLabel: "epoch", YLabel: "loss", Series: []Series{
			{Name: "train", X: []float64{1, 2, 3, 4}, Y: []float64{1, 0.6, 0.4, 0.3}},
			{Name: "val", X: []float64{1, 2, 3, 4}, Y: []float64{1.1, 0.8, 0.7, 0.65}},
		}}, []color.Color{Palette[0], Palette[1]}},
		{"own colour, gaps, fixed range", Plot{Title: "Dice", YMin: Float(0), YMax: Float(1), Series: []Series{
			{Name: "dice", X: []float64{1, 2, 3, 4, 5, 6}, Y: []float64{0.2, 0.5, nan, 0.7, nan, 0.9}, Color: magenta},
		}}, []color.Color{magenta}},
		{"nil X, many points, no labels", Plot{Series: []Series{
			{Y: func() []float64 {
				y := make([]float64, 200)
				for i := range y {
					y[i] = math.Sin(float64(i) / 10)
				}
				return y
			}()},
		}}, []color.Color{Palette[0]}},
		{"single point", Plot{Series: []Series{{Name: "one", X: []float64{3}, Y: []float64{0.5}}}},
			[]color.Color{Palette[0]}},
		{"large values", Plot{Series: []Series{{Name: "big", X: []float64{0, 1e7}, Y: []float64{-3e6, 5e6}}}},
			[]color.Color{Palette[0]}},
		{"no data", Plot{Title: "empty"}, nil},
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".png")
			require.NoError(t, LinePlot(path, c.plot), "case %d", i)
			img := decodePNG(t, path)
			assert.Equal(t, image.Rect(0, 0, PlotWidth, PlotHeight), img.Bounds())
			for _, col := range c.colors {
				assert.Greater(t, countColor(img, col), 10, "colour %v", col)
			}
			// Text and axes: some dark pixels; mostly white background.
			assert.Greater(t, countColor(img, ink)+countColor(img, axisGrey), 50)
			assert.Greater(t, countColor(img, white), PlotWidth*PlotHeight/2)
		})
	}
	noTemps(t, dir)
}

func TestLinePlotGap(t *testing.T) {
	// A NaN between two points leaves the middle of the plot untouched.
	c := color.RGBA{0, 0, 0xff, 0xff}
	img, err := RenderPlot(Plot{YMin: Float(0), YMax: Float(1), Series: []Series{
		{X: []float64{0, 1, 2}, Y: []float64{0.5, math.NaN(), 0.5}, Color: c},
	}})
	require.NoError(t, err)
	row := -1
	for y := 0; y < PlotHeight && row < 0; y++ {
		if rgba(img.At(PlotWidth/4, y)) == c {
			row = y
		}
	}
	require.Negative(t, row, "no line at a quarter width")
	n := 0
	for y := 0; y < PlotHeight; y++ {
		if rgba(img.At(PlotWidth/2+20, y)) == c {
			n++
		}
	}
	assert.Zero(t, n, "gap was drawn")
	assert.Greater(t, countColor(img, c), 0, "markers of the isolated points")
}

func TestLinePlotErrors(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []Plot{
		{Series: []Series{{X: []float64{1, 2}, Y: []float64{1}}}},
		{YMin: Float(1), YMax: Float(1)},
		{YMin: Float(2), YMax: Float(1)},
		{YMin: Float(math.NaN())},
	} {
		assert.Error(t, LinePlot(filepath.Join(dir, "x.png"), p))
	}
	assert.Error(t, LinePlot(filepath.Join(dir, "missing", "x.png"), Plot{}))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func TestTicks(t *testing.T) {
	cases := []struct {
		lo, hi         float64
		autoLo, autoHi bool
		integer        bool
		want           []string
	}{
		{0.07, 1.13, true, true, false, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0", "1.2"}},
		{0, 1, false, false, false, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{1, 3, true, true, true, []string{"1", "2", "3"}},
		{1, 50, true, true, true, []string{"0", "10", "20", "30", "40", "50"}},
		{0.1, 0.35, true, true, false, []string{"0.10", "0.15", "0.20", "0.25", "0.30", "0.35"}},
		{5, 5, true, true, false, []string{"4.4", "4.6", "4.8", "5.0", "5.2", "5.4", "5.6"}},
		{-2, 2, true, true, false, []string{"-2", "-1", "0", "1", "2"}},
	}
	for _, c := range cases {
		tk := makeTicks(c.lo, c.hi, 6, c.autoLo, c.autoHi, c.integer)
		var got []string
		for _, v := range tk.values {
			got = append(got, tk.label(v))
		}
		assert.Equal(t, c.want, got, "[%g, %g]", c.lo, c.hi)
		assert.LessOrEqual(t, tk.lo, c.lo)
		assert.GreaterOrEqual(t, tk.hi, c.hi)
	}
}

func TestCurves(t *testing.T) {
	dir := t.TempDir()
	var h History
	for i := 1; i <= 20; i++ {
		f := float64(i)
		h = append(h, Epoch{Epoch: i, TrainLoss: 1 / f, ValLoss: 1.2 / f, ValDice: 1 - 1/f, ValIoU: 1 - 1.5/f})
	}
	h[5].ValLoss = math.NaN()
	files, err := Curves(dir, h)
	require.NoError(t, err)
	assert.Equal(t, []string{LossPNG, DicePNG}, files)
	loss := decodePNG(t, filepath.Join(dir, LossPNG))
	assert.Greater(t, countColor(loss, Palette[0]), 50)
	assert.Greater(t, countColor(loss, Palette[1]), 50)
	dice := decodePNG(t, filepath.Join(dir, DicePNG))
	assert.Greater(t, countColor(dice, Palette[2]), 50)
	assert.Greater(t, countColor(dice, Palette[4]), 50)
	noTemps(t, dir)
}

func TestWriteAtomicFailure(t *testing.T) {
	dir := t.TempDir()
	err := writeAtomic(filepath.Join(dir, "f.txt"), func(w io.Writer) error {
		w.Write([]byte("partial"))
		return assert.AnError
	})
	require.ErrorIs(t, err, assert.AnError)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries)
	assert.Error(t, SavePNG(filepath.Join(dir, "nil.png"), nil))
}
