package augment

import (
	"fmt"
	"image"
	"image/draw"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/disintegration/gift"
	"github.com/jmedseg/jmedseg/data"
)

// ColorJitter randomly changes brightness, contrast, saturation and hue,
// in a random order, as torchvision's ColorJitter does: brightness,
// contrast and saturation factors are drawn from [max(0, 1-v), 1+v] and the
// hue shift from [-Hue, Hue] (a fraction of the colour circle, at most
// 0.5). A zero field leaves that property alone. Brightness multiplies,
// contrast blends with the mean grey level of the image as it is at that
// step, saturation blends with the pixel's grey value, hue rotates in HSV;
// values are clipped to [0,1] after every step. Grey images stay grey.
//
// The four steps are fused into one per-pixel function, run by a direct
// loop on 8-bit images and by gift.ColorFunc on others.
type ColorJitter struct {
	Brightness, Contrast, Saturation, Hue float64
}

// jitterOp is one sampled step.
type jitterOp struct {
	kind int // 0 brightness, 1 contrast, 2 saturation, 3 hue
	f    float32
	mean float32 // contrast: grey mean at this step
}

func runOps(ops []jitterOp, r, g, b float32) (float32, float32, float32) {
	for _, op := range ops {
		switch op.kind {
		case 0:
			r, g, b = r*op.f, g*op.f, b*op.f
		case 1:
			m := (1 - op.f) * op.mean
			r, g, b = op.f*r+m, op.f*g+m, op.f*b+m
		case 2:
			y := (1 - op.f) * (0.299*r + 0.587*g + 0.114*b)
			r, g, b = op.f*r+y, op.f*g+y, op.f*b+y
		case 3:
			r, g, b = hueShift(r, g, b, op.f)
		}
		r, g, b = clamp01(r), clamp01(g), clamp01(b)
	}
	return r, g, b
}

// Apply implements data.Transform.
func (c ColorJitter) Apply(r *rand.Rand, ex *data.Example) error {
	if err := checkExample(ex); err != nil {
		return err
	}
	if c.Brightness < 0 || c.Contrast < 0 || c.Saturation < 0 || c.Hue < 0 || c.Hue > 0.5 {
		return fmt.Errorf("augment: bad ColorJitter %+v", c)
	}
	factor := func(v float64) float32 { return float32(uniform(r, max(0, 1-v), 1+v)) }
	var ops []jitterOp
	for _, k := range r.Perm(4) {
		switch {
		case k == 0 && c.Brightness > 0:
			ops = append(ops, jitterOp{kind: 0, f: factor(c.Brightness)})
		case k == 1 && c.Contrast > 0:
			ops = append(ops, jitterOp{kind: 1, f: factor(c.Contrast)})
		case k == 2 && c.Saturation > 0:
			ops = append(ops, jitterOp{kind: 2, f: factor(c.Saturation)})
		case k == 3 && c.Hue > 0:
			ops = append(ops, jitterOp{kind: 3, f: float32(uniform(r, -c.Hue, c.Hue))})
		}
	}
	if len(ops) == 0 {
		return nil
	}
	if p, ok := ex.Image.(*data.Planes); ok {
		// Each channel as a grey image of its own, with the same factors:
		// brightness and contrast (against that channel's mean) change it,
		// saturation and hue leave grey alone.
		ex.Image = mapPlanes(p, func(g image.Image) image.Image { return jitter(g, slices.Clone(ops)) })
		return nil
	}
	ex.Image = jitter(ex.Image, ops)
	return nil
}

// jitter applies the sampled steps ops to img (it sets the contrast
// steps' means).
func jitter(img image.Image, ops []jitterOp) image.Image {
	if g, ok := img.(*image.Gray); ok {
		return jitterGrey(g, ops)
	}
	src := img
	if !is16(src) {
		src = toNRGBA(src)
	}
	for i := range ops {
		if ops[i].kind == 1 {
			ops[i].mean = meanAfter(src, ops[:i])
		}
	}
	if m, ok := src.(*image.NRGBA); ok {
		out := image.NewNRGBA(m.Rect)
		for i := 0; i < len(m.Pix); i += 4 {
			p := m.Pix[i : i+4 : i+4]
			rr, gg, bb := runOps(ops, float32(p[0])/255, float32(p[1])/255, float32(p[2])/255)
			q := out.Pix[i : i+4 : i+4]
			q[0], q[1], q[2], q[3] = uint8(rr*255+0.5), uint8(gg*255+0.5), uint8(bb*255+0.5), p[3]
		}
		return out
	}
	return apply(src, gift.ColorFunc(func(r0, g0, b0, a0 float32) (float32, float32, float32, float32) {
		r1, g1, b1 := runOps(ops, r0, g0, b0)
		return r1, g1, b1, a0
	}))
}

// jitterGrey applies ops to a grey image through a lookup table: grey
// pixels stay grey under every step, so the result is exact.
func jitterGrey(g *image.Gray, ops []jitterOp) *image.Gray {
	var hist [256]int
	w, h := g.Rect.Dx(), g.Rect.Dy()
	for y := range h {
		for _, v := range g.Pix[y*g.Stride : y*g.Stride+w] {
			hist[v]++
		}
	}
	lutAfter := func(ops []jitterOp) (lut [256]float32) {
		for v := range lut {
			f := float32(v) / 255
			lut[v], _, _ = runOps(ops, f, f, f)
		}
		return lut
	}
	for i := range ops {
		if ops[i].kind == 1 && w*h > 0 {
			lut := lutAfter(ops[:i])
			var s float64
			for v, n := range hist {
				s += float64(n) * float64(lut[v])
			}
			ops[i].mean = float32(s / float64(w*h))
		}
	}
	lut := lutAfter(ops)
	var lut8 [256]uint8
	for v, f := range lut {
		lut8[v] = uint8(f*255 + 0.5)
	}
	out := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		o := out.Pix[y*out.Stride : y*out.Stride+w]
		for x, v := range g.Pix[y*g.Stride : y*g.Stride+w] {
			o[x] = lut8[v]
		}
	}
	return out
}

