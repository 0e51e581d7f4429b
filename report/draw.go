package report

import (
	"image"
	"image/color"
	"math"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// face is the one font used: 7×13 pixels per character.
var face = basicfont.Face7x13

const (
	charW   = 7
	lineH   = 13
	ascent  = 11
	descent = 2
)

// textWidth is the width in pixels of s in face.
func textWidth(s string) int {
	return font.MeasureString(face, ascii(s)).Round()
}

// ascii replaces what the font lacks (it has printable ASCII only): dashes
// by '-', a middle dot by '.', anything else by '?'.
func ascii(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 0x20 && r < 0x7f:
			return r
		case r == '–' || r == '—' || r == '−':
			return '-'
		case r == '·' || r == '•':
			return '.'
		case r == '×':
			return 'x'
		case r == '\t' || r == '\n':
			return ' '
		}
		return '?'
	}, s)
}

// drawText draws s with its top-left corner at (x, y).
func drawText(dst *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: dst, Src: image.NewUniform(c), Face: face,
		Dot: fixed.P(x, y+ascent)}
	d.DrawString(ascii(s))
}

// drawTextVertical draws s reading bottom to top, with the top-left corner
// of its (rotated) box at (x, y).
func drawTextVertical(dst *image.RGBA, x, y int, s string, c color.RGBA) {
	s = ascii(s)
	w := textWidth(s)
	if w == 0 {
		return
	}
	a := image.NewAlpha(image.Rect(0, 0, w, lineH))
	d := font.Drawer{Dst: a, Src: image.Opaque, Face: face, Dot: fixed.P(0, ascent)}
	d.DrawString(s)
	for ty := 0; ty < lineH; ty++ {
		for tx := 0; tx < w; tx++ {
			if v := a.AlphaAt(tx, ty).A; v > 0 {
				blend(dst, x+ty, y+w-1-tx, c, float64(v)/255)
			}
		}
	}
}

// blend paints colour c over the pixel at (x, y) with coverage a in [0,1];
// pixels outside dst are ignored.
func blend(dst *image.RGBA, x, y int, c color.RGBA, a float64) {
	if !(image.Point{x, y}.In(dst.Rect)) || a <= 0 {
		return
	}
	if a > 1 {
		a = 1
	}
	i := dst.PixOffset(x, y)
	p := dst.Pix[i : i+4 : i+4]
	p[0] = uint8(float64(p[0])*(1-a) + float64(c.R)*a + 0.5)
	p[1] = uint8(float64(p[1])*(1-a) + float64(c.G)*a + 0.5)
	p[2] = uint8(float64(p[2])*(1-a) + float64(c.B)*a + 0.5)
	p[3] = 255
}

// fillRect paints r in colour c.
func fillRect(dst *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(dst.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			dst.SetRGBA(x, y, c)
		}
	}
}

// hline and vline draw 1-pixel axis-parallel lines, ends included.
func hline(dst *image.RGBA, x0, x1, y int, c color.RGBA) {
	fillRect(dst, image.Rect(min(x0, x1), y, max(x0, x1)+1, y+1), c)
}

func vline(dst *image.RGBA, x, y0, y1 int, c color.RGBA) {
	fillRect(dst, image.Rect(x, min(y0, y1), x+1, max(y0, y1)+1), c)
}

// strokeRect draws the 1-pixel outline of r (Max exclusive).
func strokeRect(dst *image.RGBA, r image.Rectangle, c color.RGBA) {
	hline(dst, r.Min.X, r.Max.X-1, r.Min.Y, c)
	hline(dst, r.Min.X, r.Max.X-1, r.Max.Y-1, c)
	vline(dst, r.Min.X, r.Min.Y, r.Max.Y-1, c)
	vline(dst, r.Max.X-1, r.Min.Y, r.Max.Y-1, c)
}

// coverage is an anti-aliased mask over a clip rectangle. Shapes are added
// by taking the maximum coverage per pixel, so overlapping segments of one
// polyline join without dark seams; the mask is then painted in one colour.
type coverage struct {
	clip image.Rectangle
	a    []float32
}

func newCoverage(clip image.Rectangle) *coverage {
	return &coverage{clip: clip, a: make([]float32, clip.Dx()*clip.Dy())}
}

func (c *coverage) put(x, y int, v float64) {
	if v <= 0 || !(image.Point{x, y}.In(c.clip)) {
		return
	}
	i := (y-c.clip.Min.Y)*c.clip.Dx() + x - c.clip.Min.X
	if f := float32(min(v, 1)); f > c.a[i] {
		c.a[i] = f
	}
}

// segment adds a line from (x0,y0) to (x1,y1) of the given width in pixels,
// pixel centres at half-integers: coverage falls off linearly over the last
// pixel of distance from the segment, which anti-aliases the edges.
func (c *coverage) segment(x0, y0, x1, y1, width float64) {
	r := width/2 + 0.5
	bx0, bx1 := int(math.Floor(min(x0, x1)-r)), int(math.Ceil(max(x0, x1)+r))
	by0, by1 := int(math.Floor(min(y0, y1)-r)), int(math.Ceil(max(y0, y1)+r))
	b := image.Rect(bx0, by0, bx1, by1).Intersect(c.clip)
	dx, dy := x1-x0, y1-y0
	l2 := dx*dx + dy*dy
	for y := b.Min.Y; y < b.Max.Y; y++ {
		py := float64(y) + 0.5
		for x := b.Min.X; x < b.Max.X; x++ {
			px := float64(x) + 0.5
			t := 0.0
			if l2 > 0 {
				t = math.Max(0, math.Min(1, ((px-x0)*dx+(py-y0)*dy)/l2))
			}
			d := math.Hypot(px-(x0+t*dx), py-(y0+t*dy))
			c.put(x, y, width/2+0.5-d)
		}
	}
}

// disc adds a filled circle of radius r centred at (x, y).
func (c *coverage) disc(x, y, r float64) { c.segment(x, y, x, y, 2*r) }

// paint composites the mask onto dst in colour col.
func (c *coverage) paint(dst *image.RGBA, col color.RGBA) {
	w := c.clip.Dx()
	for i, v := range c.a {
		if v > 0 {
			blend(dst, c.clip.Min.X+i%w, c.clip.Min.Y+i/w, col, float64(v))
		}
	}
}

// sum is the total coverage inside r, to find an empty corner for a legend.
func (c *coverage) sum(r image.Rectangle) float64 {
	r = r.Intersect(c.clip)
	s := 0.0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			s += float64(c.a[(y-c.clip.Min.Y)*c.clip.Dx()+x-c.clip.Min.X])
		}
	}
	return s
}

// rgba converts any colour to an opaque non-premultiplied RGBA.
func rgba(c color.Color) color.RGBA {
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	return color.RGBA{n.R, n.G, n.B, 255}
}
