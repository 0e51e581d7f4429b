package report

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Scatter is a chart of labelled points, such as one point per model of
// a score against its parameter count.
type Scatter struct {
	Title, XLabel, YLabel string
	// LogX puts the x axis on a logarithmic scale (ticks at powers of ten,
	// labelled 10k, 1M, …); points with x ≤ 0 are then left out.
	LogX bool
	// Points with a NaN or infinite coordinate are left out.
	Points []Point
	// YMin and YMax fix the y range; nil picks it from the points.
	YMin, YMax *float64
}

// Point is one point of a Scatter, drawn as a disc with its label next to
// it (on the side where it overlaps the fewest other labels and points).
type Point struct {
	X, Y  float64
	Label string
	// Color is the disc's colour; nil is Palette[0].
	Color color.Color
}

// ScatterPlot renders s at path, written atomically: a
// PlotWidth×PlotHeight PNG, or an SVG of the same size when path ends in
// ".svg".
func ScatterPlot(path string, s Scatter) error {
	g, err := s.gonum()
	if err != nil {
		return err
	}
	return savePlot(path, g)
}

// RenderScatter draws s as ScatterPlot's PNG does, without writing it.
func RenderScatter(s Scatter) (*image.RGBA, error) {
	g, err := s.gonum()
	if err != nil {
		return nil, err
	}
	return render(g), nil
}

func (s Scatter) gonum() (figure, error) {
	for _, v := range []*float64{s.YMin, s.YMax} {
		if v != nil && !finite(*v) {
			return nil, fmt.Errorf("report: y limit %g is not finite", *v)
		}
	}
	if s.YMin != nil && s.YMax != nil && !(*s.YMin < *s.YMax) {
		return nil, fmt.Errorf("report: y range [%g, %g] is empty", *s.YMin, *s.YMax)
	}
	g := newPlot(s.Title, s.XLabel, s.YLabel)
	var xys plotter.XYs
	var labels []string
	var colors []color.Color
	for _, p := range s.Points {
		if !finite(p.X) || !finite(p.Y) || (s.LogX && p.X <= 0) {
			continue
		}
		xys = append(xys, plotter.XY{X: p.X, Y: p.Y})
		labels = append(labels, p.Label)
		c := p.Color
		if c == nil {
			c = Palette[0]
		}
		colors = append(colors, rgba(c))
	}
	const radius = 4
	if len(xys) > 0 {
		sc := &plotter.Scatter{XYs: xys, GlyphStyle: draw.GlyphStyle{Radius: px(radius), Shape: draw.CircleGlyph{}}}
		sc.GlyphStyleFunc = func(i int) draw.GlyphStyle {
			return draw.GlyphStyle{Color: colors[i], Radius: px(radius), Shape: draw.CircleGlyph{}}
		}
		g.Add(sc)
		sty := g.X.Tick.Label
		sty.Font = sans(9)
		sty.XAlign, sty.YAlign = draw.XLeft, draw.YBottom
		g.Add(&pointLabels{xys: xys, labels: labels, style: sty, gap: px(radius + 2)})
	}
	// Some room around the points, so that discs and labels stay inside.
	if len(xys) == 0 {
		g.X.Min, g.X.Max, g.Y.Min, g.Y.Max = 0, 1, 0, 1
		if s.LogX {
			g.X.Min, g.X.Max = 1e3, 1e8
		}
	} else if s.LogX {
		g.X.Min, g.X.Max = g.X.Min/1.5, g.X.Max*1.5
	} else {
		d := max(g.X.Max-g.X.Min, math.Abs(g.X.Max)*0.1, 1e-9) * 0.05
		g.X.Min, g.X.Max = g.X.Min-d, g.X.Max+d
	}
	if len(xys) > 0 {
		d := max(g.Y.Max-g.Y.Min, 0.02) * 0.08
		g.Y.Min, g.Y.Max = g.Y.Min-d, g.Y.Max+d
	}
	if s.YMin != nil {
		g.Y.Min = *s.YMin
		g.Y.Max = max(g.Y.Max, g.Y.Min)
	}
	if s.YMax != nil {
		g.Y.Max = *s.YMax
		g.Y.Min = min(g.Y.Min, g.Y.Max)
	}
	if s.LogX {
		g.X.Scale = plot.LogScale{}
		g.X.Tick.Marker = logTicks{}
		// gonum pads the plot for an x label centred at the arithmetic
		// middle of the range, far right on a log axis: draw it apart.
		lab := belowLabel{Plot: g, text: g.X.Label.Text, style: g.X.Label.TextStyle}
		g.X.Label.Text = ""
		return lab, nil
	}
	return g, nil
}

// belowLabel is a plot with a line of text centred under it.
type belowLabel struct {
	*plot.Plot
	text  string
	style text.Style
}

// Draw draws the plot above the text.
func (b belowLabel) Draw(c draw.Canvas) {
	if b.text == "" {
		b.Plot.Draw(c)
		return
	}
	h := b.style.Height(b.text) + px(4)
	b.Plot.Draw(draw.Crop(c, 0, 0, h, 0))
	sty := b.style
	sty.XAlign, sty.YAlign = draw.XCenter, draw.YBottom
	c.FillText(sty, vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: c.Min.Y}, b.text)
}

