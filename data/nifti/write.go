package nifti

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
)

// Encode writes v as a single-file NIfTI-1 volume (gzip compressed when gz
// is set) with the voxel type dt (DTUint8, DTInt16 or DTFloat32): the
// dimensions (a fourth when Dim[3] > 1), the spacing and the affine as the
// sform (code 2, aligned), no qform. Values are stored as they are, rounded
// for the integer types, which must hold them.
func Encode(w io.Writer, v *Volume, dt int16, gz bool) error {
	n := v.Dim[0] * v.Dim[1] * v.Dim[2] * max(v.Dim[3], 1)
	if len(v.Data) != n {
		return fmt.Errorf("nifti: %d values for dimensions %v", len(v.Data), v.Dim)
	}
	bpp := map[int16]int{DTUint8: 1, DTInt16: 2, DTFloat32: 4}[dt]
	if bpp == 0 {
		return fmt.Errorf("nifti: Encode writes uint8, int16 or float32, not %s", DatatypeName(dt))
	}
	o := binary.LittleEndian
	hd := make([]byte, 352) // header and an empty extension block
	o.PutUint32(hd[0:], 348)
	nd := 3
	if v.Dim[3] > 1 {
		nd = 4
	}
	o.PutUint16(hd[40:], uint16(nd))
	for i := range 4 {
		o.PutUint16(hd[42+2*i:], uint16(max(v.Dim[i], 1)))
	}
	for i := 4; i < 7; i++ {
		o.PutUint16(hd[42+2*i:], 1)
	}
	o.PutUint16(hd[70:], uint16(dt))
	o.PutUint16(hd[72:], uint16(8*bpp))
	o.PutUint32(hd[76:], math.Float32bits(1)) // qfac
	for i := range 3 {
		o.PutUint32(hd[80+4*i:], math.Float32bits(float32(v.Spacing[i])))
	}
	o.PutUint32(hd[108:], math.Float32bits(352))
	o.PutUint32(hd[112:], math.Float32bits(1))
	copy(hd[148:228], v.Description)
	o.PutUint16(hd[254:], 2) // sform_code: aligned
	for i := range 3 {
		for j := range 4 {
			o.PutUint32(hd[280+16*i+4*j:], math.Float32bits(float32(v.Affine[i][j])))
		}
	}
	copy(hd[344:], "n+1\x00")
	var body bytes.Buffer
	body.Grow(len(hd) + n*bpp)
	body.Write(hd)
	buf := make([]byte, bpp)
	for _, x := range v.Data {
		switch dt {
		case DTUint8:
			buf[0] = uint8(math.Round(x))
		case DTInt16:
			o.PutUint16(buf, uint16(int16(math.Round(x))))
		case DTFloat32:
			o.PutUint32(buf, math.Float32bits(float32(x)))
		}
		body.Write(buf)
	}
	if !gz {
		_, err := w.Write(body.Bytes())
		return err
	}
	zw := gzip.NewWriter(w)
	if _, err := zw.Write(body.Bytes()); err != nil {
		return err
	}
	return zw.Close()
}

// IsGzipName reports whether a file name asks for compression (.gz).
func IsGzipName(name string) bool { return strings.HasSuffix(strings.ToLower(name), ".gz") }
