package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
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

// checkSVG reads an SVG file, checks that it is well-formed XML with an
// svg root, and returns its text.
func checkSVG(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	d := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "%s is not well-formed XML", path)
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	require.Equal(t, "svg", root, path)
	return string(b)
}

// hex is a colour as SVG files spell it.
func hex(c color.RGBA) string { return fmt.Sprintf("#%02X%02X%02X", c.R, c.G, c.B) }

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

// near reports whether two colours differ by at most 24 in every channel
// (anti-aliased edges blend a line's colour with the background).
func near(a, b color.Color) bool {
	p, q := rgba(a), rgba(b)
	d := func(x, y uint8) bool { return int(x)-int(y) <= 24 && int(y)-int(x) <= 24 }
	return d(p.R, q.R) && d(p.G, q.G) && d(p.B, q.B)
}

// countNear counts the pixels of img near colour c.
func countNear(img image.Image, c color.Color) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if near(img.At(x, y), c) {
				n++
			}
		}
	}
	return n
}

// countDark counts the pixels darker than mid-grey: text, axes, ticks.
func countDark(img image.Image) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := rgba(img.At(x, y))
			if int(c.R)+int(c.G)+int(c.B) < 3*128 {
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
		colors []color.RGBA // each must appear
	}{
		{"two series, palette", Plot{Title: "Loss", XLabel: "epoch", YLabel: "loss", Series: []Series{
			{Name: "train", X: []float64{1, 2, 3, 4}, Y: []float64{1, 0.6, 0.4, 0.3}},
			{Name: "val", X: []float64{1, 2, 3, 4}, Y: []float64{1.1, 0.8, 0.7, 0.65}},
		}}, []color.RGBA{Palette[0], Palette[1]}},
		{"own colour, gaps, fixed range", Plot{Title: "Dice", YMin: Float(0), YMax: Float(1), Series: []Series{
			{Name: "dice", X: []float64{1, 2, 3, 4, 5, 6}, Y: []float64{0.2, 0.5, nan, 0.7, nan, 0.9}, Color: magenta},
		}}, []color.RGBA{magenta}},
		{"nil X, many points, no labels", Plot{Series: []Series{
			{Y: func() []float64 {
				y := make([]float64, 200)
				for i := range y {
					y[i] = math.Sin(float64(i) / 10)
				}
				return y
			}()},
		}}, []color.RGBA{Palette[0]}},
		{"single point", Plot{Series: []Series{{Name: "one", X: []float64{3}, Y: []float64{0.5}}}},
			[]color.RGBA{Palette[0]}},
		{"large values", Plot{Series: []Series{{Name: "big", X: []float64{0, 1e7}, Y: []float64{-3e6, 5e6}}}},
			[]color.RGBA{Palette[0]}},
		{"no data", Plot{Title: "empty"}, nil},
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
			require.NoError(t, LinePlot(base+".png", c.plot), "case %d", i)
			img := decodePNG(t, base+".png")
			assert.Equal(t, image.Rect(0, 0, PlotWidth, PlotHeight), img.Bounds())
			for _, col := range c.colors {
				assert.Greater(t, countNear(img, col), 10, "colour %v", col)
			}
			// Text and axes: some dark pixels; mostly white background.
			assert.Greater(t, countDark(img), 50)
			assert.Greater(t, countColor(img, white), PlotWidth*PlotHeight/2)

			require.NoError(t, LinePlot(base+".svg", c.plot))
			svg := checkSVG(t, base+".svg")
			for _, col := range c.colors {
				assert.Contains(t, svg, hex(col))
			}
			if c.plot.Title != "" {
				assert.Contains(t, svg, c.plot.Title)
			}
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
	for _, x := range []int{PlotWidth / 3, PlotWidth / 2, 2 * PlotWidth / 3} {
		for y := 0; y < PlotHeight; y++ {
			require.False(t, near(img.At(x, y), c), "gap drawn at (%d, %d)", x, y)
		}
	}
	assert.Greater(t, countNear(img, c), 20, "markers of the isolated points")

	// Without the NaN the line crosses the middle.
	img, err = RenderPlot(Plot{YMin: Float(0), YMax: Float(1), Series: []Series{
		{X: []float64{0, 1, 2}, Y: []float64{0.5, 0.5, 0.5}, Color: c},
	}})
	require.NoError(t, err)
	n := 0
	for y := 0; y < PlotHeight; y++ {
		if near(img.At(PlotWidth/2, y), c) {
			n++
		}
	}
	assert.Positive(t, n)
}

