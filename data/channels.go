package data

import (
	"errors"
	"fmt"
	"image"
	"image/color"
)

// MaxChannels is the most input channels a sample, a loader or a model
// takes (nnU-Net sets no limit; BraTS has 4).
const MaxChannels = 256

// Planes is a multi-channel image: one 16-bit grey plane per input channel,
// all of one size with their origin at (0, 0). It carries the inputs whose
// channel count is neither 1 (grey) nor 3 (RGB), such as nnU-Net cases of
// 2 (prostate T2 and ADC) or 4 files (BraTS). ToCHW turns it into a C×H×W
// tensor; package augment applies every geometric transform to each plane
// identically. As an image.Image it shows channel 0 (what overlays draw).
type Planes struct {
	Chans []*image.Gray16
}

// NewPlanes returns a black image of c planes of w×h.
func NewPlanes(c, w, h int) *Planes {
	p := &Planes{Chans: make([]*image.Gray16, c)}
	for i := range p.Chans {
		p.Chans[i] = image.NewGray16(image.Rect(0, 0, w, h))
	}
	return p
}

// Channels returns the number of planes.
func (p *Planes) Channels() int { return len(p.Chans) }

// Bounds returns the planes' common bounds.
func (p *Planes) Bounds() image.Rectangle {
	if len(p.Chans) == 0 {
		return image.Rectangle{}
	}
	return p.Chans[0].Rect
}

// ColorModel is 16-bit grey: the model of each plane.
func (p *Planes) ColorModel() color.Model { return color.Gray16Model }

// At returns channel 0's pixel: code that only displays an image shows
// the first channel; code that feeds a model uses ToCHW.
func (p *Planes) At(x, y int) color.Color {
	if len(p.Chans) == 0 {
		return color.Gray16{}
	}
	return p.Chans[0].Gray16At(x, y)
}

// Opaque reports true: planes have no alpha.
func (p *Planes) Opaque() bool { return true }

// Check reports whether the planes are usable: at least one, all of the
// first one's size, with their origin at (0, 0).
func (p *Planes) Check() error {
	if len(p.Chans) == 0 {
		return errors.New("multi-channel image without channels")
	}
	r := p.Chans[0].Rect
	for i, c := range p.Chans {
		if c == nil {
			return fmt.Errorf("channel %d is missing", i)
		}
		if c.Rect != r || r.Min != (image.Point{}) {
			return fmt.Errorf("channel %d has bounds %v, channel 0 %v (want the same size, from (0, 0))", i, c.Rect, r)
		}
	}
	return nil
}

// Map returns the planes f makes of each plane, in order. f sees each
// plane as an image of its own and may return any image (a transform's
// output is converted back to 16-bit grey: for a grey input its red
// channel, which equals its grey value); every result must have the first
// one's size.
func (p *Planes) Map(f func(c int, g *image.Gray16) (image.Image, error)) (*Planes, error) {
	out := &Planes{Chans: make([]*image.Gray16, len(p.Chans))}
	for i, g := range p.Chans {
		img, err := f(i, g)
		if err != nil {
			return nil, err
		}
		out.Chans[i] = Gray16Of(img)
	}
	if err := out.Check(); err != nil {
		return nil, err
	}
	return out, nil
}

// Gray16Of returns the red channel of img as 16-bit grey with its origin
// at (0, 0): for grey content (R = G = B) its grey value, exactly.
func Gray16Of(img image.Image) *image.Gray16 {
	b := img.Bounds()
	if g, ok := img.(*image.Gray16); ok && b.Min == (image.Point{}) {
		return g
	}
	out := image.NewGray16(image.Rect(0, 0, b.Dx(), b.Dy()))
	w := b.Dx()
	switch m := img.(type) {
	case *image.NRGBA64:
		for y := range b.Dy() {
			row := m.Pix[(y+b.Min.Y-m.Rect.Min.Y)*m.Stride+(b.Min.X-m.Rect.Min.X)*8:]
			o := out.Pix[y*out.Stride:]
			for x := range w {
				o[2*x], o[2*x+1] = row[8*x], row[8*x+1]
			}
		}
	case *image.Gray:
		for y := range b.Dy() {
			row := m.Pix[(y+b.Min.Y-m.Rect.Min.Y)*m.Stride+(b.Min.X-m.Rect.Min.X):]
			o := out.Pix[y*out.Stride:]
			for x := range w {
				o[2*x], o[2*x+1] = row[x], row[x] // v·257
			}
		}
	default:
		for y := range b.Dy() {
			for x := range w {
				r, _, _, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				out.Pix[y*out.Stride+2*x], out.Pix[y*out.Stride+2*x+1] = uint8(r>>8), uint8(r)
			}
		}
	}
	return out
}

