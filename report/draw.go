package report

import (
	"image"
	"image/color"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// face is the overlay captions' font: 7×13 pixels per character.
var face = basicfont.Face7x13

const (
	charW  = 7
	lineH  = 13
	ascent = 11
)

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

// fillRect paints r in colour c.
func fillRect(dst *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(dst.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			dst.SetRGBA(x, y, c)
		}
	}
}
