package report

import (
	"cmp"
	"fmt"
	"image"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// PlotWidth and PlotHeight are the size in pixels of the PNGs LinePlot and
// ScatterPlot write; their SVGs have the same size in CSS pixels.
const (
	PlotWidth  = 720
	PlotHeight = 420
)

// plotDPI is the resolution of the PNGs: at 96 dots per inch a point of
// the SVG is a CSS pixel.
const plotDPI = 96

// Plot is a line chart: one or more series against a shared x axis.
type Plot struct {
	Title, XLabel, YLabel string
	Series                []Series
	// YMin and YMax fix the y range; nil picks it from the data. Points
	// outside a fixed range are clipped.
	YMin, YMax *float64
}

// Series is one line of a Plot. X and Y have the same length (a nil X
// stands for 0, 1, 2, …); a NaN or infinite X or Y leaves a gap.
type Series struct {
	Name string
	X, Y []float64
	// Color is the line colour; nil takes the next colour of Palette.
	Color color.Color
}

// Palette holds the colours given to series without one, in order
// (Tableau 10, distinguishable in print and by most colour-blind readers).
var Palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, // blue
	{0xff, 0x7f, 0x0e, 0xff}, // orange
	{0x2c, 0xa0, 0x2c, 0xff}, // green
	{0xd6, 0x27, 0x28, 0xff}, // red
	{0x94, 0x67, 0xbd, 0xff}, // purple
	{0x8c, 0x56, 0x4b, 0xff}, // brown
	{0xe3, 0x77, 0xc2, 0xff}, // pink
	{0x7f, 0x7f, 0x7f, 0xff}, // grey
	{0xbc, 0xbd, 0x22, 0xff}, // olive
	{0x17, 0xbe, 0xcf, 0xff}, // cyan
}

// Float returns a pointer to v, for Plot.YMin and Plot.YMax.
func Float(v float64) *float64 { return &v }

var (
	white    = color.RGBA{255, 255, 255, 255}
	ink      = color.RGBA{0x22, 0x22, 0x22, 255}
	axisGrey = color.RGBA{0x60, 0x60, 0x60, 255}
	gridGrey = color.RGBA{0xe6, 0xe6, 0xe6, 255}
)

// px is a length of n pixels of the PNG (n CSS pixels of the SVG).
func px(n float64) vg.Length { return vg.Length(n * 72 / plotDPI) }

// sans is the plots' typeface (Liberation Sans, which gonum embeds).
func sans(size float64) font.Font {
	return font.From(font.Font{Typeface: "Liberation", Variant: "Sans"}, vg.Points(size))
}

// newPlot is a gonum plot in the package's style: white background, dark
// sans-serif text, grey axes and light grid lines.
func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.BackgroundColor = white
	p.Title.Text = title
	p.Title.TextStyle.Font = sans(13)
	p.Title.TextStyle.Color = ink
	p.Title.Padding = px(8)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = sans(11)
		a.Label.TextStyle.Color = ink
		a.Tick.Label.Font = sans(10)
		a.Tick.Label.Color = ink
		a.LineStyle.Color = axisGrey
		a.Tick.LineStyle.Color = axisGrey
	}
	p.X.Label.Text, p.Y.Label.Text = xlabel, ylabel
	p.X.Tick.Marker, p.Y.Tick.Marker = denseTicks{}, denseTicks{}
	p.Legend.TextStyle.Font = sans(10)
	p.Legend.TextStyle.Color = ink
	p.Legend.ThumbnailWidth = px(22)
	g := plotter.NewGrid()
	g.Vertical.Color, g.Horizontal.Color = gridGrey, gridGrey
	g.Vertical.Width, g.Horizontal.Width = px(1), px(1)
	p.Add(g)
	return p
}

// LinePlot renders p at path, written atomically: a PlotWidth×PlotHeight
// PNG, or an SVG of the same size when path ends in ".svg". It draws the
// title, axes with round tick values (whole numbers on an x axis of whole
// numbers) and labels, grid lines, a legend in the corner the lines cross
// least, and each series as a line (with point markers when there are few
// points, and always for a point with no defined neighbour). Plots are
// drawn by gonum.org/v1/plot.
func LinePlot(path string, p Plot) error {
	g, err := p.gonum()
	if err != nil {
		return err
	}
	return savePlot(path, g)
}

// RenderPlot draws p as LinePlot's PNG does, without writing it.
func RenderPlot(p Plot) (*image.RGBA, error) {
	g, err := p.gonum()
	if err != nil {
		return nil, err
	}
	return render(g), nil
}

