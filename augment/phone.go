package augment

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"math"
	"math/rand/v2"

	"github.com/disintegration/gift"
	"github.com/jmedseg/jmedseg/data"
)

// PhoneScreen simulates photographing a screen with a phone, to build
// shifted test sets: a perspective warp (also applied to the mask), moiré
// from the screen's pixel grid beating with the sensor's, glare, a colour
// cast with a lifted black level, sensor noise, defocus blur and JPEG
// re-compression. Each field is a maximum strength; zero disables that
// step. PhonePhoto returns typical values.
type PhoneScreen struct {
	// Perspective moves each corner by up to this fraction of the size.
	Perspective float64
	// Moire is the maximum depth of the moiré pattern (0–1).
	Moire float64
	// Glare is the maximum intensity of a soft white spot (0–1).
	Glare float64
	// ColorCast is the maximum per-channel gain deviation; the black level
	// is lifted by up to half of it.
	ColorCast float64
	// Noise is the maximum standard deviation of Gaussian sensor noise.
	Noise float64
	// BlurMax is the maximum blur sigma in pixels (minimum BlurMax/4).
	BlurMax float64
	// JPEGMin and JPEGMax bound the re-compression quality (1–100); zero
	// JPEGMax skips re-compression.
	JPEGMin, JPEGMax int
}

// PhonePhoto returns the default phone-photo-of-a-screen degradation.
func PhonePhoto() PhoneScreen {
	return PhoneScreen{Perspective: 0.08, Moire: 0.25, Glare: 0.5, ColorCast: 0.15, Noise: 0.03,
		BlurMax: 1.5, JPEGMin: 30, JPEGMax: 70}
}

// Apply implements data.Transform. The result is an 8-bit RGB image.
func (p PhoneScreen) Apply(r *rand.Rand, ex *data.Example) error {
	if err := checkExample(ex); err != nil {
		return err
	}
	if pl, ok := ex.Image.(*data.Planes); ok { // a photo of a screen has colour, not C planes
		return fmt.Errorf("%s: PhoneScreen simulates a photo of a screen and takes grey or RGB images, not %d channels", ex.Name, pl.Channels())
	}
	if p.JPEGMax > 100 || p.JPEGMin > p.JPEGMax || (p.JPEGMax > 0 && p.JPEGMin < 1) {
		return fmt.Errorf("augment: bad PhoneScreen JPEG quality [%d, %d]", p.JPEGMin, p.JPEGMax)
	}
	b := ex.Image.Bounds()
	w, h := b.Dx(), b.Dy()
	f := toF(ex.Image)
	f.wide = false
	if p.Perspective > 0 {
		hm, err := perspective(r, w, h, p.Perspective)
		if err != nil {
			return fmt.Errorf("%s: %w", ex.Name, err)
		}
		var m *data.Mask
		f, m = warp(f, ex.Mask, w, h, hm)
		if ex.Mask != nil {
			ex.Mask = m
		}
	}
	if p.Moire > 0 {
		moire(r, f, uniform(r, p.Moire/4, p.Moire))
	}
	if p.ColorCast > 0 {
		var gain [3]float32
		for c := range gain {
			gain[c] = float32(uniform(r, 1-p.ColorCast, 1+p.ColorCast))
		}
		black := float32(uniform(r, 0, p.ColorCast/2))
		for i := range f.pix {
			f.pix[i] = black + (1-black)*f.pix[i]*gain[i%3]
		}
	}
	if p.Glare > 0 {
		g := uniform(r, p.Glare/4, p.Glare)
		cx, cy := uniform(r, 0, float64(w)), uniform(r, 0, float64(h))
		rad := uniform(r, 0.15, 0.5) * float64(max(w, h))
		for y := range h {
			for x := range w {
				d2 := (sq(float64(x)-cx) + sq(float64(y)-cy)) / (2 * rad * rad)
				a := float32(g * math.Exp(-d2))
				i := 3 * (x + w*y)
				for c := range 3 {
					f.pix[i+c] += a * (1 - f.pix[i+c])
				}
			}
		}
	}
	if p.Noise > 0 {
		s := uniform(r, 0, p.Noise)
		for i := range f.pix {
			f.pix[i] += float32(s * r.NormFloat64())
		}
	}
	img := f.image()
	if p.BlurMax > 0 {
		img = apply(img, gift.GaussianBlur(float32(uniform(r, p.BlurMax/4, p.BlurMax))))
	}
	if p.JPEGMax > 0 {
		q := p.JPEGMin + r.IntN(p.JPEGMax-p.JPEGMin+1)
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
			return fmt.Errorf("%s: jpeg: %w", ex.Name, err)
		}
		dec, err := jpeg.Decode(&buf)
		if err != nil {
			return fmt.Errorf("%s: jpeg: %w", ex.Name, err)
		}
		img = apply(dec) // to NRGBA
	}
	ex.Image = img
	return nil
}

