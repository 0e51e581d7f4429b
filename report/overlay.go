package report

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/jmedseg/jmedseg/metric"
)

// Outline colours of Overlay.
var (
	TruthColor = color.RGBA{0x00, 0xe0, 0x00, 0xff} // green
	PredColor  = color.RGBA{0xff, 0x30, 0x30, 0xff} // red
	BothColor  = color.RGBA{0xff, 0xe6, 0x00, 0xff} // yellow: truth and prediction agree
)

// CaptionHeight is the height in pixels of Overlay's caption strip.
const CaptionHeight = 18

var (
	captionBg = color.RGBA{0x20, 0x20, 0x20, 0xff}
	captionFg = color.RGBA{0xf0, 0xf0, 0xf0, 0xff}
)

// OverlayScale is the whole-number factor by which Overlay enlarges a w×h
// image: 3 for 128×128 and smaller, 2 up to 320 pixels, else 1.
func OverlayScale(w, h int) int {
	m := max(w, h, 1)
	return min(3, max(1, (320+m-1)/m))
}

// Overlay draws img (w×h; nil draws black) enlarged by OverlayScale with
// nearest-neighbour sampling, in its own colours (a grey image stays grey),
// and over it the outlines of every foreground class (label > 0) of truth
// in TruthColor and of pred in PredColor, BothColor where they coincide.
//
// A pixel is on an outline when one of its 4-neighbours has another label
// or lies outside the image; the outline is drawn one screen pixel wide
// along those sides of the (enlarged) pixel, so at scale 1 it is the pixel
// itself. truth and pred are row-major label maps of w*h pixels. A
// non-empty caption (e.g. from Caption) is written in a dark strip of
// CaptionHeight pixels below the image, cut to fit.
func Overlay(img image.Image, truth, pred []int64, w, h int, caption string) (*image.RGBA, error) {
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("report: overlay size %dx%d", w, h)
	}
	if len(truth) != w*h || len(pred) != w*h {
		return nil, fmt.Errorf("report: overlay of %dx%d with %d true and %d predicted labels", w, h, len(truth), len(pred))
	}
	var b image.Rectangle
	if img != nil {
		b = img.Bounds()
		if b.Dx() != w || b.Dy() != h {
			return nil, fmt.Errorf("report: overlay image is %dx%d, labels %dx%d", b.Dx(), b.Dy(), w, h)
		}
	}
	s := OverlayScale(w, h)
	H := h * s
	if caption != "" {
		H += CaptionHeight
	}
	out := image.NewRGBA(image.Rect(0, 0, w*s, H))
	fillRect(out, out.Rect, color.RGBA{0, 0, 0, 255})
	if img != nil {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := color.RGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.RGBA)
				c.A = 255 // premultiplied: composited over black
				fillRect(out, image.Rect(x*s, y*s, x*s+s, y*s+s), c)
			}
		}
	}
	// Bit 1: truth outline, bit 2: prediction outline, per screen pixel.
	marks := make([]uint8, w*s*h*s)
	outline(marks, truth, w, h, s, 1)
	outline(marks, pred, w, h, s, 2)
	W := w * s
	for i, m := range marks {
		var c color.RGBA
		switch m {
		case 0:
			continue
		case 1:
			c = TruthColor
		case 2:
			c = PredColor
		default:
			c = BothColor
		}
		out.SetRGBA(i%W, i/W, c)
	}
	if caption != "" {
		fillRect(out, image.Rect(0, h*s, W, H), captionBg)
		text := ascii(caption)
		if maxChars := (W - 8) / charW; len(text) > maxChars {
			if maxChars > 2 {
				text = text[:maxChars-2] + ".."
			} else {
				text = text[:max(maxChars, 0)]
			}
		}
		drawText(out, 4, h*s+(CaptionHeight-lineH)/2, text, captionFg)
	}
	return out, nil
}

// outline sets bit in marks (a w*s × h*s screen) along the sides of each
// foreground pixel of lab that face another label or the image edge.
func outline(marks []uint8, lab []int64, w, h, s int, bit uint8) {
	W := w * s
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			l := lab[y*w+x]
			if l <= 0 {
				continue
			}
			left := x == 0 || lab[y*w+x-1] != l
			right := x == w-1 || lab[y*w+x+1] != l
			up := y == 0 || lab[(y-1)*w+x] != l
			down := y == h-1 || lab[(y+1)*w+x] != l
			if !(left || right || up || down) {
				continue
			}
			for by := 0; by < s; by++ {
				for bx := 0; bx < s; bx++ {
					if (left && bx == 0) || (right && bx == s-1) || (up && by == 0) || (down && by == s-1) {
						marks[(y*s+by)*W+x*s+bx] |= bit
					}
				}
			}
		}
	}
}

