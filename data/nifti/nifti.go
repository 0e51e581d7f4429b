package nifti

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// MaxBytes bounds the memory a decoded volume takes (Data holds 8 bytes a
// voxel, whatever the type on disk), so that a corrupt or hostile header,
// or a small .nii.gz that inflates to gigabytes, is refused before anything
// is allocated or inflated. 512 MiB is 2^26 voxels, e.g. 512×512×256.
const MaxBytes = 1 << 29

// MaxVoxels is the most voxels a decoded volume may have (MaxBytes / 8).
const MaxVoxels = MaxBytes / 8

// Volume is a decoded NIfTI-1 image. Voxel (i, j, k) of frame t is
// Data[i + Nx*(j + Ny*(k + Nz*t))], i.e. the first axis varies fastest, as
// stored on disk.
type Volume struct {
	// Dim is (Nx, Ny, Nz, Nt); missing dimensions are 1.
	Dim [4]int
	// Spacing is the voxel size in mm along the three axes.
	Spacing [3]float64
	// Affine maps voxel indices (i, j, k, 1) to RAS+ world millimetres.
	Affine [3][4]float64
	// AffineSource is "sform", "qform" or "pixdim".
	AffineSource string
	// Datatype is the on-disk NIfTI datatype code.
	Datatype int16
	// Description is the header's descrip field.
	Description string
	// Data holds the voxels with slope and intercept applied.
	Data []float64
}

// ReadFile decodes the .nii or .nii.gz file at path; gzip compression is
// detected from the content. Errors name the file.
func ReadFile(path string) (*Volume, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	v, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// Decode reads a single-file NIfTI-1 volume, gzip compressed or not.
func Decode(r io.Reader) (*Volume, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("nifti: corrupt gzip stream: %w", err)
		}
		defer zr.Close()
		zbr := bufio.NewReaderSize(zr, 1<<16)
		v, err := decode(zbr)
		if err != nil {
			return nil, gzipErr(err)
		}
		// Read the stream to its end: only there does gzip check the
		// CRC-32 and length of what was inflated. Trailing bytes after
		// the voxels (allowed, rare) are bounded like the voxels.
		if _, err := io.CopyN(io.Discard, zbr, MaxBytes); err != io.EOF {
			if err == nil {
				return nil, fmt.Errorf("nifti: more than %d bytes after the voxel data", MaxBytes)
			}
			return nil, gzipErr(err)
		}
		return v, nil
	}
	return decode(br)
}

// gzipErr names a failure of the gzip layer as such: a truncated stream
// (no trailer) or a checksum that does not match.
func gzipErr(err error) error {
	switch {
	case errors.Is(err, gzip.ErrChecksum):
		return errors.New("nifti: corrupt gzip stream: the CRC-32 or length in its trailer does not match the data (the file is damaged)")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("nifti: gzip stream truncated: it ends before its trailer (the file is incomplete)")
	case errors.Is(err, gzip.ErrHeader), strings.Contains(err.Error(), "flate"):
		return fmt.Errorf("nifti: corrupt gzip stream: %w", err)
	}
	return err
}

func decode(br *bufio.Reader) (*Volume, error) {
	hb := make([]byte, 348)
	if n, err := io.ReadFull(br, hb); err != nil {
		if n > 0 && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, err
		}
		return nil, fmt.Errorf("nifti: header truncated (%d of 348 bytes)", n)
	}
	h, err := parseHeader(hb)
	if err != nil {
		return nil, err
	}
	return decodeData(h, br)
}

