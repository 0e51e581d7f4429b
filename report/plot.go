package report

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"path/filepath"
	"strconv"
)

// PlotWidth and PlotHeight are the size in pixels of the PNGs LinePlot
// writes.
const (
	PlotWidth  = 720
	PlotHeight = 420
)

// Plot is a line chart: one or more series against a shared x axis.
type Plot struct {
	Title, XLabel, YLabel string
	Series                []Series
	// YMin and YMax fix the y range; nil picks it from the data, widened
	// to round tick values. Points outside a fixed range are clipped.
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
	white     = color.RGBA{255, 255, 255, 255}
	ink       = color.RGBA{0x22, 0x22, 0x22, 255}
	axisGrey  = color.RGBA{0x60, 0x60, 0x60, 255}
	gridGrey  = color.RGBA{0xe6, 0xe6, 0xe6, 255}
	frameGrey = color.RGBA{0xc8, 0xc8, 0xc8, 255}
)

// LinePlot renders p as a PlotWidth×PlotHeight PNG at path, written
// atomically: title, axes with round tick values and labels, grid lines, a
// legend in the emptiest corner, and each series as an anti-aliased line
// (with point markers when there are few points, and always for a point
// with no defined neighbour).
func LinePlot(path string, p Plot) error {
	img, err := RenderPlot(p)
	if err != nil {
		return err
	}
	return SavePNG(path, img)
}