// meanAfter is the mean grey level of img after ops.
func meanAfter(img image.Image, ops []jitterOp) float32 {
	var s float64
	n := 0
	if m, ok := img.(*image.NRGBA); ok {
		for i := 0; i < len(m.Pix); i += 4 {
			r, g, b := runOps(ops, float32(m.Pix[i])/255, float32(m.Pix[i+1])/255, float32(m.Pix[i+2])/255)
			// torchvision rounds the grey image before averaging; the
			// difference is below 1/255.
			s += float64(0.299*r + 0.587*g + 0.114*b)
			n++
		}
	} else {
		f := toF(img)
		for i := 0; i < len(f.pix); i += 3 {
			r, g, b := runOps(ops, f.pix[i], f.pix[i+1], f.pix[i+2])
			s += float64(0.299*r + 0.587*g + 0.114*b)
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return float32(s / float64(n))
}

// hueShift rotates the hue of an RGB colour by h turns (HSV hue).
func hueShift(r, g, b, h float32) (float32, float32, float32) {
	mx := max(r, g, b)
	mn := min(r, g, b)
	d := mx - mn
	if d == 0 {
		return r, g, b // grey: no hue
	}
	var hue float32
	switch mx {
	case r:
		hue = (g - b) / d
	case g:
		hue = 2 + (b-r)/d
	default:
		hue = 4 + (r-g)/d
	}
	hue = hue/6 + h
	hue -= float32(math.Floor(float64(hue)))
	s, v := d/mx, mx
	h6 := hue * 6
	i := int(h6) % 6
	f := h6 - float32(int(h6))
	p, q, t := v*(1-s), v*(1-s*f), v*(1-s*(1-f))
	switch i {
	case 0:
		return v, t, p
	case 1:
		return q, v, p
	case 2:
		return p, v, t
	case 3:
		return p, q, v
	case 4:
		return t, p, v
	}
	return v, p, q
}

// toNRGBA returns img as *image.NRGBA, converting when needed.
func toNRGBA(img image.Image) *image.NRGBA {
	if m, ok := img.(*image.NRGBA); ok && m.Rect.Min == (image.Point{}) {
		return m
	}
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	if g, ok := img.(*image.Gray); ok {
		for y := range b.Dy() {
			row := g.Pix[y*g.Stride : y*g.Stride+b.Dx()]
			o := out.Pix[y*out.Stride:]
			for x, v := range row {
				o[4*x], o[4*x+1], o[4*x+2], o[4*x+3] = v, v, v, 255
			}
		}
		return out
	}
	draw.Draw(out, out.Rect, img, b.Min, draw.Src)
	return out
}

// GaussianBlur blurs the image with a sigma drawn uniformly from
// [SigmaMin, SigmaMax] pixels (gift.GaussianBlur).
type GaussianBlur struct {
	SigmaMin, SigmaMax float64
}

// Apply implements data.Transform.
func (g GaussianBlur) Apply(r *rand.Rand, ex *data.Example) error {
	if err := checkExample(ex); err != nil {
		return err
	}
	if g.SigmaMin < 0 || g.SigmaMax < g.SigmaMin {
		return fmt.Errorf("augment: bad GaussianBlur sigma range [%g, %g]", g.SigmaMin, g.SigmaMax)
	}
	s := uniform(r, g.SigmaMin, g.SigmaMax)
	if s > 0 {
		ex.Image = apply(ex.Image, gift.GaussianBlur(float32(s)))
	}
	return nil
}

// is16 reports whether img has 16-bit samples.
func is16(img image.Image) bool {
	switch img.(type) {
	case *image.Gray16, *image.RGBA64, *image.NRGBA64:
		return true
	}
	return false
}

// newLike returns an empty image of size r, 16-bit when src is, else
// 8-bit NRGBA.
func newLike(src image.Image, r image.Rectangle) draw.Image {
	if is16(src) {
		return image.NewNRGBA64(r)
	}
	return image.NewNRGBA(r)
}

// apply runs gift filters on img into a new image of the filters' size;
// on a *data.Planes, on every plane alike.
func apply(img image.Image, filters ...gift.Filter) image.Image {
	if p, ok := img.(*data.Planes); ok {
		return mapPlanes(p, func(g image.Image) image.Image { return apply(g, filters...) })
	}
	g := gift.New(filters...)
	dst := newLike(img, g.Bounds(img.Bounds()))
	g.Draw(dst, img)
	return dst
}

// mapPlanes runs f on every plane of p, as on a grey image of its own, and
// gathers the results (16-bit grey: the red channel f's output has).
// Transforms call f with the same random parameters for every plane, so a
// geometric transform moves every channel alike.
func mapPlanes(p *data.Planes, f func(image.Image) image.Image) *data.Planes {
	out := &data.Planes{Chans: make([]*image.Gray16, len(p.Chans))}
	for i, g := range p.Chans {
		out.Chans[i] = data.Gray16Of(f(g))
	}
	return out
}
