package data

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/jmedseg/jmedseg/data/nifti"
	"github.com/jmedseg/jmedseg/data/npy"
)

// Format is an image file format recognised from the file name.
type Format string

// Formats recognised by FormatOf.
const (
	FormatPNG   Format = "png"
	FormatJPEG  Format = "jpeg"
	FormatNPY   Format = "npy"
	FormatNIfTI Format = "nifti"
	FormatDICOM Format = "dicom"
)

// FormatOf returns the format implied by the file name's extension, or ""
// when it is not an image format this package reads.
func FormatOf(path string) Format {
	if file, _, ok := splitSlicePath(path); ok {
		path = file
	}
	p := strings.ToLower(path)
	switch {
	case strings.HasSuffix(p, ".png"):
		return FormatPNG
	case strings.HasSuffix(p, ".jpg"), strings.HasSuffix(p, ".jpeg"):
		return FormatJPEG
	case strings.HasSuffix(p, ".npy"):
		return FormatNPY
	case strings.HasSuffix(p, ".nii"), strings.HasSuffix(p, ".nii.gz"):
		return FormatNIfTI
	case strings.HasSuffix(p, ".dcm"):
		return FormatDICOM
	}
	return volumeFormat(p) // NRRD, MetaImage, or ""
}

// FileError is an error about one file.
type FileError struct {
	File string
	Err  error
}

// Error returns "file: problem".
func (e *FileError) Error() string { return e.File + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *FileError) Unwrap() error { return e.Err }

func fileErr(path string, err error) error {
	var fe *FileError
	if errors.As(err, &fe) && fe.File == path {
		return err
	}
	// Readers of sub-packages already prefix the path; strip it.
	msg := err.Error()
	if strings.HasPrefix(msg, path+": ") {
		err = errors.New(strings.TrimPrefix(msg, path+": "))
	}
	return &FileError{File: path, Err: err}
}

// DICOMDecoder, when set (by importing package data/dicom), decodes a DICOM
// file into a 2D image.
var DICOMDecoder func(path string) (image.Image, error)

// ReadImage decodes a 2D image: PNG, JPEG, NPY or a single-slice NIfTI,
// NRRD or MetaImage.
// NPY and NIfTI arrays may be (H,W), (H,W,C) or (C,H,W) with C = 1, 3 or 4;
// integer arrays of 8 bits become 8-bit images, wider integer arrays 16-bit
// ones; floating-point arrays whose values lie in [0,1] are taken as
// intensities, any others are scaled min–max. A fourth channel is alpha:
// images come back opaque, their colour channels as stored and alpha
// ignored (see Opaque). Errors are *FileError values.
func ReadImage(path string) (image.Image, error) {
	if file, k, ok := splitSlicePath(path); ok { // an axial slice of a volume (SlicePath)
		img, err := readSliceImage(file, k)
		if err != nil {
			return nil, fileErr(path, err)
		}
		return img, nil
	}
	var img image.Image
	var err error
	switch FormatOf(path) {
	case FormatPNG, FormatJPEG:
		img, err = decodeStd(path)
	case FormatNPY:
		var a *npy.Array
		if a, err = npy.ReadFile(path); err == nil {
			img, err = arrayImage(a.Shape, a.Data, a.DType)
		}
	case FormatNIfTI, FormatNRRD, FormatMetaImage:
		var v *nifti.Volume
		if v, err = ReadVolume(path); err == nil {
			var shape []int
			if shape, err = volumeShape(path, v); err == nil {
				img, err = arrayImage(shape, v.Data, niftiKind(v.Datatype))
			}
		}
	case FormatDICOM:
		if DICOMDecoder == nil {
			err = errors.New("DICOM support is not linked in (import github.com/jmedseg/jmedseg/data/dicom)")
		} else {
			img, err = DICOMDecoder(path)
		}
	default:
		err = fmt.Errorf("unknown image format %q", filepath.Ext(path))
	}
	if err != nil {
		return nil, fileErr(path, err)
	}
	if b := img.Bounds(); b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, fileErr(path, errors.New("empty image"))
	}
	return Opaque(img), nil
}

// Opaque returns img opaque: its colour channels as stored, alpha
// ignored. An alpha channel carries no intensity; left in, it was ignored
// at native size but composited onto black by resizing (premultiplied
// images), so the same file gave two different inputs. Every reader goes
// through here: data check, training, testing and prediction agree.
func Opaque(img image.Image) image.Image {
	if o, ok := img.(interface{ Opaque() bool }); ok && o.Opaque() {
		return img
	}
	b := img.Bounds()
	switch m := img.(type) {
	case *image.NRGBA:
		c := &image.NRGBA{Pix: make([]uint8, len(m.Pix)), Stride: m.Stride, Rect: m.Rect}
		copy(c.Pix, m.Pix)
		for i := 3; i < len(c.Pix); i += 4 {
			c.Pix[i] = 255
		}
		return c
	case *image.Paletted:
		c := &image.Paletted{Pix: m.Pix, Stride: m.Stride, Rect: m.Rect, Palette: make(color.Palette, len(m.Palette))}
		for i, p := range m.Palette {
			n := color.NRGBAModel.Convert(p).(color.NRGBA)
			n.A = 255
			c.Palette[i] = n
		}
		return c
	}
	c := image.NewNRGBA64(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := range b.Dy() {
		for x := range b.Dx() {
			n := color.NRGBA64Model.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA64)
			n.A = 0xffff
			c.SetNRGBA64(x, y, n)
		}
	}
	return c
}