func sq(x float64) float64 { return x * x }

// moire darkens f with the interference of the screen's pixel grid and
// the sensor's: curved low-frequency beat bands (period 8–40 px) with a
// per-channel phase shift (colour fringes of the sub-pixels), times a faint
// fine grating at the grid frequency.
func moire(r *rand.Rand, f *fimage, depth float64) {
	period := uniform(r, 8, 40)
	a := uniform(r, 0, math.Pi)
	kx, ky := 2*math.Pi/period*math.Cos(a), 2*math.Pi/period*math.Sin(a)
	fine := 2 * math.Pi * uniform(r, 0.3, 0.48)
	fa := a + uniform(r, -0.2, 0.2)
	fx, fy := fine*math.Cos(fa), fine*math.Sin(fa)
	cx, cy := uniform(r, 0, float64(f.w)), uniform(r, 0, float64(f.h))
	curve := uniform(r, -1, 1) * 2 * math.Pi / float64(max(f.w, f.h)*int(period))
	ph := uniform(r, 0, 2*math.Pi)
	for y := range f.h {
		for x := range f.w {
			X, Y := float64(x), float64(y)
			base := kx*X + ky*Y + curve*((X-cx)*(X-cx)+(Y-cy)*(Y-cy)) + ph
			grid := 0.85 + 0.15*math.Cos(fx*X+fy*Y)
			i := 3 * (x + f.w*y)
			for c := range 3 {
				band := 0.5 + 0.5*math.Cos(base+float64(c)*2*math.Pi/3)
				f.pix[i+c] *= float32(1 - depth*band*grid)
			}
		}
	}
}

// perspective returns the mapping from output pixels to source pixels that
// sends the output's corners to the source corners moved randomly by up to
// frac of the size.
func perspective(r *rand.Rand, w, h int, frac float64) (mapping, error) {
	W, H := float64(w-1), float64(h-1)
	dst := [4][2]float64{{0, 0}, {W, 0}, {W, H}, {0, H}}
	var src [4][2]float64
	for i, c := range dst {
		src[i] = [2]float64{c[0] + uniform(r, -frac, frac)*W, c[1] + uniform(r, -frac, frac)*H}
	}
	hm, err := homography(dst, src)
	if err != nil {
		return nil, err
	}
	return func(x, y float64) (float64, float64) {
		d := hm[6]*x + hm[7]*y + 1
		return (hm[0]*x + hm[1]*y + hm[2]) / d, (hm[3]*x + hm[4]*y + hm[5]) / d
	}, nil
}

// homography solves for the 8 parameters mapping from[i] to to[i].
func homography(from, to [4][2]float64) ([8]float64, error) {
	var a [8][9]float64
	for i := range 4 {
		x, y, u, v := from[i][0], from[i][1], to[i][0], to[i][1]
		a[2*i] = [9]float64{x, y, 1, 0, 0, 0, -u * x, -u * y, u}
		a[2*i+1] = [9]float64{0, 0, 0, x, y, 1, -v * x, -v * y, v}
	}
	for c := range 8 {
		p := c
		for rr := c + 1; rr < 8; rr++ {
			if math.Abs(a[rr][c]) > math.Abs(a[p][c]) {
				p = rr
			}
		}
		if math.Abs(a[p][c]) < 1e-12 {
			return [8]float64{}, fmt.Errorf("degenerate perspective warp")
		}
		a[c], a[p] = a[p], a[c]
		for rr := range 8 {
			if rr == c {
				continue
			}
			k := a[rr][c] / a[c][c]
			for j := c; j < 9; j++ {
				a[rr][j] -= k * a[c][j]
			}
		}
	}
	var out [8]float64
	for i := range 8 {
		out[i] = a[i][8] / a[i][i]
	}
	return out, nil
}
