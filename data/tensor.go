package data

import (
	"fmt"
	"image"
	"image/color"
)

// ToCHW converts an image to a channels×height×width float32 tensor with
// values in [0,1]. channels is 1 (grey; colour images are converted with
// the ITU-R 601 luma weights 0.299, 0.587, 0.114) or 3 (RGB; grey images are
// replicated). Alpha is ignored. A *Planes gives its planes as they are:
// channels must be its channel count, and a model of channels other than 1
// or 3 takes a *Planes of that many planes only.
func ToCHW(img image.Image, channels int) (*Tensor[float32], error) {
	if p, ok := img.(*Planes); ok {
		return planesCHW(p, channels)
	}
	if channels != 1 && channels != 3 {
		return nil, fmt.Errorf("wrong channel count: a single image gives 1 (grey) or 3 (RGB) channels, the model takes %d: give one grey file per channel (nnU-Net's CASE_0000, CASE_0001, ...)", channels)
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	n := w * h
	t := &Tensor[float32]{Data: make([]float32, channels*n), Shape: []int{channels, h, w}}
	const k8, k16 = 1.0 / 255, 1.0 / 65535
	set := func(i int, r, g, bl float32) {
		if channels == 1 {
			t.Data[i] = 0.299*r + 0.587*g + 0.114*bl
			return
		}
		t.Data[i], t.Data[n+i], t.Data[2*n+i] = r, g, bl
	}
	switch m := img.(type) {
	case *image.Gray:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for x, v := range row {
				f := float32(v) * k8
				set(y*w+x, f, f, f)
			}
		}
	case *image.NRGBA:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := range w {
				set(y*w+x, float32(row[4*x])*k8, float32(row[4*x+1])*k8, float32(row[4*x+2])*k8)
			}
		}
	case *image.RGBA:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := range w {
				set(y*w+x, float32(row[4*x])*k8, float32(row[4*x+1])*k8, float32(row[4*x+2])*k8)
			}
		}
	default:
		for y := range h {
			for x := range w {
				c := color.NRGBA64Model.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA64)
				set(y*w+x, float32(c.R)*k16, float32(c.G)*k16, float32(c.B)*k16)
			}
		}
	}
	return t, nil
}

// planesCHW is ToCHW of a *Planes: plane c scaled to [0, 1] by 1/65535.
func planesCHW(p *Planes, channels int) (*Tensor[float32], error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	if len(p.Chans) != channels {
		return nil, fmt.Errorf("wrong channel count: the image has %d channels, the model takes %d", len(p.Chans), channels)
	}
	b := p.Bounds()
	w, h := b.Dx(), b.Dy()
	n := w * h
	t := &Tensor[float32]{Data: make([]float32, channels*n), Shape: []int{channels, h, w}}
	const k16 = 1.0 / 65535
	for c, g := range p.Chans {
		dst := t.Data[c*n : (c+1)*n]
		for y := range h {
			row := g.Pix[y*g.Stride : y*g.Stride+2*w]
			for x := range w {
				dst[y*w+x] = float32(uint16(row[2*x])<<8|uint16(row[2*x+1])) * k16
			}
		}
	}
	return t, nil
}
