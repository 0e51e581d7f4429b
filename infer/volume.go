package infer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/data/metaimage"
	"github.com/jmedseg/jmedseg/data/nifti"
	"github.com/jmedseg/jmedseg/data/nrrd"
	"github.com/jmedseg/jmedseg/internal/atomicfile"
)

// Volume predicts every axial slice of a NIfTI, NRRD or MetaImage volume
// and writes the label volume to out with the input's grid, affine and
// orientation, datatype uint8 (int16 past 255 classes): NIfTI (.nii,
// .nii.gz; from a NIfTI input, its header with only the datatype, scaling
// and offset changed), NRRD (.nrrd, gzip) or MetaImage (.mha, zlib), any
// of them for any input (see LabelVolumeName).
//
// Slices are taken as the default data set was built: the volume is read in
// RAS+ orientation, each axial plane is shown anterior up, intensities are
// mapped to 0..255 between the volume's 0.5 and 99.5 percentiles. The
// training slices were framed on the brain mask's bounding box; with no mask
// known here, the frame is the head's bounding box (voxels above 15 % of the
// intensity range), squared, over all slices. Voxels outside it are
// background. NaN voxels are read as "no data": the lowest intensity, and
// background in the result; an infinite voxel, a 4-D volume (more than one
// frame) or a volume of NaN only is an error naming the file.
func (p *Predictor) Volume(in, out string) error { return p.volume(in, out, p.PredictBatch, false) }

// volume is Volume predicting the framed slices with predict, keeping
// each class's largest component when lc is set.
func (p *Predictor) volume(in, out string, predict func([]image.Image) ([]*data.Mask, error), lc bool) error {
	v, err := data.ReadVolume(in)
	if err != nil {
		return err
	}
	if v.Dim[2] < 1 || v.Dim[0] < 2 || v.Dim[1] < 2 {
		return fmt.Errorf("%s: %v is not a volume", in, v.Dim)
	}
	if v.Dim[3] > 1 {
		return fmt.Errorf("%s: a 4-D volume of %d frames (%dx%dx%dx%d); predict takes one 3-D volume: extract the frame to segment first (e.g. fslroi IN OUT T 1)",
			in, v.Dim[3], v.Dim[0], v.Dim[1], v.Dim[2], v.Dim[3])
	}
	noData, err := finiteVoxels(in, v)
	if err != nil {
		return err
	}
	// Map RAS voxels back to stored ones: reorient a volume of indices.
	n := v.Dim[0] * v.Dim[1] * v.Dim[2]
	idx := *v
	idx.Data = make([]float64, len(v.Data))
	for i := range idx.Data {
		idx.Data[i] = float64(i)
	}
	ras, rasIdx := v.ToRAS(), idx.ToRAS()
	lo, hi := percentiles(v.Data[:n], 0.5, 99.5)
	labels := make([]int64, n)
	nx, ny, nz := ras.Dim[0], ras.Dim[1], ras.Dim[2]
	f := headFrame(ras, lo+0.15*(hi-lo), p.info.Size)
	sh, sw := p.info.Size[0], p.info.Size[1]
	plane := make([]float64, nx*ny)
	imgs := make([]image.Image, nz)
	for k := 0; k < nz; k++ {
		copy(plane, ras.Data[nx*ny*k:nx*ny*(k+1)])
		img := image.NewGray(image.Rect(0, 0, sw, sh))
		for y := 0; y < sh; y++ {
			for x := 0; x < sw; x++ {
				i, j := f.voxel(x, y)
				g := 255 * (bilinear(plane, nx, ny, i, j, lo) - lo) / (hi - lo)
				img.Pix[y*sw+x] = uint8(math.Round(math.Max(0, math.Min(255, g))))
			}
		}
		imgs[k] = img
	}
	preds, err := predict(imgs)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	for k, pred := range preds {
		for j := 0; j < ny; j++ {
			for i := 0; i < nx; i++ {
				x, y := f.pixel(i, j)
				if x < 0 || y < 0 || x >= sw || y >= sh {
					continue // outside the frame: background
				}
				labels[int(rasIdx.Data[i+nx*(j+ny*k)])] = int64(pred.Pix[y*sw+x])
			}
		}
	}
	for _, i := range noData {
		labels[i] = 0
	}
	if lc {
		largestComponent(labels, [3]int{v.Dim[0], v.Dim[1], v.Dim[2]})
	}
	return writeLabelVolume(in, out, labels)
}

