package augment

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"

	"github.com/disintegration/gift"
	"github.com/jmedseg/jmedseg/data"
)

// resizeMask resamples a mask region to w×h nearest-neighbour with the
// pixel-centre convention of image resampling: output pixel x samples
// source x0 + (x+0.5)*cw/w - 0.5.
func resizeMask(m *data.Mask, r image.Rectangle, w, h int) *data.Mask {
	out := data.NewMask(w, h)
	sx, sy := float64(r.Dx())/float64(w), float64(r.Dy())/float64(h)
	for y := range h {
		my := r.Min.Y + min(r.Dy()-1, int((float64(y)+0.5)*sy))
		for x := range w {
			mx := r.Min.X + min(r.Dx()-1, int((float64(x)+0.5)*sx))
			out.Pix[x+w*y] = m.Pix[mx+m.W*my]
		}
	}
	return out
}

// cropResize crops r from the example and resizes it to w×h: the image
// with gift's linear resampling (antialiased when shrinking), the mask
// nearest-neighbour.
func cropResize(ex *data.Example, r image.Rectangle, w, h int) {
	b := ex.Image.Bounds()
	r = r.Add(b.Min)
	filters := []gift.Filter{gift.Crop(r)}
	if r.Dx() != w || r.Dy() != h {
		filters = append(filters, gift.Resize(w, h, gift.LinearResampling))
	}
	ex.Image = apply(ex.Image, filters...)
	if ex.Mask != nil {
		ex.Mask = resizeMask(ex.Mask, r.Sub(b.Min), w, h)
	}
}

// Resize scales image and mask to Width×Height.
type Resize struct {
	Width, Height int
}

// Apply implements data.Transform.
func (s Resize) Apply(_ *rand.Rand, ex *data.Example) error {
	if err := checkExample(ex); err != nil {
		return err
	}
	if s.Width <= 0 || s.Height <= 0 {
		return fmt.Errorf("augment: bad Resize %dx%d", s.Width, s.Height)
	}
	b := ex.Image.Bounds()
	if b.Dx() == s.Width && b.Dy() == s.Height {
		return nil
	}
	cropResize(ex, image.Rect(0, 0, b.Dx(), b.Dy()), s.Width, s.Height)
	return nil
}

// RandomResizedCrop crops a random region and resizes it to Width×Height,
// as torchvision's RandomResizedCrop: the region's area is a fraction drawn
// from [ScaleMin, ScaleMax] of the image and its aspect ratio is drawn
// log-uniformly from [RatioMin, RatioMax] (defaults 0.08–1 and 3/4–4/3);
// after ten failed tries it falls back to a centre crop.
type RandomResizedCrop struct {
	Width, Height      int
	ScaleMin, ScaleMax float64
	RatioMin, RatioMax float64
}

// Apply implements data.Transform.
func (c RandomResizedCrop) Apply(r *rand.Rand, ex *data.Example) error {
	if err := checkExample(ex); err != nil {
		return err
	}
	if c.Width <= 0 || c.Height <= 0 {
		return fmt.Errorf("augment: bad RandomResizedCrop size %dx%d", c.Width, c.Height)
	}
	smin, smax, rmin, rmax := c.ScaleMin, c.ScaleMax, c.RatioMin, c.RatioMax
	if smax == 0 {
		smin, smax = 0.08, 1
	}
	if rmax == 0 {
		rmin, rmax = 3.0/4, 4.0/3
	}
	if smin < 0 || smax < smin || rmin <= 0 || rmax < rmin {
		return fmt.Errorf("augment: bad RandomResizedCrop scale [%g,%g] ratio [%g,%g]", smin, smax, rmin, rmax)
	}
	b := ex.Image.Bounds()
	cropResize(ex, cropRect(r, b.Dx(), b.Dy(), smin, smax, rmin, rmax), c.Width, c.Height)
	return nil
}

func cropRect(r *rand.Rand, W, H int, smin, smax, rmin, rmax float64) image.Rectangle {
	area := float64(W * H)
	for range 10 {
		ta := area * uniform(r, smin, smax)
		ar := math.Exp(uniform(r, math.Log(rmin), math.Log(rmax)))
		w := int(math.Round(math.Sqrt(ta * ar)))
		h := int(math.Round(math.Sqrt(ta / ar)))
		if w > 0 && h > 0 && w <= W && h <= H {
			x := r.IntN(W - w + 1)
			y := r.IntN(H - h + 1)
			return image.Rect(x, y, x+w, y+h)
		}
	}
	// Centre crop at the nearest allowed ratio.
	in := float64(W) / float64(H)
	w, h := W, H
	if in < rmin {
		h = int(math.Round(float64(w) / rmin))
	} else if in > rmax {
		w = int(math.Round(float64(h) * rmax))
	}
	x, y := (W-w)/2, (H-h)/2
	return image.Rect(x, y, x+w, y+h)
}

