// Package dicom reads single 2D images from DICOM files with
// github.com/suyashkumar/dicom. Importing it (even as _) lets
// data.ReadImage read .dcm files.
//
// Native (uncompressed) pixel data is read exactly: signed pixels are
// sign-extended from BitsStored, RescaleSlope and RescaleIntercept are
// applied, MONOCHROME1 is inverted, and the result is windowed into a 16-bit
// grey image with the file's first WindowCenter/WindowWidth, or with its
// minimum and maximum when it has none. RGB data becomes an 8-bit colour
// image. Encapsulated pixel data is decoded when Go's image decoders can
// (baseline JPEG). Only the first frame is read. Parsing never panics: a
// panic inside the DICOM library is returned as an error.
package dicom

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"strconv"
	"strings"

	dcm "github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"github.com/jmedseg/jmedseg/data"
)

func init() {
	data.DICOMDecoder = func(path string) (image.Image, error) {
		im, err := ReadFile(path)
		if err != nil {
			return nil, err
		}
		return im.Image, nil
	}
}

// Image is a decoded DICOM image.
type Image struct {
	Image image.Image
	// PixelSpacing is (column, row) spacing in mm, zero when absent.
	PixelSpacing [2]float64
	// Modality is e.g. "CT" or "MR".
	Modality string
	// Min and Max are the extreme rescaled values of the pixel data.
	Min, Max float64
}

// ReadFile decodes the first frame of the DICOM file at path.
func ReadFile(path string) (img *Image, err error) {
	defer func() {
		if p := recover(); p != nil {
			img, err = nil, fmt.Errorf("corrupt DICOM: %v", p)
		}
	}()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := scan(b); err != nil {
		return nil, err
	}
	ds, err := dcm.Parse(bytes.NewReader(b), int64(len(b)), nil, dcm.AllowMissingMetaElementGroupLength(), dcm.AllowUnknownSpecificCharacterSet())
	if err != nil {
		return nil, fmt.Errorf("corrupt DICOM: %w", err)
	}
	return decode(&ds)
}

func ints(ds *dcm.Dataset, t tag.Tag, def int) int {
	e, err := ds.FindElementByTag(t)
	if err != nil || e.Value == nil || e.Value.ValueType() != dcm.Ints {
		return def
	}
	v := dcm.MustGetInts(e.Value)
	if len(v) == 0 {
		return def
	}
	return v[0]
}

func strs(ds *dcm.Dataset, t tag.Tag) []string {
	e, err := ds.FindElementByTag(t)
	if err != nil || e.Value == nil || e.Value.ValueType() != dcm.Strings {
		return nil
	}
	return dcm.MustGetStrings(e.Value)
}

func float(ds *dcm.Dataset, t tag.Tag, i int, def float64) float64 {
	s := strs(ds, t)
	if len(s) == 1 && strings.Contains(s[0], `\`) {
		s = strings.Split(s[0], `\`)
	}
	if i >= len(s) {
		return def
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s[i]), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return def
	}
	return f
}

func decode(ds *dcm.Dataset) (*Image, error) {
	pe, err := ds.FindElementByTag(tag.PixelData)
	if err != nil {
		return nil, errors.New("DICOM has no pixel data")
	}
	if pe.Value == nil || pe.Value.ValueType() != dcm.PixelData {
		return nil, errors.New("DICOM pixel data is unreadable")
	}
	info := dcm.MustGetPixelDataInfo(pe.Value)
	if info.ParseErr != nil {
		return nil, fmt.Errorf("DICOM pixel data: %w", info.ParseErr)
	}
	if len(info.Frames) == 0 || info.Frames[0] == nil {
		return nil, errors.New("DICOM has no frames")
	}
	out := &Image{Modality: strings.TrimSpace(strings.Join(strs(ds, tag.Modality), ""))}
	out.PixelSpacing[1] = float(ds, tag.PixelSpacing, 0, 0)
	out.PixelSpacing[0] = float(ds, tag.PixelSpacing, 1, 0)
	f := info.Frames[0]
	if f.Encapsulated {
		im, err := f.GetImage()
		if err != nil {
			return nil, fmt.Errorf("DICOM compressed pixel data: %w", err)
		}
		out.Image = im
		return out, nil
	}
	nf, err := f.GetNativeFrame()
	if err != nil || nf == nil {
		return nil, fmt.Errorf("DICOM pixel data: %v", err)
	}
	w, h, spp := nf.Cols(), nf.Rows(), nf.SamplesPerPixel()
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("DICOM image is %dx%d", w, h)
	}
	raw := samples(nf.RawDataSlice())
	if len(raw) < w*h*spp {
		return nil, fmt.Errorf("DICOM pixel data has %d samples, want %d for %dx%dx%d", len(raw), w*h*spp, w, h, spp)
	}
	photo := strings.TrimSpace(strings.Join(strs(ds, tag.PhotometricInterpretation), ""))
	switch {
	case spp == 3:
		planar := ints(ds, tag.PlanarConfiguration, 0) == 1
		m := image.NewNRGBA(image.Rect(0, 0, w, h))
		for i := range w * h {
			var c [3]float64
			for s := range 3 {
				if planar {
					c[s] = raw[s*w*h+i]
				} else {
					c[s] = raw[3*i+s]
				}
			}
			m.SetNRGBA(i%w, i/w, color.NRGBA{clip8(c[0]), clip8(c[1]), clip8(c[2]), 255})
		}
		out.Image = m
		return out, nil
	case spp != 1:
		return nil, fmt.Errorf("wrong channel count: DICOM has %d samples per pixel (want 1 or 3)", spp)
	}
	stored := ints(ds, tag.BitsStored, nf.BitsPerSample())
	signed := ints(ds, tag.PixelRepresentation, 0) == 1
	slope := float(ds, tag.RescaleSlope, 0, 1)
	if slope == 0 {
		slope = 1
	}
	inter := float(ds, tag.RescaleIntercept, 0, 0)
	vals := make([]float64, w*h)
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := range vals {
		v := raw[i]
		if signed && stored > 0 && stored < 64 {
			u := uint64(v) & (1<<stored - 1)
			if u&(1<<(stored-1)) != 0 {
				v = float64(int64(u) - 1<<stored)
			} else {
				v = float64(u)
			}
		}
		v = v*slope + inter
		vals[i] = v
		lo, hi = min(lo, v), max(hi, v)
	}
	out.Min, out.Max = lo, hi
	wlo, whi := lo, hi
	if c, wd := float(ds, tag.WindowCenter, 0, math.NaN()), float(ds, tag.WindowWidth, 0, math.NaN()); !math.IsNaN(c) && wd > 0 {
		wlo, whi = c-wd/2, c+wd/2
	}
	g := image.NewGray16(image.Rect(0, 0, w, h))
	for i, v := range vals {
		t := 0.0
		if whi > wlo {
			t = min(1, max(0, (v-wlo)/(whi-wlo)))
		}
		if photo == "MONOCHROME1" {
			t = 1 - t
		}
		g.SetGray16(i%w, i/w, color.Gray16{Y: uint16(math.Round(t * 65535))})
	}
	out.Image = g
	return out, nil
}

func clip8(v float64) uint8 { return uint8(min(255, max(0, v))) }

// samples converts the library's typed sample slice to float64.
func samples(raw any) []float64 {
	switch s := raw.(type) {
	case []uint8:
		return conv(s)
	case []uint16:
		return conv(s)
	case []uint32:
		return conv(s)
	case []int:
		return conv(s)
	}
	return nil
}

func conv[T uint8 | uint16 | uint32 | int](s []T) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = float64(v)
	}
	return out
}