// RenderPlot draws p as LinePlot does, without writing it.
func RenderPlot(p Plot) (*image.RGBA, error) {
	for i, s := range p.Series {
		if s.X != nil && len(s.X) != len(s.Y) {
			return nil, fmt.Errorf("report: series %d (%q) has %d x and %d y values", i, s.Name, len(s.X), len(s.Y))
		}
	}
	if p.YMin != nil && p.YMax != nil && !(*p.YMin < *p.YMax) {
		return nil, fmt.Errorf("report: y range [%g, %g] is empty", *p.YMin, *p.YMax)
	}
	for _, v := range []*float64{p.YMin, p.YMax} {
		if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0)) {
			return nil, fmt.Errorf("report: y limit %g is not finite", *v)
		}
	}

	// Data ranges.
	xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	xint := true
	for _, s := range p.Series {
		for i, y := range s.Y {
			x := s.x(i)
			if !finite(x) || !finite(y) {
				continue
			}
			xlo, xhi = min(xlo, x), max(xhi, x)
			ylo, yhi = min(ylo, y), max(yhi, y)
			xint = xint && x == math.Trunc(x)
		}
	}
	if xlo > xhi { // no data
		xlo, xhi, ylo, yhi = 0, 1, 0, 1
	}
	if p.YMin != nil {
		ylo = *p.YMin
		yhi = max(yhi, ylo)
	}
	if p.YMax != nil {
		yhi = *p.YMax
		ylo = min(ylo, yhi)
	}
	xt := makeTicks(xlo, xhi, 7, true, true, xint)
	yt := makeTicks(ylo, yhi, 6, p.YMin == nil, p.YMax == nil, false)

	// Layout.
	img := image.NewRGBA(image.Rect(0, 0, PlotWidth, PlotHeight))
	fillRect(img, img.Rect, white)
	labelW := 0
	for _, v := range yt.values {
		labelW = max(labelW, textWidth(yt.label(v)))
	}
	left := 10 + labelW + 8
	if p.YLabel != "" {
		left += lineH + 8
	}
	top := 14
	if p.Title != "" {
		top = 36
	}
	bottom := 8 + lineH + 10
	if p.XLabel != "" {
		bottom += lineH + 6
	}
	area := image.Rect(left, top, PlotWidth-20, PlotHeight-bottom)
	fx := func(x float64) float64 {
		return float64(area.Min.X) + (x-xt.lo)/(xt.hi-xt.lo)*float64(area.Dx()-1) + 0.5
	}
	fy := func(y float64) float64 {
		return float64(area.Max.Y-1) - (y-yt.lo)/(yt.hi-yt.lo)*float64(area.Dy()-1) + 0.5
	}

	// Grid, ticks and tick labels.
	for _, v := range yt.values {
		y := int(math.Floor(fy(v)))
		hline(img, area.Min.X, area.Max.X-1, y, gridGrey)
		hline(img, area.Min.X-4, area.Min.X-1, y, axisGrey)
		s := yt.label(v)
		drawText(img, area.Min.X-6-textWidth(s), y-lineH/2-1, s, ink)
	}
	for _, v := range xt.values {
		x := int(math.Floor(fx(v)))
		vline(img, x, area.Min.Y, area.Max.Y-1, gridGrey)
		vline(img, x, area.Max.Y, area.Max.Y+3, axisGrey)
		s := xt.label(v)
		drawText(img, x-textWidth(s)/2, area.Max.Y+6, s, ink)
	}
	strokeRect(img, area, frameGrey)
	hline(img, area.Min.X, area.Max.X-1, area.Max.Y-1, axisGrey)
	vline(img, area.Min.X, area.Min.Y, area.Max.Y-1, axisGrey)

	// Title and axis labels.
	if p.Title != "" {
		x := (PlotWidth - textWidth(p.Title)) / 2
		drawText(img, x, 12, p.Title, ink)
		drawText(img, x+1, 12, p.Title, ink) // poor man's bold
	}
	if p.XLabel != "" {
		drawText(img, area.Min.X+(area.Dx()-textWidth(p.XLabel))/2, PlotHeight-lineH-8, p.XLabel, ink)
	}
	if p.YLabel != "" {
		drawTextVertical(img, 10, area.Min.Y+(area.Dy()-textWidth(p.YLabel))/2, p.YLabel, ink)
	}

	// Series.
	inner := image.Rect(area.Min.X+1, area.Min.Y+1, area.Max.X-1, area.Max.Y-1)
	all := newCoverage(area)
	colors := make([]color.RGBA, len(p.Series))
	next := 0
	for si, s := range p.Series {
		if s.Color != nil {
			colors[si] = rgba(s.Color)
		} else {
			colors[si] = Palette[next%len(Palette)]
			next++
		}
		cov := newCoverage(inner)
		n := len(s.Y)
		defined := func(i int) bool { return i >= 0 && i < n && finite(s.x(i)) && finite(s.Y[i]) }
		count := 0
		for i := range n {
			if defined(i) {
				count++
			}
		}
		for i := range n {
			if !defined(i) {
				continue
			}
			x, y := fx(s.x(i)), fy(s.Y[i])
			if defined(i + 1) {
				cov.segment(x, y, fx(s.x(i+1)), fy(s.Y[i+1]), 2)
			}
			if count <= 40 || (!defined(i-1) && !defined(i+1)) {
				cov.disc(x, y, 2.5)
			}
		}
		cov.paint(img, colors[si])
		for i, v := range cov.a {
			all.a[(i/inner.Dx()+1)*area.Dx()+i%inner.Dx()+1] += v
		}
	}

	// Legend, in the corner the lines cross least.
	names := 0
	legendW := 0
	for _, s := range p.Series {
		if s.Name != "" {
			names++
			legendW = max(legendW, textWidth(s.Name))
		}
	}
	if names > 0 {
		const pad, sample, rowH = 8, 22, lineH + 5
		w, h := pad+sample+6+legendW+pad, pad+names*rowH-5+pad
		var best image.Rectangle
		bestSum := math.Inf(1)
		for _, c := range []image.Point{
			{area.Max.X - 10 - w, area.Min.Y + 10}, // top right first on ties
			{area.Min.X + 10, area.Min.Y + 10},
			{area.Max.X - 10 - w, area.Max.Y - 10 - h},
			{area.Min.X + 10, area.Max.Y - 10 - h},
		} {
			r := image.Rect(c.X, c.Y, c.X+w, c.Y+h)
			if s := all.sum(r); s < bestSum-1e-9 {
				best, bestSum = r, s
			}
		}
		fillRect(img, best, white)
		strokeRect(img, best, frameGrey)
		y := best.Min.Y + pad
		for si, s := range p.Series {
			if s.Name == "" {
				continue
			}
			cov := newCoverage(best)
			cy := float64(y) + float64(lineH)/2
			x0 := float64(best.Min.X + pad)
			cov.segment(x0, cy, x0+sample, cy, 2)
			cov.paint(img, colors[si])
			drawText(img, best.Min.X+pad+sample+6, y, s.Name, ink)
			y += rowH
		}
	}
	return img, nil
}

