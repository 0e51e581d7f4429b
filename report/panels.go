package report

import (
	"fmt"
	"image"
	"image/color"
	"math"
)

// Panel is one tile of SmallMultiples: an image (nil for black) with the
// outlines of its true and predicted label maps (W×H, row-major; a nil
// Pred draws the truth alone) and a caption, such as the model's name.
type Panel struct {
	Image       image.Image
	Truth, Pred []int64
	W, H        int
	Caption     string
}

// panelGap is the white space in pixels between and around the panels.
const panelGap = 6

// SmallMultiples lays panels out as a grid of cols columns (0: as square a
// grid as the count allows), each drawn as Overlay draws it: enlarged by
// OverlayScale, truth outlined in TruthColor, prediction in PredColor,
// BothColor where they agree, and the caption in a strip below. Every
// panel must have the size of the first.
func SmallMultiples(panels []Panel, cols int) (*image.RGBA, error) {
	if len(panels) == 0 {
		return nil, fmt.Errorf("report: small multiples of no panels")
	}
	if cols <= 0 {
		cols = int(math.Ceil(math.Sqrt(float64(len(panels)))))
	}
	cols = min(cols, len(panels))
	rows := (len(panels) + cols - 1) / cols
	w, h := panels[0].W, panels[0].H
	var tiles []*image.RGBA
	for i, p := range panels {
		if p.W != w || p.H != h {
			return nil, fmt.Errorf("report: panel %d (%q) is %dx%d, the first %dx%d", i, p.Caption, p.W, p.H, w, h)
		}
		pred := p.Pred
		if pred == nil {
			pred = make([]int64, w*h)
		}
		t, err := Overlay(p.Image, p.Truth, pred, w, h, p.Caption)
		if err != nil {
			return nil, fmt.Errorf("%w (panel %d, %q)", err, i, p.Caption)
		}
		tiles = append(tiles, t)
	}
	tw, th := 0, 0
	for _, t := range tiles {
		tw, th = max(tw, t.Rect.Dx()), max(th, t.Rect.Dy())
	}
	out := image.NewRGBA(image.Rect(0, 0, cols*(tw+panelGap)+panelGap, rows*(th+panelGap)+panelGap))
	fillRect(out, out.Rect, color.RGBA{255, 255, 255, 255})
	for i, t := range tiles {
		x0 := panelGap + (i%cols)*(tw+panelGap)
		y0 := panelGap + (i/cols)*(th+panelGap)
		for y := 0; y < t.Rect.Dy(); y++ {
			copy(out.Pix[out.PixOffset(x0, y0+y):out.PixOffset(x0+t.Rect.Dx(), y0+y)], t.Pix[t.PixOffset(0, y):t.PixOffset(t.Rect.Dx(), y)])
		}
	}
	return out, nil
}
