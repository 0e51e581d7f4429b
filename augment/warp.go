package augment

import (
	"image"
	"image/color"
	"math"

	"github.com/jmedseg/jmedseg/data"
)

// fimage is an RGB float32 image, values in [0,1] (or [0,65535]/65535 for
// 16-bit sources), pixel (x, y) at pix[3*(x+w*y)].
type fimage struct {
	w, h int
	pix  []float32
	wide bool // came from a 16-bit image
}

func toF(img image.Image) *fimage {
	b := img.Bounds()
	f := &fimage{w: b.Dx(), h: b.Dy(), wide: is16(img)}
	f.pix = make([]float32, 3*f.w*f.h)
	switch m := img.(type) {
	case *image.Gray:
		for y := range f.h {
			for x, v := range m.Pix[y*m.Stride : y*m.Stride+f.w] {
				g := float32(v) / 255
				i := 3 * (x + f.w*y)
				f.pix[i], f.pix[i+1], f.pix[i+2] = g, g, g
			}
		}
	case *image.NRGBA:
		for y := range f.h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*f.w]
			for x := range f.w {
				i := 3 * (x + f.w*y)
				f.pix[i] = float32(row[4*x]) / 255
				f.pix[i+1] = float32(row[4*x+1]) / 255
				f.pix[i+2] = float32(row[4*x+2]) / 255
			}
		}
	default:
		for y := range f.h {
			for x := range f.w {
				c := color.NRGBA64Model.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA64)
				i := 3 * (x + f.w*y)
				f.pix[i] = float32(c.R) / 65535
				f.pix[i+1] = float32(c.G) / 65535
				f.pix[i+2] = float32(c.B) / 65535
			}
		}
	}
	return f
}

func clamp01(v float32) float32 {
	if v < 0 {
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
}

// image converts back to an opaque NRGBA (or NRGBA64 for 16-bit sources).
func (f *fimage) image() image.Image {
	r := image.Rect(0, 0, f.w, f.h)
	if f.wide {
		m := image.NewNRGBA64(r)
		for i := 0; i < f.w*f.h; i++ {
			for c := range 3 {
				v := uint16(clamp01(f.pix[3*i+c])*65535 + 0.5)
				m.Pix[8*i+2*c], m.Pix[8*i+2*c+1] = uint8(v>>8), uint8(v)
			}
			m.Pix[8*i+6], m.Pix[8*i+7] = 0xff, 0xff
		}
		return m
	}
	m := image.NewNRGBA(r)
	for i := 0; i < f.w*f.h; i++ {
		m.Pix[4*i] = uint8(clamp01(f.pix[3*i])*255 + 0.5)
		m.Pix[4*i+1] = uint8(clamp01(f.pix[3*i+1])*255 + 0.5)
		m.Pix[4*i+2] = uint8(clamp01(f.pix[3*i+2])*255 + 0.5)
		m.Pix[4*i+3] = 0xff
	}
	return m
}

// mapping gives, for an output pixel centre (x, y), the source coordinates
// in pixel units (pixel centres at integers).
type mapping func(x, y float64) (sx, sy float64)

// warp resamples src (bilinear, black outside) and mask (nearest, 0
// outside) to w×h through m.
func warp(src *fimage, mask *data.Mask, w, h int, m mapping) (*fimage, *data.Mask) {
	out := &fimage{w: w, h: h, wide: src.wide, pix: make([]float32, 3*w*h)}
	var om *data.Mask
	if mask != nil {
		om = data.NewMask(w, h)
	}
	for y := range h {
		for x := range w {
			sx, sy := m(float64(x), float64(y))
			i := 3 * (x + w*y)
			bilinear(src, sx, sy, out.pix[i:i+3])
			if mask != nil {
				mx, my := int(math.Floor(sx+0.5)), int(math.Floor(sy+0.5))
				if mx >= 0 && my >= 0 && mx < mask.W && my < mask.H {
					om.Pix[x+w*y] = mask.Pix[mx+mask.W*my]
				}
			}
		}
	}
	return out, om
}

func bilinear(f *fimage, sx, sy float64, dst []float32) {
	if sx <= -1 || sy <= -1 || sx >= float64(f.w) || sy >= float64(f.h) || math.IsNaN(sx) || math.IsNaN(sy) {
		dst[0], dst[1], dst[2] = 0, 0, 0
		return
	}
	x0, y0 := int(math.Floor(sx)), int(math.Floor(sy))
	fx, fy := float32(sx-float64(x0)), float32(sy-float64(y0))
	var acc [3]float32
	for _, q := range [4]struct {
		dx, dy int
		wt     float32
	}{{0, 0, (1 - fx) * (1 - fy)}, {1, 0, fx * (1 - fy)}, {0, 1, (1 - fx) * fy}, {1, 1, fx * fy}} {
		x, y := x0+q.dx, y0+q.dy
		if q.wt == 0 || x < 0 || y < 0 || x >= f.w || y >= f.h {
			continue
		}
		p := f.pix[3*(x+f.w*y):]
		acc[0] += q.wt * p[0]
		acc[1] += q.wt * p[1]
		acc[2] += q.wt * p[2]
	}
	dst[0], dst[1], dst[2] = acc[0], acc[1], acc[2]
}

// affine2 is a 2×3 matrix mapping (x, y, 1) to (x', y').
type affine2 [6]float64

func (a affine2) apply(x, y float64) (float64, float64) {
	return a[0]*x + a[1]*y + a[2], a[3]*x + a[4]*y + a[5]
}

func (a affine2) mul(b affine2) affine2 {
	return affine2{
		a[0]*b[0] + a[1]*b[3], a[0]*b[1] + a[1]*b[4], a[0]*b[2] + a[1]*b[5] + a[2],
		a[3]*b[0] + a[4]*b[3], a[3]*b[1] + a[4]*b[4], a[3]*b[2] + a[4]*b[5] + a[5],
	}
}

func (a affine2) inverse() (affine2, bool) {
	det := a[0]*a[4] - a[1]*a[3]
	if math.Abs(det) < 1e-12 {
		return affine2{}, false
	}
	i := 1 / det
	return affine2{
		a[4] * i, -a[1] * i, (a[1]*a[5] - a[4]*a[2]) * i,
		-a[3] * i, a[0] * i, (a[3]*a[2] - a[0]*a[5]) * i,
	}, true
}

// warpExample applies the mapping to the example's image and mask.
func warpExample(ex *data.Example, w, h int, m mapping) {
	if p, ok := ex.Image.(*data.Planes); ok {
		// Every plane through the same mapping; the mask once, with plane 0.
		out := &data.Planes{Chans: make([]*image.Gray16, len(p.Chans))}
		for i, g := range p.Chans {
			var mask *data.Mask
			if i == 0 {
				mask = ex.Mask
			}
			o, om := warp(toF(g), mask, w, h, m)
			out.Chans[i] = data.Gray16Of(o.image())
			if i == 0 && ex.Mask != nil {
				ex.Mask = om
			}
		}
		ex.Image = out
		return
	}
	out, om := warp(toF(ex.Image), ex.Mask, w, h, m)
	ex.Image = out.image()
	if ex.Mask != nil {
		ex.Mask = om
	}
}