// HFlip mirrors image and mask left-right with probability P. Pairs lists
// labels that swap under the flip (left/right structures); the mask's
// labels are permuted accordingly.
type HFlip struct {
	P     float64
	Pairs [][2]int
}

// Apply implements data.Transform.
func (f HFlip) Apply(r *rand.Rand, ex *data.Example) error {
	if err := checkExample(ex); err != nil {
		return err
	}
	if r.Float64() >= f.P {
		return nil
	}
	ex.Image = apply(ex.Image, gift.FlipHorizontal())
	if m := ex.Mask; m != nil {
		swap := map[int32]int32{}
		for _, p := range f.Pairs {
			swap[int32(p[0])], swap[int32(p[1])] = int32(p[1]), int32(p[0])
		}
		out := data.NewMask(m.W, m.H)
		for y := range m.H {
			for x := range m.W {
				v := m.Pix[x+m.W*y]
				if s, ok := swap[v]; ok {
					v = s
				}
				out.Pix[(m.W-1-x)+m.W*y] = v
			}
		}
		ex.Mask = out
	}
	return nil
}

// VFlip mirrors image and mask top-bottom with probability P.
type VFlip struct {
	P float64
}

// Apply implements data.Transform.
func (f VFlip) Apply(r *rand.Rand, ex *data.Example) error {
	if err := checkExample(ex); err != nil {
		return err
	}
	if r.Float64() >= f.P {
		return nil
	}
	ex.Image = apply(ex.Image, gift.FlipVertical())
	if m := ex.Mask; m != nil {
		out := data.NewMask(m.W, m.H)
		for y := range m.H {
			copy(out.Pix[(m.H-1-y)*m.W:(m.H-y)*m.W], m.Pix[y*m.W:(y+1)*m.W])
		}
		ex.Mask = out
	}
	return nil
}

// Rotate turns image and mask by an angle drawn uniformly from
// [-Degrees, Degrees] (counter-clockwise positive) about the centre, keeping
// the size; corners revealed by the rotation are black with label 0. It
// uses gift (linear interpolation for the image, nearest neighbour for the
// mask).
type Rotate struct {
	Degrees float64
}

// Apply implements data.Transform.
func (t Rotate) Apply(r *rand.Rand, ex *data.Example) error {
	if err := checkExample(ex); err != nil {
		return err
	}
	a := float32(uniform(r, -t.Degrees, t.Degrees))
	b := ex.Image.Bounds()
	ex.Image = apply(ex.Image, gift.Rotate(a, color.Black, gift.LinearInterpolation),
		gift.CropToSize(b.Dx(), b.Dy(), gift.CenterAnchor))
	if ex.Mask != nil {
		mi, err := ex.Mask.Image()
		if err != nil {
			return fmt.Errorf("%s: %w", ex.Name, err)
		}
		g := gift.New(gift.Rotate(a, color.Black, gift.NearestNeighborInterpolation),
			gift.CropToSize(b.Dx(), b.Dy(), gift.CenterAnchor))
		rect := g.Bounds(mi.Bounds())
		out := data.NewMask(rect.Dx(), rect.Dy())
		switch mi.(type) {
		case *image.Gray:
			dst := image.NewGray(rect)
			g.Draw(dst, mi)
			for i, v := range dst.Pix {
				out.Pix[i] = int32(v)
			}
		default:
			dst := image.NewGray16(rect)
			g.Draw(dst, mi)
			for i := range out.Pix {
				out.Pix[i] = int32(dst.Pix[2*i])<<8 | int32(dst.Pix[2*i+1])
			}
		}
		ex.Mask = out
	}
	return nil
}

// Affine applies a random affine transform about the image centre, as
// torchvision's RandomAffine: rotation drawn from [-Degrees, Degrees],
// translation up to Translate[0]·width and Translate[1]·height, isotropic
// scale from [ScaleMin, ScaleMax] (default 1) and x-shear from [-Shear,
// Shear] degrees. The image is sampled bilinearly, the mask
// nearest-neighbour; outside is black with label 0.
type Affine struct {
	Degrees            float64
	Translate          [2]float64
	ScaleMin, ScaleMax float64
	Shear              float64
}