// Gray maps w×h values (row-major, e.g. a normalised network input) to a
// grey image, the smallest finite value black and the largest white; NaN
// and infinities are black.
func Gray(values []float32, w, h int) (*image.Gray, error) {
	if w <= 0 || h <= 0 || len(values) != w*h {
		return nil, fmt.Errorf("report: %d values for a %dx%d image", len(values), w, h)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range values {
		if f := float64(v); finite(f) {
			lo, hi = min(lo, f), max(hi, f)
		}
	}
	g := image.NewGray(image.Rect(0, 0, w, h))
	if !(hi > lo) {
		return g, nil
	}
	for i, v := range values {
		if f := float64(v); finite(f) {
			g.Pix[i] = uint8(math.Round((f - lo) / (hi - lo) * 255))
		}
	}
	return g, nil
}

// Caption is the overlay caption for a ranked case, e.g.
// "worst 1: case07_s12  Dice 0.4312"; kind and rank may be empty and 0.
func Caption(kind string, rank int, id string, dice metric.Score) string {
	var b strings.Builder
	if kind != "" {
		b.WriteString(kind)
		if rank > 0 {
			fmt.Fprintf(&b, " %d", rank)
		}
		b.WriteString(": ")
	}
	b.WriteString(id)
	d := "-"
	if f := float64(dice); finite(f) {
		d = fmt.Sprintf("%.4f", f)
	}
	fmt.Fprintf(&b, "  Dice %s", d)
	return b.String()
}

// Sample is what SaveOverlays needs to draw one image: the picture (nil
// for black) and its true and predicted label maps, W×H row-major.
type Sample struct {
	Image       image.Image
	Truth, Pred []int64
	W, H        int
}

// Best and Worst name the two kinds of overlay that SaveOverlays writes and
// that Write captions.
const (
	Best  = "best"
	Worst = "worst"
)

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// SafeName turns an image ID or split name into a file-name fragment.
func SafeName(s string) string {
	s = unsafeName.ReplaceAllString(s, "_")
	if s == "" || s == "." || s == ".." {
		s = "_"
	}
	return s
}

// SaveOverlays picks the n images of rep with the highest foreground Dice
// and the n with the lowest (images without a defined Dice are left out;
// the best are taken first when there are fewer than 2n), asks get for
// each, and writes their overlays as
// dir/overlays/<split>/best-<rank>-<id>.png and worst-<rank>-<id>.png. It
// returns the paths relative to dir, best first then worst, ready for
// Test.Overlays.
func SaveOverlays(dir, split string, rep metric.Report, n int, get func(id string) (Sample, error)) ([]string, error) {
	var defined []metric.ImageResult
	for _, r := range rep.Ranked() {
		if finite(float64(r.ForegroundDice)) {
			defined = append(defined, r)
		}
	}
	nb := min(n, len(defined))
	nw := min(n, len(defined)-nb)
	type pick struct {
		kind string
		rank int
		r    metric.ImageResult
	}
	var picks []pick
	for i := 0; i < nb; i++ {
		picks = append(picks, pick{Best, i + 1, defined[len(defined)-1-i]})
	}
	for i := 0; i < nw; i++ {
		picks = append(picks, pick{Worst, i + 1, defined[i]})
	}
	if len(picks) == 0 {
		return nil, nil
	}
	rel := filepath.Join("overlays", SafeName(split))
	if err := mkdirAll(filepath.Join(dir, rel)); err != nil {
		return nil, err
	}
	var out []string
	for _, p := range picks {
		s, err := get(p.r.ID)
		if err != nil {
			return out, fmt.Errorf("report: overlay of %s: %w", p.r.ID, err)
		}
		img, err := Overlay(s.Image, s.Truth, s.Pred, s.W, s.H, Caption(p.kind, p.rank, p.r.ID, p.r.ForegroundDice))
		if err != nil {
			return out, fmt.Errorf("%w (image %s)", err, p.r.ID)
		}
		name := filepath.Join(rel, fmt.Sprintf("%s-%d-%s.png", p.kind, p.rank, SafeName(p.r.ID)))
		if err := SavePNG(filepath.Join(dir, name), img); err != nil {
			return out, err
		}
		out = append(out, filepath.ToSlash(name))
	}
	return out, nil
}