// logTicks mark powers of ten on a log axis, labelled as counts (1k, 10k,
// 1M); over less than two decades 2 and 5 times them are labelled too.
type logTicks struct{}

// Ticks returns the ticks of [lo, hi], lo > 0.
func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(lo > 0) || !(hi > lo) {
		return nil
	}
	dense := math.Log10(hi/lo) < 2
	var out []plot.Tick
	for e := math.Floor(math.Log10(lo)); math.Pow(10, e) <= hi; e++ {
		p := math.Pow(10, e)
		for m := 1.0; m < 10; m++ {
			v := m * p
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || (dense && (m == 2 || m == 5)) {
				t.Label = countLabel(v)
			}
			out = append(out, t)
		}
	}
	return out
}

// countLabel writes a tick value as 500, 2k, 10k, 1M, 20M, 1G.
func countLabel(v float64) string {
	for _, u := range []struct {
		f float64
		s string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if v >= u.f {
			return trimFloat(v/u.f) + u.s
		}
	}
	return trimFloat(v)
}

func trimFloat(v float64) string { return fmt.Sprintf("%.3g", v) }

// pointLabels writes each point's label next to it, greedily on the side
// where it overlaps the fewest labels already placed and points.
type pointLabels struct {
	xys    plotter.XYs
	labels []string
	style  text.Style
	gap    vg.Length // from the point's centre to the label
}

// Plot draws the labels.
func (l *pointLabels) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	pts := make([]vg.Point, len(l.xys))
	sizes := make([]vg.Point, len(l.xys))
	for i, xy := range l.xys {
		pts[i] = vg.Point{X: trX(xy.X), Y: trY(xy.Y)}
		if l.labels[i] != "" {
			sizes[i] = vg.Point{X: l.style.Width(l.labels[i]), Y: l.style.Height(l.labels[i])}
		}
	}
	for i, at := range placeLabels(pts, sizes, c.Rectangle, l.gap) {
		if l.labels[i] != "" {
			c.FillText(l.style, at, l.labels[i])
		}
	}
}

// placeLabels returns the bottom-left corner of a label of size sizes[i]
// (zero: none) for each point pts[i], within area where it can: from left
// to right, each label goes to the side of its point (right, left, above,
// below, then the diagonals) where it overlaps the least of the points'
// discs (radius gap) and the labels placed before it.
func placeLabels(pts, sizes []vg.Point, area vg.Rectangle, gap vg.Length) []vg.Point {
	out := make([]vg.Point, len(pts))
	var taken []vg.Rectangle
	for _, pt := range pts {
		taken = append(taken, vg.Rectangle{Min: pt.Sub(vg.Point{X: gap, Y: gap}), Max: pt.Add(vg.Point{X: gap, Y: gap})})
	}
	// Left to right, so that labels of a dense cluster fan out in order.
	order := make([]int, len(pts))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return pts[order[a]].X < pts[order[b]].X })
	for _, i := range order {
		w, h := sizes[i].X, sizes[i].Y
		if w <= 0 || h <= 0 {
			continue
		}
		pt := pts[i]
		cands := []vg.Point{
			{X: pt.X + gap, Y: pt.Y - h/2},           // right
			{X: pt.X - gap - w, Y: pt.Y - h/2},       // left
			{X: pt.X - w/2, Y: pt.Y + gap},           // above
			{X: pt.X - w/2, Y: pt.Y - gap - h},       // below
			{X: pt.X + gap, Y: pt.Y + gap/2},         // upper right
			{X: pt.X + gap, Y: pt.Y - gap/2 - h},     // lower right
			{X: pt.X - gap - w, Y: pt.Y + gap/2},     // upper left
			{X: pt.X - gap - w, Y: pt.Y - gap/2 - h}, // lower left
		}
		best, bestCost := cands[0], math.Inf(1)
		for k, cand := range cands {
			r := vg.Rectangle{Min: cand, Max: cand.Add(vg.Point{X: w, Y: h})}
			cost := 0.0
			for j, t := range taken {
				if j != i { // its own disc is never in the way
					cost += overlap(r, t)
				}
			}
			// Outside the area costs more than any overlap.
			outside := max(0, area.Min.X-r.Min.X) + max(0, r.Max.X-area.Max.X) + max(0, area.Min.Y-r.Min.Y) + max(0, r.Max.Y-area.Max.Y)
			cost += float64(outside*h) * 100
			cost += float64(k) * 1e-6 // the earlier side on ties
			if cost < bestCost {
				best, bestCost = cand, cost
			}
		}
		taken = append(taken, vg.Rectangle{Min: best, Max: best.Add(vg.Point{X: w, Y: h})})
		out[i] = best
	}
	return out
}

// overlap is the area two rectangles share.
func overlap(a, b vg.Rectangle) float64 {
	w := min(a.Max.X, b.Max.X) - max(a.Min.X, b.Min.X)
	h := min(a.Max.Y, b.Max.Y) - max(a.Min.Y, b.Min.Y)
	if w <= 0 || h <= 0 {
		return 0
	}
	return float64(w * h)
}