// ReadSampleImage reads a sample's input image: s.Image, or, when the
// sample stores one channel per file (s.Channels), every channel file
// merged. One file is that image (grey or colour). Three grey files make
// an RGB image, the first file red; any other count of files (2, 4 or
// more: nnU-Net's CASE_0000, CASE_0001, ...) makes a *Planes of one plane
// per file. Every channel file must be grey and of the first one's size.
// Errors are *FileError values naming the file.
func ReadSampleImage(s Sample) (image.Image, error) {
	if len(s.Channels) <= 1 {
		p := s.Image
		if len(s.Channels) == 1 {
			p = s.Channels[0]
		}
		return ReadImage(p)
	}
	if len(s.Channels) > MaxChannels {
		return nil, &FileError{File: s.Channels[0], Err: fmt.Errorf("wrong channel count: %d channel files, more than %d", len(s.Channels), MaxChannels)}
	}
	imgs := make([]image.Image, len(s.Channels))
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
		if channels(img) != 1 {
			return nil, &FileError{File: p, Err: fmt.Errorf("wrong channel count: channel file %d is a colour image; a case stored one channel per file needs grey files", i)}
		}
		imgs[i] = img
	}
	b := imgs[0].Bounds()
	if len(imgs) != 3 {
		out := &Planes{Chans: make([]*image.Gray16, len(imgs))}
		for c, img := range imgs {
			out.Chans[c] = grey16(img)
		}
		return out, nil
	}
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

// grey16 converts a grey image (8- or 16-bit, or a grey palette) to 16-bit
// grey at the origin, as the three-file RGB merge converts each file.
func grey16(img image.Image) *image.Gray16 {
	b := img.Bounds()
	if g, ok := img.(*image.Gray16); ok && b.Min == (image.Point{}) {
		return g
	}
	out := image.NewGray16(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := range b.Dy() {
		for x := range b.Dx() {
			out.SetGray16(x, y, color.Gray16Model.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray16))
		}
	}
	return out
}

// stackPlanes makes Planes of single-channel images of one size (for
// callers that hold the channels as images already).
func stackPlanes(imgs []image.Image) (*Planes, error) {
	if len(imgs) == 0 {
		return nil, errors.New("no channels")
	}
	out := &Planes{Chans: make([]*image.Gray16, len(imgs))}
	for c, img := range imgs {
		if channels(img) != 1 {
			return nil, fmt.Errorf("wrong channel count: channel %d is a colour image", c)
		}
		out.Chans[c] = grey16(img)
	}
	return out, out.Check()
}

// StackChannels makes one input image of single-channel images of one
// size, channel c from imgs[c], as ReadSampleImage merges channel files:
// one image is itself, three make an RGB image, any other count a *Planes.
func StackChannels(imgs []image.Image) (image.Image, error) {
	switch len(imgs) {
	case 0:
		return nil, errors.New("no channels")
	case 1:
		return imgs[0], nil
	}
	p, err := stackPlanes(imgs)
	if err != nil {
		return nil, err
	}
	if len(imgs) != 3 {
		return p, nil
	}
	b := p.Bounds()
	out := image.NewNRGBA64(b)
	for y := range b.Dy() {
		for x := range b.Dx() {
			out.SetNRGBA64(x, y, color.NRGBA64{R: p.Chans[0].Gray16At(x, y).Y, G: p.Chans[1].Gray16At(x, y).Y, B: p.Chans[2].Gray16At(x, y).Y, A: 0xffff})
		}
	}
	return out, nil
}
