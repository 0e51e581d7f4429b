package data

import (
	"fmt"
	"image"
	"image/color"
)

// ReadSampleImage reads a sample's input image: s.Image, or, when the
// sample stores one channel per file (s.Channels), every channel file
// merged. One grey file is a grey image; three grey files (or one colour
// file) make an RGB image, the first file red. Other channel counts are an
// error: jmedseg's models take 1 or 3 input channels. Every file must have
// the first one's size. Errors are *FileError values naming the file.
func ReadSampleImage(s Sample) (image.Image, error) {
	if len(s.Channels) <= 1 {
		p := s.Image
		if len(s.Channels) == 1 {
			p = s.Channels[0]
		}
		return ReadImage(p)
	}
	imgs := make([]image.Image, len(s.Channels))
	total := 0
	for i, p := range s.Channels {
		img, err := ReadImage(p)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			if b, b0 := img.Bounds(), imgs[0].Bounds(); b.Dx() != b0.Dx() || b.Dy() != b0.Dy() {
				return nil, &FileError{File: p, Err: fmt.Errorf("channel %d is %dx%d but channel 0 (%s) is %dx%d", i, b.Dx(), b.Dy(), s.Channels[0], b0.Dx(), b0.Dy())}
			}
		}
		imgs[i] = img
		total += channels(img)
	}
	if total != 3 || len(imgs) != 3 {
		return nil, &FileError{File: s.Channels[0], Err: fmt.Errorf("wrong channel count: %d files give %d channels; jmedseg's models take 1 (grey) or 3 (three grey files, as R, G, B)", len(imgs), total)}
	}
	b := imgs[0].Bounds()
	out := image.NewNRGBA64(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := range b.Dy() {
		for x := range b.Dx() {
			var px [3]uint16
			for c, img := range imgs {
				ib := img.Bounds()
				px[c] = color.Gray16Model.Convert(img.At(ib.Min.X+x, ib.Min.Y+y)).(color.Gray16).Y
			}
			out.SetNRGBA64(x, y, color.NRGBA64{R: px[0], G: px[1], B: px[2], A: 0xffff})
		}
	}
	return out, nil
}
