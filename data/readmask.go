package data

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"path/filepath"

	"github.com/jmedseg/jmedseg/data/nifti"
	"github.com/jmedseg/jmedseg/data/npy"
)

// ReadMask decodes a label map from PNG (8- or 16-bit grey, paletted, or RGB
// with equal channels), NPY or single-slice NIfTI (integer values, or
// floating-point values that are whole numbers; shape (H,W), (1,H,W) or
// (H,W,1)). JPEG masks are refused: the compression invents labels. Errors
// are *FileError values.
func ReadMask(path string) (*Mask, error) {
	if file, k, ok := splitSlicePath(path); ok { // an axial slice of a label volume (SlicePath)
		m, err := readSliceMask(file, k)
		if err != nil {
			return nil, fileErr(path, err)
		}
		return m, nil
	}
	var m *Mask
	var err error
	switch FormatOf(path) {
	case FormatPNG:
		var img image.Image
		if img, err = decodeStd(path); err == nil {
			m, err = imageMask(img)
		}
	case FormatJPEG:
		err = errors.New("JPEG masks are not supported: lossy compression changes labels (use PNG or NPY)")
	case FormatNPY:
		var a *npy.Array
		if a, err = npy.ReadFile(path); err == nil {
			m, err = arrayMask(a.Shape, a.Data)
		}
	case FormatNIfTI, FormatNRRD, FormatMetaImage:
		var v *nifti.Volume
		if v, err = ReadVolume(path); err == nil {
			if v.Dim[2] != 1 || v.Dim[3] != 1 {
				err = fmt.Errorf("NIfTI mask is %dx%dx%dx%d, not a 2D label map", v.Dim[0], v.Dim[1], v.Dim[2], v.Dim[3])
			} else {
				m, err = arrayMask([]int{v.Dim[1], v.Dim[0]}, v.Data)
			}
		}
	default:
		err = fmt.Errorf("unknown mask format %q", filepath.Ext(path))
	}
	if err != nil {
		return nil, fileErr(path, err)
	}
	if m.W == 0 || m.H == 0 {
		return nil, fileErr(path, errors.New("empty mask"))
	}
	return m, nil
}

func imageMask(img image.Image) (*Mask, error) {
	b := img.Bounds()
	m := NewMask(b.Dx(), b.Dy())
	switch g := img.(type) {
	case *image.Gray:
		for y := range m.H {
			for x := range m.W {
				m.Pix[y*m.W+x] = int32(g.Pix[y*g.Stride+x])
			}
		}
	case *image.Gray16:
		for y := range m.H {
			for x := range m.W {
				m.Pix[y*m.W+x] = int32(g.Gray16At(b.Min.X+x, b.Min.Y+y).Y)
			}
		}
	case *image.Paletted:
		for y := range m.H {
			for x := range m.W {
				m.Pix[y*m.W+x] = int32(g.Pix[y*g.Stride+x])
			}
		}
	default:
		for y := range m.H {
			for x := range m.W {
				c := color.NRGBA64Model.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA64)
				if c.R != c.G || c.G != c.B {
					return nil, fmt.Errorf("wrong channel count: mask is a colour image (pixel (%d,%d) is %d,%d,%d); want single-channel labels",
						x, y, c.R>>8, c.G>>8, c.B>>8)
				}
				v := int32(c.R)
				if is8bit(img) {
					v >>= 8
				}
				m.Pix[y*m.W+x] = v
			}
		}
	}
	return m, nil
}

func is8bit(img image.Image) bool {
	switch img.(type) {
	case *image.RGBA, *image.NRGBA, *image.YCbCr, *image.CMYK:
		return true
	}
	return false
}

func arrayMask(shape []int, data []float64) (*Mask, error) {
	var h, w int
	switch {
	case len(shape) == 2:
		h, w = shape[0], shape[1]
	case len(shape) == 3 && shape[0] == 1:
		h, w = shape[1], shape[2]
	case len(shape) == 3 && shape[2] == 1:
		h, w = shape[0], shape[1]
	default:
		return nil, fmt.Errorf("wrong channel count: mask shape %v is not (H,W), (1,H,W) or (H,W,1)", shape)
	}
	m := NewMask(w, h)
	for i, v := range data {
		if v != math.Trunc(v) || v < 0 || v > math.MaxInt32 {
			return nil, fmt.Errorf("value %v at (%d,%d) is not a class label (want a non-negative integer)", v, i%w, i/w)
		}
		m.Pix[i] = int32(v)
	}
	return m, nil
}