// gonum builds the gonum plot of p.
func (p Plot) gonum() (*plot.Plot, error) {
	for i, s := range p.Series {
		if s.X != nil && len(s.X) != len(s.Y) {
			return nil, fmt.Errorf("report: series %d (%q) has %d x and %d y values", i, s.Name, len(s.X), len(s.Y))
		}
	}
	for _, v := range []*float64{p.YMin, p.YMax} {
		if v != nil && !finite(*v) {
			return nil, fmt.Errorf("report: y limit %g is not finite", *v)
		}
	}
	if p.YMin != nil && p.YMax != nil && !(*p.YMin < *p.YMax) {
		return nil, fmt.Errorf("report: y range [%g, %g] is empty", *p.YMin, *p.YMax)
	}
	g := newPlot(p.Title, p.XLabel, p.YLabel)
	xint, drawn := true, false
	var all plotter.XYs // every defined point, to place the legend
	next := 0
	for _, s := range p.Series {
		col := s.Color
		if col == nil {
			col = Palette[next%len(Palette)]
			next++
		}
		col = rgba(col)
		line := draw.LineStyle{Color: col, Width: px(2)}
		var runs []plotter.XYs // maximal stretches of defined points
		var cur plotter.XYs
		count := 0
		for i, y := range s.Y {
			x := s.x(i)
			if !finite(x) || !finite(y) {
				if len(cur) > 0 {
					runs, cur = append(runs, cur), nil
				}
				continue
			}
			cur = append(cur, plotter.XY{X: x, Y: y})
			all = append(all, plotter.XY{X: x, Y: y})
			xint = xint && x == math.Trunc(x)
			count++
		}
		if len(cur) > 0 {
			runs = append(runs, cur)
		}
		for _, r := range runs {
			if len(r) > 1 {
				g.Add(&plotter.Line{XYs: r, LineStyle: line})
			}
			if count <= 40 || len(r) == 1 {
				g.Add(&plotter.Scatter{XYs: r, GlyphStyle: draw.GlyphStyle{Color: col, Radius: px(3), Shape: draw.CircleGlyph{}}})
			}
			drawn = true
		}
		if s.Name != "" {
			g.Legend.Add(s.Name, lineThumb{line})
		}
	}
	if !drawn {
		g.X.Min, g.X.Max, g.Y.Min, g.Y.Max = 0, 1, 0, 1
	}
	if p.YMin != nil {
		g.Y.Min = *p.YMin
		g.Y.Max = max(g.Y.Max, g.Y.Min)
	}
	if p.YMax != nil {
		g.Y.Max = *p.YMax
		g.Y.Min = min(g.Y.Min, g.Y.Max)
	}
	if xint {
		g.X.Tick.Marker = integerTicks{}
	}
	placeLegend(g, all)
	return g, nil
}

// lineThumb is a legend entry's sample of a line.
type lineThumb struct{ style draw.LineStyle }

// Thumbnail draws a horizontal line across the middle of c.
func (t lineThumb) Thumbnail(c *draw.Canvas) {
	y := c.Center().Y
	c.StrokeLine2(t.style, c.Min.X, y, c.Max.X, y)
}

// placeLegend puts the legend in the corner of the data area with the
// fewest points near it (top right on ties).
func placeLegend(g *plot.Plot, pts plotter.XYs) {
	xlo, xhi, ylo, yhi := g.X.Min, g.X.Max, g.Y.Min, g.Y.Max
	norm := func(v, lo, hi float64) float64 {
		if !(hi > lo) {
			return 0.5
		}
		return (v - lo) / (hi - lo)
	}
	type corner struct{ top, left bool }
	best, bestN := corner{true, false}, math.MaxInt
	for _, c := range []corner{{true, false}, {true, true}, {false, false}, {false, true}} {
		n := 0
		for _, p := range pts {
			x, y := norm(p.X, xlo, xhi), norm(p.Y, ylo, yhi)
			inX := (c.left && x < 0.4) || (!c.left && x > 0.6)
			inY := (c.top && y > 0.65) || (!c.top && y < 0.35)
			if inX && inY {
				n++
			}
		}
		if n < bestN {
			best, bestN = c, n
		}
	}
	g.Legend.Top, g.Legend.Left = best.top, best.left
	g.Legend.XOffs, g.Legend.YOffs = -px(10), -px(8)
	if best.left {
		g.Legend.XOffs = px(10)
	}
	if !best.top {
		g.Legend.YOffs = px(8)
	}
}

// denseTicks are gonum's default ticks, with the minor ticks labelled too
// when the default labels fewer than four (gonum aims at three labels,
// sparse for a score axis).
type denseTicks struct{}

// Ticks returns the ticks of [lo, hi].
func (denseTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := (plot.DefaultTicks{}).Ticks(lo, hi)
	majors := 0
	for _, t := range ts {
		if !t.IsMinor() {
			majors++
		}
	}
	if majors >= 4 || len(ts) < 2 {
		return ts
	}
	slices.SortFunc(ts, func(a, b plot.Tick) int { return cmp.Compare(a.Value, b.Value) })
	// Every k-th tick, from the first labelled one, about seven in all.
	k := max(1, (len(ts)+6)/7)
	first := 0
	for i, t := range ts {
		if !t.IsMinor() {
			first = i
			break
		}
	}
	step := ts[1].Value - ts[0].Value
	prec := 0 // the fewest decimals that write every labelled value exactly
	for prec < 6 && math.Abs(float64(k)*step*math.Pow10(prec)-math.Round(float64(k)*step*math.Pow10(prec))) > 1e-6*max(1, float64(k)*step*math.Pow10(prec)) {
		prec++
	}
	for i := range ts {
		ts[i].Label = ""
		if (i-first)%k == 0 {
			v := ts[i].Value
			if math.Abs(v) < step*1e-9 {
				v = 0
			}
			ts[i].Label = strconv.FormatFloat(v, 'f', prec, 64)
		}
	}
	return ts
}

