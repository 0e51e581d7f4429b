// Package voxel holds what the NRRD and MetaImage readers share: element
// types as NIfTI datatype codes, bounded reads of voxel data, the
// conversion of stored elements to float64 and back, and the LPS/RAS
// flip. A header's claims are checked against nifti.MaxVoxels and the
// data actually present before anything large is allocated.
package voxel

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/jmedseg/jmedseg/data/nifti"
)

// Size is the bytes of one element of NIfTI datatype dt, 0 when the type
// is not one of the eight this package converts.
func Size(dt int16) int {
	switch dt {
	case nifti.DTUint8, nifti.DTInt8:
		return 1
	case nifti.DTInt16, nifti.DTUint16:
		return 2
	case nifti.DTInt32, nifti.DTUint32, nifti.DTFloat32:
		return 4
	case nifti.DTFloat64:
		return 8
	}
	return 0
}

// Count is the product of sizes, refused past nifti.MaxVoxels (checked
// before multiplying, so no overflow) or when a size is below 1.
func Count(sizes []int) (int, error) {
	n := 1
	for i, s := range sizes {
		if s < 1 {
			return 0, fmt.Errorf("size %d of axis %d: want 1 or more", s, i)
		}
		if n > nifti.MaxVoxels/s {
			return 0, fmt.Errorf("%s voxels are too many: the limit is %d (%d MiB decoded at 8 bytes a voxel)",
				Join(sizes, "x"), nifti.MaxVoxels, nifti.MaxBytes>>20)
		}
		n *= s
	}
	return n, nil
}

// Join formats ints with sep between them.
func Join(xs []int, sep string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, sep)
}

// ReadN reads exactly n bytes from r into a buffer that grows as data
// arrives (a hostile header claiming gigabytes of a short or compressed
// stream costs only what the stream holds). A short read is an error
// saying how many bytes there were.
func ReadN(r io.Reader, n int64) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(int(min(n, 1<<22)))
	got, err := io.CopyN(&buf, r, n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("voxel data truncated: %d of %d bytes", got, n)
		}
		return nil, fmt.Errorf("voxel data unreadable after %d of %d bytes: %w", got, n, err)
	}
	return buf.Bytes(), nil
}

// ToFloat converts stored elements of datatype dt in byte order o.
func ToFloat(b []byte, dt int16, o binary.ByteOrder) []float64 {
	bpp := Size(dt)
	out := make([]float64, len(b)/bpp)
	for i := range out {
		p := b[i*bpp:]
		switch dt {
		case nifti.DTUint8:
			out[i] = float64(p[0])
		case nifti.DTInt8:
			out[i] = float64(int8(p[0]))
		case nifti.DTInt16:
			out[i] = float64(int16(o.Uint16(p)))
		case nifti.DTUint16:
			out[i] = float64(o.Uint16(p))
		case nifti.DTInt32:
			out[i] = float64(int32(o.Uint32(p)))
		case nifti.DTUint32:
			out[i] = float64(o.Uint32(p))
		case nifti.DTFloat32:
			out[i] = float64(math.Float32frombits(o.Uint32(p)))
		case nifti.DTFloat64:
			out[i] = math.Float64frombits(o.Uint64(p))
		}
	}
	return out
}

// ranges are the values each integer type holds.
var ranges = map[int16][2]float64{
	nifti.DTUint8: {0, math.MaxUint8}, nifti.DTInt8: {math.MinInt8, math.MaxInt8},
	nifti.DTInt16: {math.MinInt16, math.MaxInt16}, nifti.DTUint16: {0, math.MaxUint16},
	nifti.DTInt32: {math.MinInt32, math.MaxInt32}, nifti.DTUint32: {0, math.MaxUint32},
}

// Encode converts values to elements of datatype dt in byte order o,
// rounding for the integer types; a value the type cannot hold is an
// error (writing it would silently change it).
func Encode(data []float64, dt int16, o binary.ByteOrder) ([]byte, error) {
	bpp := Size(dt)
	if bpp == 0 {
		return nil, fmt.Errorf("unsupported element type %s", nifti.DatatypeName(dt))
	}
	out := make([]byte, len(data)*bpp)
	r, isInt := ranges[dt]
	for i, x := range data {
		if isInt {
			x = math.Round(x)
			if !(x >= r[0] && x <= r[1]) {
				return nil, fmt.Errorf("value %v at element %d does not fit %s", data[i], i, nifti.DatatypeName(dt))
			}
		}
		p := out[i*bpp:]
		switch dt {
		case nifti.DTUint8:
			p[0] = uint8(x)
		case nifti.DTInt8:
			p[0] = uint8(int8(x))
		case nifti.DTInt16:
			o.PutUint16(p, uint16(int16(x)))
		case nifti.DTUint16:
			o.PutUint16(p, uint16(x))
		case nifti.DTInt32:
			o.PutUint32(p, uint32(int32(x)))
		case nifti.DTUint32:
			o.PutUint32(p, uint32(x))
		case nifti.DTFloat32:
			o.PutUint32(p, math.Float32bits(float32(x)))
		case nifti.DTFloat64:
			o.PutUint64(p, math.Float64bits(x))
		}
	}
	return out, nil
}

