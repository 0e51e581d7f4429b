package augment

import (
	"fmt"
	"image"
	"image/draw"
	"math/rand/v2"

	"github.com/disintegration/gift"
	"github.com/jmedseg/jmedseg/data"
)

// ColorJitter randomly changes brightness, contrast, saturation and hue,
// in a random order, as torchvision's ColorJitter does: brightness,
// contrast and saturation factors are drawn from [max(0, 1-v), 1+v] and the
// hue shift from [-Hue, Hue] (a fraction of the colour circle, at most
// 0.5). A zero field leaves that property alone. Brightness multiplies,
// contrast blends with the mean grey level, saturation blends with the
// pixel's grey value, hue rotates. Grey images stay grey.
type ColorJitter struct {
	Brightness, Contrast, Saturation, Hue float64
}

// Apply implements data.Transform.
func (c ColorJitter) Apply(r *rand.Rand, ex *data.Example) error {
	if err := checkExample(ex); err != nil {
		return err
	}
	if c.Brightness < 0 || c.Contrast < 0 || c.Saturation < 0 || c.Hue < 0 || c.Hue > 0.5 {
		return fmt.Errorf("augment: bad ColorJitter %+v", c)
	}
	factor := func(v float64) float64 { return uniform(r, max(0, 1-v), 1+v) }
	img := ex.Image
	for _, op := range r.Perm(4) {
		switch {
		case op == 0 && c.Brightness > 0:
			f := float32(factor(c.Brightness))
			img = apply(img, gift.ColorFunc(func(r0, g0, b0, a0 float32) (float32, float32, float32, float32) {
				return r0 * f, g0 * f, b0 * f, a0
			}))
		case op == 1 && c.Contrast > 0:
			f := float32(factor(c.Contrast))
			m := (1 - f) * meanGrey(img)
			img = apply(img, gift.ColorFunc(func(r0, g0, b0, a0 float32) (float32, float32, float32, float32) {
				return f*r0 + m, f*g0 + m, f*b0 + m, a0
			}))
		case op == 2 && c.Saturation > 0:
			f := float32(factor(c.Saturation))
			img = apply(img, gift.ColorFunc(func(r0, g0, b0, a0 float32) (float32, float32, float32, float32) {
				g := (1 - f) * (0.299*r0 + 0.587*g0 + 0.114*b0)
				return f*r0 + g, f*g0 + g, f*b0 + g, a0
			}))
		case op == 3 && c.Hue > 0:
			img = apply(img, gift.Hue(float32(uniform(r, -c.Hue, c.Hue)*360)))
		}
	}
	ex.Image = img
	return nil
}

// GaussianBlur blurs the image with a sigma drawn uniformly from
// [SigmaMin, SigmaMax] pixels.
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

// apply runs gift filters on img into a new image of the filters' size.
func apply(img image.Image, filters ...gift.Filter) image.Image {
	g := gift.New(filters...)
	dst := newLike(img, g.Bounds(img.Bounds()))
	g.Draw(dst, img)
	return dst
}

// meanGrey is the mean luma of img in [0,1].
func meanGrey(img image.Image) float32 {
	t, err := data.ToCHW(img, 1)
	if err != nil || len(t.Data) == 0 {
		return 0
	}
	var s float64
	for _, v := range t.Data {
		s += float64(v)
	}
	return float32(s / float64(len(t.Data)))
}