func (s Series) x(i int) float64 {
	if s.X == nil {
		return float64(i)
	}
	return s.X[i]
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// ticks is an axis range with round tick values inside it.
type ticks struct {
	lo, hi float64
	step   float64
	values []float64
	prec   int // decimals in labels; -1 for %g
}

// makeTicks chooses about n round tick values for [lo, hi]; an end that is
// auto is widened to the next tick. integer keeps the step at least 1.
func makeTicks(lo, hi float64, n int, autoLo, autoHi, integer bool) ticks {
	if hi-lo <= 0 || !finite(hi-lo) {
		d := math.Abs(lo) * 0.1
		if d == 0 || integer {
			d = 1
		}
		if autoLo {
			lo -= d
		}
		if autoHi || !(hi > lo) {
			hi = lo + 2*d
			if !autoLo {
				hi = lo + d
			}
		}
	}
	step := niceNum((hi - lo) / float64(n-1))
	if integer && step < 1 {
		step = 1
	}
	if autoLo {
		lo = math.Floor(lo/step+1e-9) * step
	}
	if autoHi {
		hi = math.Ceil(hi/step-1e-9) * step
	}
	t := ticks{lo: lo, hi: hi, step: step}
	for k := math.Ceil(lo/step - 1e-9); k*step <= hi+step*1e-9; k++ {
		v := k * step
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		t.values = append(t.values, v)
	}
	mag := math.Max(math.Abs(lo), math.Abs(hi))
	if mag >= 1e6 || step < 1e-4 {
		t.prec = -1
	} else {
		t.prec = max(0, int(math.Ceil(-math.Log10(step)-1e-9)))
		if m := step / math.Pow(10, math.Floor(math.Log10(step))); math.Abs(m-2.5) < 1e-9 && step < 1 {
			t.prec++
		}
	}
	return t
}

func (t ticks) label(v float64) string {
	if t.prec < 0 {
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	return strconv.FormatFloat(v, 'f', t.prec, 64)
}

// niceNum rounds x to the nearest number of the form 1, 2, 2.5 or 5
// times a power of ten (Heckbert, "Nice numbers for graph labels").
func niceNum(x float64) float64 {
	e := math.Floor(math.Log10(x))
	f := x / math.Pow(10, e)
	var n float64
	switch {
	case f < 1.5:
		n = 1
	case f < 2.25:
		n = 2
	case f < 3.5:
		n = 2.5
	case f < 7.5:
		n = 5
	default:
		n = 10
	}
	return n * math.Pow(10, e)
}

// Curve file names written by Curves.
const (
	LossPNG = "loss.png"
	DicePNG = "dice.png"
)

// Curves writes two plots of h into dir: LossPNG, train and validation loss
// against epoch, and DicePNG, validation foreground Dice and IoU on [0, 1].
// It returns the file names, relative to dir.
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
	if err := LinePlot(filepath.Join(dir, LossPNG), loss); err != nil {
		return nil, err
	}
	if err := LinePlot(filepath.Join(dir, DicePNG), dice); err != nil {
		return nil, err
	}
	return []string{LossPNG, DicePNG}, nil
}
