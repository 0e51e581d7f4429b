package data

import (
	"fmt"
	"image"
	"slices"
)

// Mask is a label map: one integer class id per pixel. Pixel (x, y) is
// Pix[x+W*y].
type Mask struct {
	W, H int
	Pix  []int32
}

// NewMask returns an all-zero (background) mask of the given size.
func NewMask(w, h int) *Mask {
	return &Mask{W: w, H: h, Pix: make([]int32, w*h)}
}

// At returns the label at (x, y); it does not check bounds.
func (m *Mask) At(x, y int) int32 { return m.Pix[x+m.W*y] }

// Set sets the label at (x, y); it does not check bounds.
func (m *Mask) Set(x, y int, v int32) { m.Pix[x+m.W*y] = v }

// Clone returns a deep copy of m.
func (m *Mask) Clone() *Mask {
	return &Mask{W: m.W, H: m.H, Pix: slices.Clone(m.Pix)}
}

// Labels returns the distinct labels present in m, in increasing order.
func (m *Mask) Labels() []int32 {
	seen := map[int32]bool{}
	for _, v := range m.Pix {
		seen[v] = true
	}
	out := make([]int32, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// Max returns the largest label in m, or -1 for an empty mask.
func (m *Mask) Max() int32 {
	if len(m.Pix) == 0 {
		return -1
	}
	return slices.Max(m.Pix)
}

// CheckRange returns an error naming the first pixel whose label is outside
// [0, classes).
func (m *Mask) CheckRange(classes int) error { return m.checkRange(classes, 0) }

// checkRange is CheckRange accepting the label void as well (0: none).
func (m *Mask) checkRange(classes, void int) error {
	for i, v := range m.Pix {
		if (v < 0 || int(v) >= classes) && (void <= 0 || int(v) != void) {
			return fmt.Errorf("label %d at (%d,%d) is out of range [0,%d)", v, i%m.W, i/m.W, classes)
		}
	}
	return nil
}

// Image returns the mask as an 8-bit grey image when every label fits in
// 0..255, else as a 16-bit grey image. Labels outside 0..65535 are an error.
func (m *Mask) Image() (image.Image, error) {
	mx := m.Max()
	for _, v := range m.Pix {
		if v < 0 {
			return nil, fmt.Errorf("negative label %d cannot be stored in a PNG mask", v)
		}
	}
	r := image.Rect(0, 0, m.W, m.H)
	if mx <= 255 {
		g := image.NewGray(r)
		for i, v := range m.Pix {
			g.Pix[i] = uint8(v)
		}
		return g, nil
	}
	if mx > 65535 {
		return nil, fmt.Errorf("label %d cannot be stored in a PNG mask", mx)
	}
	g := image.NewGray16(r)
	for i, v := range m.Pix {
		g.Pix[2*i] = uint8(v >> 8)
		g.Pix[2*i+1] = uint8(v)
	}
	return g, nil
}