// finiteVoxels checks v's intensities: an infinite voxel is an error naming
// it; NaN voxels (the "no data" value some tools write outside the head)
// are set to the lowest finite intensity, and their indices returned so
// that they are labelled background. A volume without a finite voxel is an
// error.
func finiteVoxels(path string, v *nifti.Volume) ([]int, error) {
	var nan []int
	lo, inf, first := math.Inf(1), 0, -1
	for i, x := range v.Data {
		switch {
		case math.IsNaN(x):
			nan = append(nan, i)
		case math.IsInf(x, 0):
			if inf == 0 {
				first = i
			}
			inf++
		default:
			lo = min(lo, x)
		}
	}
	if inf > 0 {
		nx, ny := v.Dim[0], v.Dim[1]
		return nil, fmt.Errorf("%s: %d voxel(s) are infinite, the first at (%d, %d, %d) = %v; predict takes finite intensities (NaN is read as no data)",
			path, inf, first%nx, first/nx%ny, first/(nx*ny), v.Data[first])
	}
	if len(nan) == len(v.Data) {
		return nil, fmt.Errorf("%s: every voxel is NaN: no intensities to segment", path)
	}
	for _, i := range nan {
		v.Data[i] = lo
	}
	return nan, nil
}

func percentiles(xs []float64, lo, hi float64) (float64, float64) {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	at := func(p float64) float64 { return s[int(math.Round(p/100*float64(len(s)-1)))] }
	a, b := at(lo), at(hi)
	if b <= a {
		b = a + 1
	}
	return a, b
}

// writeLabelVolume writes labels on the input's grid in out's format: a
// NIfTI input to NIfTI keeps its NIfTI-1 header, changing only the
// datatype, scaling and data offset; any other pair is written from the
// input's dimensions and affine. Written atomically.
func writeLabelVolume(in, out string, labels []int64) error {
	if data.FormatOf(in) != data.FormatNIfTI || data.FormatOf(out) != data.FormatNIfTI {
		return writeLabelsAs(in, out, labels)
	}
	raw, bo, err := inputHeader(in)
	if err != nil {
		return err
	}
	hdr := raw // ours to patch
	// Labels are 3-D, also of a 4-D input of channel frames.
	for d := 4; d <= 7; d++ {
		bo.PutUint16(hdr[40+2*d:42+2*d], 1)
	}
	bo.PutUint16(hdr[40:42], min(bo.Uint16(hdr[40:42]), 3)) // dim[0]
	maxL := int64(0)
	for _, l := range labels {
		maxL = max(maxL, l)
	}
	dtype, bitpix, size := int16(2), int16(8), 1 // uint8
	if maxL > 255 {
		dtype, bitpix, size = 4, 16, 2 // int16
	}
	bo.PutUint16(hdr[70:72], uint16(dtype))
	bo.PutUint16(hdr[72:74], uint16(bitpix))
	bo.PutUint32(hdr[108:112], math.Float32bits(352)) // vox_offset
	bo.PutUint32(hdr[112:116], math.Float32bits(1))   // scl_slope
	bo.PutUint32(hdr[116:120], math.Float32bits(0))   // scl_inter
	bo.PutUint32(hdr[124:128], math.Float32bits(float32(maxL)))
	bo.PutUint32(hdr[128:132], math.Float32bits(0))
	copy(hdr[344:348], "n+1\x00")
	var body bytes.Buffer
	body.Write(hdr)
	body.Write([]byte{0, 0, 0, 0}) // no extensions
	buf := make([]byte, size)
	for _, l := range labels {
		if size == 1 {
			buf[0] = uint8(l)
		} else {
			bo.PutUint16(buf, uint16(l))
		}
		body.Write(buf)
	}
	return writeVolumeFile(out, body.Bytes())
}