func decodeStd(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	cfg, format, err := image.DecodeConfig(r)
	if err != nil {
		return nil, fmt.Errorf("corrupt image: %w", err)
	}
	if int64(cfg.Width)*int64(cfg.Height) > 1<<28 {
		return nil, fmt.Errorf("image %dx%d is too large", cfg.Width, cfg.Height)
	}
	if _, err := f.Seek(0, 0); err != nil {
		return nil, err
	}
	r.Reset(f)
	var img image.Image
	switch format {
	case "png":
		img, err = png.Decode(r)
	case "jpeg":
		img, err = jpeg.Decode(r)
	default:
		err = fmt.Errorf("unsupported format %s", format)
	}
	if err != nil {
		return nil, fmt.Errorf("corrupt image: %w", err)
	}
	return img, nil
}

func niftiShape(v *nifti.Volume) ([]int, error) {
	if v.Dim[3] != 1 {
		return nil, fmt.Errorf("NIfTI has %d frames; want one 2D image", v.Dim[3])
	}
	switch {
	case v.Dim[2] == 1:
		// Stored x fastest: (y, x) in C order.
		return []int{v.Dim[1], v.Dim[0]}, nil
	case v.Dim[2] == 3 || v.Dim[2] == 4:
		// Three or four planes: (C, H, W).
		return []int{v.Dim[2], v.Dim[1], v.Dim[0]}, nil
	}
	return nil, fmt.Errorf("NIfTI is a %dx%dx%d volume, not a 2D image (slice it first)", v.Dim[0], v.Dim[1], v.Dim[2])
}

func niftiKind(dt int16) string {
	switch dt {
	case nifti.DTUint8:
		return "u1"
	case nifti.DTInt8:
		return "i1"
	case nifti.DTFloat32:
		return "f4"
	case nifti.DTFloat64:
		return "f8"
	}
	return "i4"
}

// layout interprets an array shape as height, width and channels with a
// channel stride: hwc reports channels-last.
func layout(shape []int) (h, w, c int, hwc bool, err error) {
	switch len(shape) {
	case 2:
		return shape[0], shape[1], 1, true, nil
	case 3:
		if isChan(shape[2]) {
			return shape[0], shape[1], shape[2], true, nil
		}
		if isChan(shape[0]) {
			return shape[1], shape[2], shape[0], false, nil
		}
		return 0, 0, 0, false, fmt.Errorf("wrong channel count: shape %v has no axis of 1, 3 or 4 channels", shape)
	}
	return 0, 0, 0, false, fmt.Errorf("shape %v is not a 2D image (want (H,W), (H,W,C) or (C,H,W))", shape)
}

func isChan(c int) bool { return c == 1 || c == 3 || c == 4 }

// arrayImage converts array data to a Gray, Gray16, NRGBA or NRGBA64 image.
func arrayImage(shape []int, data []float64, dtype string) (image.Image, error) {
	h, w, c, hwc, err := layout(shape)
	if err != nil {
		return nil, err
	}
	if h == 0 || w == 0 {
		return nil, fmt.Errorf("empty image of shape %v", shape)
	}
	at := func(x, y, ch int) float64 {
		if hwc {
			return data[(y*w+x)*c+ch]
		}
		return data[(ch*h+y)*w+x]
	}
	// Map values to [0,1].
	var scale, offset float64
	wide := true
	switch {
	case dtype == "b1":
		scale, wide = 1, false
	case dtype == "u1":
		scale, wide = 1.0/255, false
	case dtype == "i1":
		scale, offset, wide = 1.0/255, 128, false
	case dtype[0] == 'f':
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, v := range data {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, errors.New("image has NaN or infinite values")
			}
			lo, hi = min(lo, v), max(hi, v)
		}
		if lo >= 0 && hi <= 1 {
			scale = 1
		} else if hi > lo {
			scale, offset = 1/(hi-lo), -lo
		} else {
			scale = 0
		}
	default: // wider integers: 16-bit range
		scale = 1.0 / 65535
		lo := 0.0
		for _, v := range data {
			lo = min(lo, v)
		}
		offset = -lo
	}
	norm := func(v float64) float64 { return min(1, max(0, (v+offset)*scale)) }
	r := image.Rect(0, 0, w, h)
	switch {
	case c == 1 && !wide:
		g := image.NewGray(r)
		for y := range h {
			for x := range w {
				g.Pix[y*g.Stride+x] = uint8(math.Round(norm(at(x, y, 0)) * 255))
			}
		}
		return g, nil
	case c == 1:
		g := image.NewGray16(r)
		for y := range h {
			for x := range w {
				g.SetGray16(x, y, color.Gray16{Y: uint16(math.Round(norm(at(x, y, 0)) * 65535))})
			}
		}
		return g, nil
	case !wide:
		m := image.NewNRGBA(r)
		for y := range h {
			for x := range w {
				px := color.NRGBA{A: 255}
				px.R = uint8(math.Round(norm(at(x, y, 0)) * 255))
				px.G = uint8(math.Round(norm(at(x, y, 1)) * 255))
				px.B = uint8(math.Round(norm(at(x, y, 2)) * 255))
				if c == 4 {
					px.A = uint8(math.Round(norm(at(x, y, 3)) * 255))
				}
				m.SetNRGBA(x, y, px)
			}
		}
		return m, nil
	default:
		m := image.NewNRGBA64(r)
		for y := range h {
			for x := range w {
				px := color.NRGBA64{A: 65535}
				px.R = uint16(math.Round(norm(at(x, y, 0)) * 65535))
				px.G = uint16(math.Round(norm(at(x, y, 1)) * 65535))
				px.B = uint16(math.Round(norm(at(x, y, 2)) * 65535))
				if c == 4 {
					px.A = uint16(math.Round(norm(at(x, y, 3)) * 65535))
				}
				m.SetNRGBA64(x, y, px)
			}
		}
		return m, nil
	}
}