// ReadASCII reads n whitespace-separated numbers (the text encodings of
// both formats), growing the result as numbers arrive.
func ReadASCII(r io.Reader, n int) ([]float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	sc.Split(bufio.ScanWords)
	out := make([]float64, 0, min(n, 1<<16))
	for len(out) < n && sc.Scan() {
		x, err := strconv.ParseFloat(sc.Text(), 64)
		if err != nil {
			return nil, fmt.Errorf("text voxel %d: %q is not a number", len(out), trunc(sc.Text()))
		}
		out = append(out, x)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("text voxel data after %d values: %w", len(out), err)
	}
	if len(out) < n {
		return nil, fmt.Errorf("text voxel data truncated: %d of %d values", len(out), n)
	}
	return out, nil
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Planar turns data whose c channels vary fastest (interleaved, as both
// formats store vectors) into c consecutive frames, the layout of
// nifti.Volume.
func Planar(data []float64, c int) []float64 {
	if c <= 1 {
		return data
	}
	s := len(data) / c
	out := make([]float64, len(data))
	for i := range s {
		for k := range c {
			out[k*s+i] = data[i*c+k]
		}
	}
	return out
}

// FlipXY negates the first two world rows of an affine: LPS to RAS and
// back.
func FlipXY(a *[3][4]float64) {
	for j := range 4 {
		a[0][j], a[1][j] = -a[0][j], -a[1][j]
	}
}

// Affine builds a voxel-to-world affine from per-axis world vectors
// (each already scaled by its spacing, nil for an axis the file does not
// place) and an origin; missing axes and coordinates get the identity.
// It also returns each axis's spacing (the vector's length, 1 when zero).
func Affine(vecs [][]float64, origin []float64) ([3][4]float64, [3]float64) {
	var a [3][4]float64
	var sp [3]float64
	for j := range 3 {
		var v []float64
		if j < len(vecs) {
			v = vecs[j]
		}
		if v == nil {
			a[j][j], sp[j] = 1, 1
			continue
		}
		n := 0.0
		for i := range min(3, len(v)) {
			a[i][j] = v[i]
			n += v[i] * v[i]
		}
		sp[j] = math.Sqrt(n)
		if sp[j] == 0 {
			sp[j] = 1
		}
	}
	for i := range min(3, len(origin)) {
		a[i][3] = origin[i]
	}
	return a, sp
}

// Finite reports whether every value is a finite number.
func Finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// Directions splits an affine (RAS, or LPS after FlipXY) into unit axis
// directions and spacings for a writer; a zero column becomes the axis
// itself with the volume's spacing.
func Directions(a [3][4]float64, spacing [3]float64) (dir [3][3]float64, sp [3]float64) {
	for j := range 3 {
		n := math.Sqrt(a[0][j]*a[0][j] + a[1][j]*a[1][j] + a[2][j]*a[2][j])
		if n == 0 || !Finite(n) {
			dir[j][j], sp[j] = 1, spacing[j]
			if sp[j] <= 0 || !Finite(sp[j]) {
				sp[j] = 1
			}
			continue
		}
		for i := range 3 {
			dir[j][i] = a[i][j] / n
		}
		sp[j] = n
	}
	return dir, sp
}

// Float formats x so that it reads back exactly.
func Float(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// ReadHeaderFile opens path and parses its header with parse; a parse
// error names the file.
func ReadHeaderFile[H any](path string, parse func(*bufio.Reader) (H, error)) (H, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero H
		return zero, err
	}
	defer f.Close()
	h, err := parse(bufio.NewReader(f))
	if err != nil {
		var zero H
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// Named is err naming path, unless its message already starts with it.
func Named(path string, err error) error {
	if err == nil || strings.HasPrefix(err.Error(), path+": ") {
		return err
	}
	return fmt.Errorf("%s: %w", path, err)
}