func decodeData(h *Header, r io.Reader) (*Volume, error) {
	nd := int(h.Dim[0])
	if nd < 1 || nd > 7 {
		return nil, fmt.Errorf("nifti: bad number of dimensions %d", nd)
	}
	v := &Volume{Dim: [4]int{1, 1, 1, 1}, Datatype: h.Datatype, Description: h.Descrip}
	n := 1
	for d := 1; d <= nd; d++ {
		s := int(h.Dim[d])
		if s < 1 {
			return nil, fmt.Errorf("nifti: dimension %d has size %d", d, s)
		}
		if n > MaxVoxels/s {
			return nil, tooLarge(h.Dim[1 : nd+1])
		}
		n *= s
		if d <= 4 {
			v.Dim[d-1] = s
		} else {
			v.Dim[3] *= s
		}
	}
	bpp := bytesPer(h.Datatype)
	if bpp == 0 {
		return nil, fmt.Errorf("nifti: unsupported voxel type %s", DatatypeName(h.Datatype))
	}
	if int(h.Bitpix) != 8*bpp && h.Bitpix != 0 {
		return nil, fmt.Errorf("nifti: bitpix %d does not match %s", h.Bitpix, DatatypeName(h.Datatype))
	}
	off := float64(h.VoxOffset)
	if math.IsNaN(off) || off < 348 || off > 1<<30 {
		return nil, fmt.Errorf("nifti: bad vox_offset %v", h.VoxOffset)
	}
	if _, err := io.CopyN(io.Discard, r, int64(off)-348); err != nil {
		if isStreamErr(err) {
			return nil, err
		}
		return nil, errors.New("nifti: truncated before voxel data")
	}
	var buf bytes.Buffer
	buf.Grow(min(n*bpp, 1<<22))
	got, err := io.CopyN(&buf, r, int64(n*bpp))
	if err != nil {
		if isStreamErr(err) {
			return nil, err
		}
		return nil, fmt.Errorf("nifti: voxel data truncated: %d of %d bytes for %dx%dx%dx%d %s", got, n*bpp,
			v.Dim[0], v.Dim[1], v.Dim[2], v.Dim[3], DatatypeName(h.Datatype))
	}
	var o binary.ByteOrder = binary.LittleEndian
	if !h.littleEndian {
		o = binary.BigEndian
	}
	v.Data = convert(buf.Bytes(), h.Datatype, o)
	slope, inter := float64(h.SclSlope), float64(h.SclInter)
	if slope != 0 && !math.IsNaN(slope) && !math.IsInf(slope, 0) && !math.IsNaN(inter) && !math.IsInf(inter, 0) &&
		(slope != 1 || inter != 0) {
		for i, x := range v.Data {
			v.Data[i] = x*slope + inter
		}
	}
	for i := range 3 {
		v.Spacing[i] = math.Abs(float64(h.Pixdim[i+1]))
		if v.Spacing[i] == 0 || math.IsNaN(v.Spacing[i]) || math.IsInf(v.Spacing[i], 0) {
			v.Spacing[i] = 1
		}
	}
	v.Affine, v.AffineSource = h.affine()
	return v, nil
}

// isStreamErr reports an error of the gzip layer under the reader (a bad
// checksum, a corrupt deflate stream), as opposed to a plain end of data.
func isStreamErr(err error) bool {
	return errors.Is(err, gzip.ErrChecksum) || strings.Contains(err.Error(), "flate")
}

func tooLarge(dims []int16) error {
	n := 8.0
	ds := make([]string, len(dims))
	for i, d := range dims {
		n *= float64(d)
		ds[i] = strconv.Itoa(int(d))
	}
	return fmt.Errorf("nifti: volume %s is too large: it would take %.1f GiB decoded (8 bytes a voxel); the limit is %d MiB",
		strings.Join(ds, "x"), n/(1<<30), MaxBytes>>20)
}

func convert(b []byte, dt int16, o binary.ByteOrder) []float64 {
	bpp := bytesPer(dt)
	out := make([]float64, len(b)/bpp)
	for i := range out {
		p := b[i*bpp:]
		switch dt {
		case DTUint8:
			out[i] = float64(p[0])
		case DTInt8:
			out[i] = float64(int8(p[0]))
		case DTInt16:
			out[i] = float64(int16(o.Uint16(p)))
		case DTUint16:
			out[i] = float64(o.Uint16(p))
		case DTInt32:
			out[i] = float64(int32(o.Uint32(p)))
		case DTUint32:
			out[i] = float64(o.Uint32(p))
		case DTFloat32:
			out[i] = float64(math.Float32frombits(o.Uint32(p)))
		case DTFloat64:
			out[i] = math.Float64frombits(o.Uint64(p))
		}
	}
	return out
}

// At returns voxel (i, j, k) of the first frame; it does not check bounds.
func (v *Volume) At(i, j, k int) float64 {
	return v.Data[i+v.Dim[0]*(j+v.Dim[1]*k)]
}