// integerTicks are gonum's default ticks without the fractional ones, for
// an axis of whole numbers such as epochs.
type integerTicks struct{}

// Ticks returns the whole-number ticks of [lo, hi].
func (integerTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	majors := 0
	for _, t := range (plot.DefaultTicks{}).Ticks(lo, hi) {
		if t.Value != math.Trunc(t.Value) {
			continue
		}
		if !t.IsMinor() {
			majors++
			t.Label = strconv.FormatFloat(t.Value, 'f', 0, 64)
		}
		out = append(out, t)
	}
	if majors >= 2 || hi-lo > 20 {
		return out
	}
	out = out[:0]
	for v := math.Ceil(lo); v <= hi; v++ {
		out = append(out, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', 0, 64)})
	}
	return out
}

// figure is what render and savePlot draw: a gonum plot, or one with a
// label drawn under it (belowLabel).
type figure interface{ Draw(draw.Canvas) }

// render draws g as a PlotWidth×PlotHeight image.
func render(g figure) *image.RGBA {
	c := vgimg.NewWith(vgimg.UseWH(px(PlotWidth), px(PlotHeight)), vgimg.UseDPI(plotDPI), vgimg.UseBackgroundColor(white))
	g.Draw(margins(draw.New(c)))
	if img, ok := c.Image().(*image.RGBA); ok {
		return img
	}
	img := image.NewRGBA(c.Image().Bounds())
	for y := img.Rect.Min.Y; y < img.Rect.Max.Y; y++ {
		for x := img.Rect.Min.X; x < img.Rect.Max.X; x++ {
			img.Set(x, y, c.Image().At(x, y))
		}
	}
	return img
}

// margins leaves a few pixels free around a figure.
func margins(c draw.Canvas) draw.Canvas { return draw.Crop(c, px(6), -px(14), px(4), -px(8)) }

// savePlot writes g to path as PNG or, for a ".svg" path, SVG, atomically.
func savePlot(path string, g figure) error {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".png":
		return SavePNG(path, render(g))
	case ".svg":
		c := vgsvg.NewWith(vgsvg.UseWH(px(PlotWidth), px(PlotHeight)))
		g.Draw(margins(draw.New(c)))
		return writeAtomic(path, func(w io.Writer) error {
			_, err := c.WriteTo(w)
			return err
		})
	}
	return fmt.Errorf("report: %s: a plot is written as .png or .svg", path)
}

func (s Series) x(i int) float64 {
	if s.X == nil {
		return float64(i)
	}
	return s.X[i]
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// rgba converts any colour to an opaque non-premultiplied RGBA.
func rgba(c color.Color) color.RGBA {
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	return color.RGBA{n.R, n.G, n.B, 255}
}

// Curve file names written by Curves.
const (
	LossPNG = "loss.png"
	DicePNG = "dice.png"
	LossSVG = "loss.svg"
	DiceSVG = "dice.svg"
)

// Curves writes two plots of h into dir, each as PNG and SVG: LossPNG and
// LossSVG, train and validation loss against epoch, and DicePNG and
// DiceSVG, validation foreground Dice and IoU on [0, 1]. It returns the
// file names, relative to dir, each PNG followed by its SVG.
func Curves(dir string, h History) ([]string, error) {
	ep := make([]float64, len(h))
	col := func(get func(Epoch) float64) []float64 {
		out := make([]float64, len(h))
		for i, e := range h {
			out[i] = get(e)
		}
		return out
	}
	for i, e := range h {
		ep[i] = float64(e.Epoch)
	}
	loss := Plot{Title: "Loss", XLabel: "epoch", YLabel: "loss", Series: []Series{
		{Name: "train", X: ep, Y: col(func(e Epoch) float64 { return e.TrainLoss })},
		{Name: "validation", X: ep, Y: col(func(e Epoch) float64 { return e.ValLoss })},
	}}
	dice := Plot{Title: "Validation foreground mean", XLabel: "epoch", YLabel: "score",
		YMin: Float(0), YMax: Float(1), Series: []Series{
			{Name: "Dice", X: ep, Y: col(func(e Epoch) float64 { return e.ValDice }), Color: Palette[2]},
			{Name: "IoU", X: ep, Y: col(func(e Epoch) float64 { return e.ValIoU }), Color: Palette[4]},
		}}
	files := []string{LossPNG, LossSVG, DicePNG, DiceSVG}
	plots := []Plot{loss, loss, dice, dice}
	for i, f := range files {
		if err := LinePlot(filepath.Join(dir, f), plots[i]); err != nil {
			return nil, err
		}
	}
	return files, nil
}