// inputHeader is the input's NIfTI-1 header (ours to patch) and its byte
// order; for an NRRD or MetaImage input, a NIfTI-1 header of its grid and
// affine (sform).
func inputHeader(in string) ([]byte, binary.ByteOrder, error) {
	if data.FormatOf(in) != data.FormatNIfTI {
		v, err := data.ReadVolumeHeader(in)
		if err != nil {
			return nil, nil, err
		}
		v.Dim[3] = 1
		v.Data = make([]float64, v.Dim[0]*v.Dim[1]*v.Dim[2])
		var b bytes.Buffer
		if err := nifti.Encode(&b, v, nifti.DTUint8, false); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", in, err)
		}
		return b.Bytes()[:348], binary.LittleEndian, nil
	}
	raw, err := readHeader(in)
	if err != nil {
		return nil, nil, err
	}
	if binary.LittleEndian.Uint32(raw[0:4]) == 348 {
		return raw, binary.LittleEndian, nil
	}
	if binary.BigEndian.Uint32(raw[0:4]) == 348 {
		return raw, binary.BigEndian, nil
	}
	return nil, nil, fmt.Errorf("%s: not a NIfTI-1 file (sizeof_hdr is not 348)", in)
}

// writeVolumeFile writes a whole NIfTI-1 file (header, extension bytes,
// voxels), gzipped when out ends in .gz, atomically; to an NRRD or
// MetaImage out, the same volume in that format (the affine as the
// NIfTI's float32 sform).
func writeVolumeFile(out string, payload []byte) error {
	if f := data.FormatOf(out); f != data.FormatNIfTI {
		v, err := nifti.Decode(bytes.NewReader(payload))
		if err != nil {
			return fmt.Errorf("%s: %w", out, err)
		}
		return writeVolumeAs(out, v, v.Datatype)
	}
	if nifti.IsGzipName(out) {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		if _, err := zw.Write(payload); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		payload = z.Bytes()
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(out, func(w io.Writer) error { _, err := w.Write(payload); return err })
}

// readHeader returns the first 348 bytes (the NIfTI-1 header) of a .nii or
// .nii.gz file, decompressing no more than that.
func readHeader(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		r = zr
	}
	hdr := make([]byte, 348)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("%s: too short for a NIfTI-1 header: %w", path, err)
	}
	return hdr, nil
}

// frame maps model pixels to RAS voxel coordinates of an axial plane:
// square, centred on (cx, cy) mm, step mm per pixel, anterior up.
type frame struct {
	cx, cy, step, sx, sy float64
	w, h                 int
}

// headFrame frames the bounding box of voxels above thr in every axial
// plane, with a 6 % margin, for a model input of size (h, w).
func headFrame(v *nifti.Volume, thr float64, size [2]int) frame {
	nx, ny, nz := v.Dim[0], v.Dim[1], v.Dim[2]
	x0, x1, y0, y1 := nx, -1, ny, -1
	for k := 0; k < nz; k++ {
		for j := 0; j < ny; j++ {
			for i := 0; i < nx; i++ {
				if v.Data[i+nx*(j+ny*k)] > thr {
					x0, x1, y0, y1 = min(x0, i), max(x1, i), min(y0, j), max(y1, j)
				}
			}
		}
	}
	if x1 < 0 {
		x0, x1, y0, y1 = 0, nx-1, 0, ny-1
	}
	sx, sy := v.Spacing[0], v.Spacing[1]
	ext := math.Max(float64(x1-x0+1)*sx, float64(y1-y0+1)*sy) * 1.12
	return frame{cx: float64(x0+x1) / 2 * sx, cy: float64(y0+y1) / 2 * sy, step: ext / float64(max(size[0], size[1])),
		sx: sx, sy: sy, w: size[1], h: size[0]}
}