func TestLinePlotClipsToFixedRange(t *testing.T) {
	// Values far above YMax are clipped to the data area, not drawn over
	// the title.
	c := color.RGBA{0, 0, 0xff, 0xff}
	img, err := RenderPlot(Plot{Title: "clipped", YMin: Float(0), YMax: Float(1), Series: []Series{
		{X: []float64{0, 1, 2, 3}, Y: []float64{0.5, 40, 40, 0.5}, Color: c},
	}})
	require.NoError(t, err)
	for y := 0; y < 12; y++ {
		for x := 0; x < PlotWidth; x++ {
			require.False(t, near(img.At(x, y), c), "drawn at (%d, %d), above the data area", x, y)
		}
	}
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
	err := LinePlot(filepath.Join(dir, "x.gif"), Plot{})
	assert.ErrorContains(t, err, "x.gif")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func TestIntegerTicks(t *testing.T) {
	labels := func(lo, hi float64) []string {
		var out []string
		for _, tk := range (integerTicks{}).Ticks(lo, hi) {
			require.Equal(t, math.Trunc(tk.Value), tk.Value, "tick %g in [%g, %g]", tk.Value, lo, hi)
			if tk.Label != "" {
				out = append(out, tk.Label)
			}
		}
		return out
	}
	assert.Equal(t, []string{"1", "2", "3"}, labels(1, 3))
	assert.Equal(t, []string{"1", "2"}, labels(1, 2))
	assert.Equal(t, []string{"5"}, labels(4.5, 5.5))
	assert.Contains(t, labels(1, 50), "10")
	assert.LessOrEqual(t, len(labels(1, 50)), 8)
}

func TestDenseTicks(t *testing.T) {
	labels := func(lo, hi float64) []string {
		var out []string
		for _, tk := range (denseTicks{}).Ticks(lo, hi) {
			if tk.Label != "" {
				out = append(out, tk.Label)
			}
		}
		slices.Sort(out)
		return out
	}
	// gonum labels 0.0 and 0.3 only; the minor ticks get labels too.
	assert.Equal(t, []string{"0.0", "0.1", "0.2", "0.3"}, labels(-0.02, 0.37))
	for _, r := range [][2]float64{{0, 1}, {0.1, 1.2}, {0.9, 0.99}, {-3e6, 5e6}, {2, 9}} {
		got := labels(r[0], r[1])
		assert.GreaterOrEqual(t, len(got), 3, "%v: %v", r, got)
		assert.LessOrEqual(t, len(got), 12, "%v: %v", r, got)
		assert.Len(t, slices.Compact(slices.Clone(got)), len(got), "%v: labels repeat: %v", r, got)
	}
}

func TestLogTicks(t *testing.T) {
	labels := func(lo, hi float64) []string {
		var out []string
		for _, tk := range (logTicks{}).Ticks(lo, hi) {
			if tk.Label != "" {
				out = append(out, tk.Label)
			}
		}
		return out
	}
	assert.Equal(t, []string{"10k", "100k", "1M", "10M", "100M"}, labels(5e3, 2e8))
	assert.Equal(t, []string{"200k", "500k", "1M", "2M", "5M"}, labels(1.5e5, 6e6))
	assert.Empty(t, (logTicks{}).Ticks(0, 10))
	assert.Equal(t, "500", countLabel(500))
	assert.Equal(t, "2.5M", countLabel(2.5e6))
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
	assert.Equal(t, []string{LossPNG, LossSVG, DicePNG, DiceSVG}, files)
	loss := decodePNG(t, filepath.Join(dir, LossPNG))
	assert.Greater(t, countNear(loss, Palette[0]), 50)
	assert.Greater(t, countNear(loss, Palette[1]), 50)
	dice := decodePNG(t, filepath.Join(dir, DicePNG))
	assert.Greater(t, countNear(dice, Palette[2]), 50)
	assert.Greater(t, countNear(dice, Palette[4]), 50)
	svg := checkSVG(t, filepath.Join(dir, LossSVG))
	for _, s := range []string{"Loss", "epoch", "train", "validation", hex(Palette[0]), hex(Palette[1])} {
		assert.Contains(t, svg, s)
	}
	svg = checkSVG(t, filepath.Join(dir, DiceSVG))
	for _, s := range []string{"Validation foreground mean", "Dice", "IoU", hex(Palette[2]), hex(Palette[4])} {
		assert.Contains(t, svg, s)
	}
	noTemps(t, dir)
}

func TestScatterPlot(t *testing.T) {
	dir := t.TempDir()
	red := color.RGBA{0xd6, 0x27, 0x28, 0xff}
	s := Scatter{Title: "Dice against parameters", XLabel: "trainable parameters at the width trained (width scale 0.25)", YLabel: "Dice", LogX: true, Points: []Point{
		{X: 1.1e6, Y: 0.91, Label: "u2netp"}, {X: 17.3e6, Y: 0.95, Label: "unet"}, {X: 17.4e6, Y: 0.94, Label: "scseunet"},
		{X: 59e6, Y: 0.05, Label: "collapsed", Color: red},
		{X: 0, Y: 0.5, Label: "zero"}, {X: 3e6, Y: math.NaN(), Label: "failed"},
	}}
	png, svg := filepath.Join(dir, "s.png"), filepath.Join(dir, "s.svg")
	require.NoError(t, ScatterPlot(png, s))
	require.NoError(t, ScatterPlot(svg, s))
	img := decodePNG(t, png)
	assert.Equal(t, image.Rect(0, 0, PlotWidth, PlotHeight), img.Bounds())
	assert.Greater(t, countNear(img, Palette[0]), 60, "three blue discs")
	assert.Greater(t, countNear(img, red), 20, "one red disc")
	text := checkSVG(t, svg)
	for _, want := range []string{"u2netp", "unet", "scseunet", "collapsed", "1M", "10M", "Dice against parameters", ">trainable parameters at the width trained (width scale 0.25)<"} {
		assert.Contains(t, text, want)
	}
	assert.NotContains(t, text, ">zero<", "x ≤ 0 has no place on a log axis")
	assert.NotContains(t, text, ">failed<", "NaN is left out")

	// The x label of a log axis is drawn under the plot, whose data area
	// then reaches the right margin (gonum's own label would pad the right
	// for a label centred at the arithmetic middle of the range).
	fig, err := s.gonum()
	require.NoError(t, err)
	bl, ok := fig.(belowLabel)
	require.True(t, ok)
	c := margins(draw.New(vgimg.New(px(PlotWidth), px(PlotHeight))))
	area := bl.Plot.DataCanvas(draw.Crop(c, 0, 0, bl.style.Height(bl.text)+px(4), 0))
	assert.Greater(t, float64(area.Max.X), float64(c.Max.X-px(60)), "data area ends at %v of %v", area.Max.X, c.Max.X)
	bl.Plot.X.Label.Text = bl.text // what gonum would do
	area = bl.Plot.DataCanvas(c)
	assert.Less(t, float64(area.Max.X), float64(c.Max.X-px(60)), "gonum's padding, which belowLabel avoids")

	// No points at all still gives a figure; a linear axis works too.
	require.NoError(t, ScatterPlot(filepath.Join(dir, "empty.png"), Scatter{Title: "none", LogX: true}))
	require.NoError(t, ScatterPlot(filepath.Join(dir, "lin.svg"), Scatter{Points: []Point{{X: 1, Y: 2, Label: "a"}, {X: 1, Y: 2, Label: "b"}}}))
	assert.Error(t, ScatterPlot(filepath.Join(dir, "bad.png"), Scatter{YMin: Float(1), YMax: Float(0)}))
	noTemps(t, dir)
}

func TestPlaceLabels(t *testing.T) {
	area := vg.Rectangle{Max: vg.Point{X: 500, Y: 300}}
	size := vg.Point{X: 40, Y: 10}
	// Two points at the same place: the second label goes to another side.
	pts := []vg.Point{{X: 100, Y: 100}, {X: 100, Y: 100}, {X: 300, Y: 200}}
	at := placeLabels(pts, []vg.Point{size, size, size}, area, 5)
	assert.Equal(t, vg.Point{X: 105, Y: 95}, at[0], "right of the point")
	assert.NotEqual(t, at[0], at[1])
	assert.Equal(t, vg.Point{X: 305, Y: 195}, at[2])
	// At the right edge the label goes left, inside the area.
	at = placeLabels([]vg.Point{{X: 490, Y: 100}}, []vg.Point{size}, area, 5)
	assert.Equal(t, vg.Point{X: 445, Y: 95}, at[0])
	// A point without a label takes no room and gets no place.
	at = placeLabels([]vg.Point{{X: 100, Y: 100}, {X: 100, Y: 100}}, []vg.Point{{}, size}, area, 5)
	assert.Equal(t, vg.Point{}, at[0])
	assert.Equal(t, vg.Point{X: 105, Y: 95}, at[1])
}

func TestSmallMultiples(t *testing.T) {
	const w, h = 16, 16
	truth := make([]int64, w*h)
	pred := make([]int64, w*h)
	for y := 4; y < 12; y++ {
		for x := 4; x < 12; x++ {
			truth[y*w+x] = 1
			pred[y*w+x+2] = 1
		}
	}
	img := image.NewGray(image.Rect(0, 0, w, h))
	panels := []Panel{{Image: img, Truth: truth, W: w, H: h, Caption: "truth"}}
	for _, name := range []string{"unet", "attunet", "setr", "deeplab"} {
		panels = append(panels, Panel{Image: img, Truth: truth, Pred: pred, W: w, H: h, Caption: name})
	}
	out, err := SmallMultiples(panels, 0)
	require.NoError(t, err)
	s := OverlayScale(w, h)
	tw, th := w*s, h*s+CaptionHeight
	// Five panels: 3 columns, 2 rows.
	assert.Equal(t, image.Rect(0, 0, 3*(tw+panelGap)+panelGap, 2*(th+panelGap)+panelGap), out.Bounds())
	assert.Greater(t, countColor(out, TruthColor), 0)
	assert.Greater(t, countColor(out, PredColor), 0)
	// The first panel has no prediction outline.
	first := out.SubImage(image.Rect(panelGap, panelGap, panelGap+tw, panelGap+th))
	assert.Zero(t, countColor(first, PredColor))
	assert.Greater(t, countColor(first, TruthColor), 0)

	_, err = SmallMultiples(nil, 0)
	assert.Error(t, err)
	_, err = SmallMultiples(append(panels, Panel{W: 8, H: 8, Truth: make([]int64, 64), Caption: "odd"}), 2)
	assert.ErrorContains(t, err, "odd")
}
