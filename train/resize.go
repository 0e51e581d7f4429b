package train

import (
	"image"

	"github.com/disintegration/gift"
)

// resizeImage resizes img to w×h bilinearly (identity when it already fits).
func resizeImage(img image.Image, w, h int) image.Image {
	b := img.Bounds()
	if b.Dx() == w && b.Dy() == h {
		return img
	}
	g := gift.New(gift.Resize(w, h, gift.LinearResampling))
	dst := image.NewRGBA(g.Bounds(b))
	g.Draw(dst, img)
	return dst
}