// voxel is the (fractional) voxel under model pixel (x, y).
func (f frame) voxel(x, y int) (float64, float64) {
	xm := f.cx + (float64(x)-float64(f.w-1)/2)*f.step
	ym := f.cy - (float64(y)-float64(f.h-1)/2)*f.step
	return xm / f.sx, ym / f.sy
}

// pixel is the model pixel nearest to voxel (i, j).
func (f frame) pixel(i, j int) (int, int) {
	x := (float64(i)*f.sx-f.cx)/f.step + float64(f.w-1)/2
	y := (f.cy-float64(j)*f.sy)/f.step + float64(f.h-1)/2
	return int(math.Round(x)), int(math.Round(y))
}

// bilinear samples a w×h plane at (x, y), with outside for points beyond it.
func bilinear(p []float64, w, h int, x, y, outside float64) float64 {
	if x < 0 || y < 0 || x > float64(w-1) || y > float64(h-1) {
		return outside
	}
	x0, y0 := int(x), int(y)
	x1, y1 := min(x0+1, w-1), min(y0+1, h-1)
	fx, fy := x-float64(x0), y-float64(y0)
	a := p[x0+w*y0]*(1-fx) + p[x1+w*y0]*fx
	b := p[x0+w*y1]*(1-fx) + p[x1+w*y1]*fx
	return a*(1-fy) + b*fy
}

// LabelVolumeName is the name predict gives, in an output directory, the
// label volume of the volume file name: the same name, except that a
// header with a separate data file (.mhd, .nhdr) becomes the single-file
// form of its format (.mha, .nrrd).
func LabelVolumeName(name string) string {
	l := strings.ToLower(name)
	switch {
	case strings.HasSuffix(l, ".mhd"):
		return name[:len(name)-4] + ".mha"
	case strings.HasSuffix(l, ".nhdr"):
		return name[:len(name)-5] + ".nrrd"
	}
	return name
}

// volumeOutput reports whether out names a volume file Volume writes:
// NIfTI, or single-file NRRD or MetaImage.
func volumeOutput(out string) error {
	l := strings.ToLower(out)
	switch {
	case strings.HasSuffix(l, ".mhd"), strings.HasSuffix(l, ".nhdr"):
		return fmt.Errorf("infer: the output %s is a header with a separate data file: write the single-file %s", out, LabelVolumeName(out))
	case data.IsVolumeFormat(data.FormatOf(out)):
		return nil
	}
	return fmt.Errorf("infer: the labels of a volume are a volume: end the output %s in .nii, .nii.gz, .nrrd or .mha", out)
}

// writeLabelsAs writes labels on in's grid as out's format.
func writeLabelsAs(in, out string, labels []int64) error {
	v, err := data.ReadVolumeHeader(in)
	if err != nil {
		return err
	}
	v.Dim[3] = 1
	v.Data = make([]float64, len(labels))
	dt := int16(nifti.DTUint8)
	for i, l := range labels {
		v.Data[i] = float64(l)
		if l > 255 {
			dt = nifti.DTInt16
		}
	}
	return writeVolumeAs(out, v, dt)
}

// writeVolumeAs encodes v as out's format (NIfTI, gzipped for .gz; NRRD
// gzip; MetaImage zlib) and writes it atomically.
func writeVolumeAs(out string, v *nifti.Volume, dt int16) error {
	if err := volumeOutput(out); err != nil {
		return err
	}
	if dt != nifti.DTUint8 && dt != nifti.DTInt16 {
		dt = nifti.DTFloat32 // probabilities
	}
	var enc func(io.Writer) error
	switch data.FormatOf(out) {
	case data.FormatNRRD:
		enc = func(w io.Writer) error { return nrrd.Encode(w, v, dt, true) }
	case data.FormatMetaImage:
		enc = func(w io.Writer) error { return metaimage.Encode(w, v, dt, true) }
	default:
		enc = func(w io.Writer) error { return nifti.Encode(w, v, dt, nifti.IsGzipName(out)) }
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(out, enc)
}
