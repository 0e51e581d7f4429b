package nifti

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// NIfTI-1 datatype codes supported by this package.
const (
	DTUint8   = 2
	DTInt16   = 4
	DTInt32   = 8
	DTFloat32 = 16
	DTFloat64 = 64
	DTInt8    = 256
	DTUint16  = 512
	DTUint32  = 768
)

// Header holds the fields of a NIfTI-1 header that this package uses.
type Header struct {
	Dim          [8]int16
	Datatype     int16
	Bitpix       int16
	Pixdim       [8]float32
	VoxOffset    float32
	SclSlope     float32
	SclInter     float32
	Descrip      string
	QformCode    int16
	SformCode    int16
	Quatern      [3]float32 // b, c, d
	QOffset      [3]float32 // x, y, z
	Srow         [3][4]float32
	Magic        string
	littleEndian bool
}

// parseHeader decodes the 348-byte header; it detects the byte order from
// sizeof_hdr.
func parseHeader(b []byte) (*Header, error) {
	if len(b) < 348 {
		return nil, fmt.Errorf("nifti: header truncated (%d of 348 bytes)", len(b))
	}
	var o binary.ByteOrder = binary.LittleEndian
	h := &Header{littleEndian: true}
	switch {
	case binary.LittleEndian.Uint32(b) == 348:
	case binary.BigEndian.Uint32(b) == 348:
		o = binary.BigEndian
		h.littleEndian = false
	default:
		return nil, fmt.Errorf("nifti: not a NIfTI-1 file (sizeof_hdr is %d, want 348)", binary.LittleEndian.Uint32(b))
	}
	i16 := func(off int) int16 { return int16(o.Uint16(b[off:])) }
	f32 := func(off int) float32 { return math.Float32frombits(o.Uint32(b[off:])) }
	for i := range 8 {
		h.Dim[i] = i16(40 + 2*i)
		h.Pixdim[i] = f32(76 + 4*i)
	}
	h.Datatype = i16(70)
	h.Bitpix = i16(72)
	h.VoxOffset = f32(108)
	h.SclSlope = f32(112)
	h.SclInter = f32(116)
	h.Descrip = strings.TrimRight(string(b[148:228]), "\x00")
	h.QformCode = i16(252)
	h.SformCode = i16(254)
	for i := range 3 {
		h.Quatern[i] = f32(256 + 4*i)
		h.QOffset[i] = f32(268 + 4*i)
		for j := range 4 {
			h.Srow[i][j] = f32(280 + 16*i + 4*j)
		}
	}
	h.Magic = strings.TrimRight(string(b[344:348]), "\x00")
	switch h.Magic {
	case "n+1":
	case "ni1":
		return nil, fmt.Errorf("nifti: two-file NIfTI (.hdr/.img pair) is not supported; convert it to .nii")
	default:
		return nil, fmt.Errorf("nifti: bad magic %q (want \"n+1\")", h.Magic)
	}
	return h, nil
}

// bytesPer returns the element size of a datatype, or 0 if unsupported.
func bytesPer(dt int16) int {
	switch dt {
	case DTUint8, DTInt8:
		return 1
	case DTInt16, DTUint16:
		return 2
	case DTInt32, DTUint32, DTFloat32:
		return 4
	case DTFloat64:
		return 8
	}
	return 0
}

// DatatypeName returns a readable name for a NIfTI datatype code.
func DatatypeName(dt int16) string {
	switch dt {
	case DTUint8:
		return "uint8"
	case DTInt8:
		return "int8"
	case DTInt16:
		return "int16"
	case DTUint16:
		return "uint16"
	case DTInt32:
		return "int32"
	case DTUint32:
		return "uint32"
	case DTFloat32:
		return "float32"
	case DTFloat64:
		return "float64"
	case 1:
		return "binary"
	case 32:
		return "complex64"
	case 128:
		return "rgb24"
	case 1024:
		return "int64"
	}
	return fmt.Sprintf("datatype %d", dt)
}

// affine computes the voxel-to-world transform and names its source.
func (h *Header) affine() ([3][4]float64, string) {
	var a [3][4]float64
	if h.SformCode > 0 {
		for i := range 3 {
			for j := range 4 {
				a[i][j] = float64(h.Srow[i][j])
			}
		}
		if finite(a) && !singular(a) {
			return a, "sform"
		}
	}
	dx, dy, dz := float64(h.Pixdim[1]), float64(h.Pixdim[2]), float64(h.Pixdim[3])
	if dx == 0 {
		dx = 1
	}
	if dy == 0 {
		dy = 1
	}
	if dz == 0 {
		dz = 1
	}
	if h.QformCode > 0 {
		b, c, d := float64(h.Quatern[0]), float64(h.Quatern[1]), float64(h.Quatern[2])
		aa := 1 - (b*b + c*c + d*d)
		if aa < 1e-7 {
			// Numerically a 180-degree rotation: renormalise (b, c, d).
			n := math.Sqrt(b*b + c*c + d*d)
			if n > 0 {
				b, c, d = b/n, c/n, d/n
			}
			aa = 0
		}
		qa := math.Sqrt(aa)
		r := [3][3]float64{
			{qa*qa + b*b - c*c - d*d, 2 * (b*c - qa*d), 2 * (b*d + qa*c)},
			{2 * (b*c + qa*d), qa*qa + c*c - b*b - d*d, 2 * (c*d - qa*b)},
			{2 * (b*d - qa*c), 2 * (c*d + qa*b), qa*qa + d*d - c*c - b*b},
		}
		qfac := 1.0
		if h.Pixdim[0] < 0 {
			qfac = -1
		}
		sp := [3]float64{math.Abs(dx), math.Abs(dy), math.Abs(dz) * qfac}
		for i := range 3 {
			for j := range 3 {
				a[i][j] = r[i][j] * sp[j]
			}
			a[i][3] = float64(h.QOffset[i])
		}
		if finite(a) && !singular(a) {
			return a, "qform"
		}
	}
	a = [3][4]float64{{math.Abs(dx), 0, 0, 0}, {0, math.Abs(dy), 0, 0}, {0, 0, math.Abs(dz), 0}}
	return a, "pixdim"
}

func finite(a [3][4]float64) bool {
	for i := range 3 {
		for j := range 4 {
			if math.IsNaN(a[i][j]) || math.IsInf(a[i][j], 0) {
				return false
			}
		}
	}
	return true
}

func singular(a [3][4]float64) bool {
	det := a[0][0]*(a[1][1]*a[2][2]-a[1][2]*a[2][1]) -
		a[0][1]*(a[1][0]*a[2][2]-a[1][2]*a[2][0]) +
		a[0][2]*(a[1][0]*a[2][1]-a[1][1]*a[2][0])
	return math.Abs(det) < 1e-12
}