// Apply implements data.Transform.
func (t Affine) Apply(r *rand.Rand, ex *data.Example) error {
	if err := checkExample(ex); err != nil {
		return err
	}
	b := ex.Image.Bounds()
	w, h := float64(b.Dx()), float64(b.Dy())
	th := uniform(r, -t.Degrees, t.Degrees) * math.Pi / 180
	tx := uniform(r, -t.Translate[0], t.Translate[0]) * w
	ty := uniform(r, -t.Translate[1], t.Translate[1]) * h
	s := 1.0
	if t.ScaleMax > 0 {
		s = uniform(r, t.ScaleMin, t.ScaleMax)
	}
	sh := math.Tan(uniform(r, -t.Shear, t.Shear) * math.Pi / 180)
	if s <= 0 {
		return fmt.Errorf("augment: bad Affine scale %g", s)
	}
	cx, cy := (w-1)/2, (h-1)/2
	cos, sin := math.Cos(th), math.Sin(th)
	// Forward: translate(c+t) · rotate · shear · scale · translate(-c).
	fwd := affine2{1, 0, cx + tx, 0, 1, cy + ty}.
		mul(affine2{cos, sin, 0, -sin, cos, 0}).
		mul(affine2{1, sh, 0, 0, 1, 0}).
		mul(affine2{s, 0, 0, 0, s, 0}).
		mul(affine2{1, 0, -cx, 0, 1, -cy})
	inv, ok := fwd.inverse()
	if !ok {
		return fmt.Errorf("augment: Affine transform is singular")
	}
	warpExample(ex, b.Dx(), b.Dy(), inv.apply)
	return nil
}

// Elastic deforms image and mask with a smooth random displacement field
// (Simard et al. 2003): uniform noise in [-1,1] per pixel and axis,
// Gaussian-smoothed with Sigma pixels and scaled by Alpha pixels.
type Elastic struct {
	Alpha, Sigma float64
}

// Apply implements data.Transform.
func (e Elastic) Apply(r *rand.Rand, ex *data.Example) error {
	if err := checkExample(ex); err != nil {
		return err
	}
	if e.Sigma <= 0 || e.Alpha < 0 {
		return fmt.Errorf("augment: bad Elastic alpha %g sigma %g", e.Alpha, e.Sigma)
	}
	b := ex.Image.Bounds()
	w, h := b.Dx(), b.Dy()
	dx, dy := make([]float32, w*h), make([]float32, w*h)
	for i := range dx {
		dx[i] = float32(2*r.Float64() - 1)
		dy[i] = float32(2*r.Float64() - 1)
	}
	smooth(dx, w, h, e.Sigma)
	smooth(dy, w, h, e.Sigma)
	// Normalise so that Alpha is the RMS displacement in pixels, whatever
	// Sigma is.
	var ss float64
	for i := range dx {
		ss += float64(dx[i]*dx[i] + dy[i]*dy[i])
	}
	k := 0.0
	if ss > 0 {
		k = e.Alpha / math.Sqrt(ss/float64(len(dx)))
	}
	warpExample(ex, w, h, func(x, y float64) (float64, float64) {
		i := int(x) + w*int(y)
		return x + k*float64(dx[i]), y + k*float64(dy[i])
	})
	return nil
}

// smooth blurs a w×h field in place with a separable Gaussian (edges
// clamped).
func smooth(f []float32, w, h int, sigma float64) {
	rad := int(math.Ceil(3 * sigma))
	k := make([]float32, 2*rad+1)
	var sum float32
	for i := range k {
		d := float64(i - rad)
		k[i] = float32(math.Exp(-d * d / (2 * sigma * sigma)))
		sum += k[i]
	}
	for i := range k {
		k[i] /= sum
	}
	tmp := make([]float32, len(f))
	for y := range h {
		row := f[y*w : (y+1)*w]
		for x := range w {
			var a float32
			for j, kv := range k {
				xx := min(w-1, max(0, x+j-rad))
				a += kv * row[xx]
			}
			tmp[y*w+x] = a
		}
	}
	for y := range h {
		for x := range w {
			var a float32
			for j, kv := range k {
				yy := min(h-1, max(0, y+j-rad))
				a += kv * tmp[yy*w+x]
			}
			f[y*w+x] = a
		}
	}
}
