package safetensors

import (
	"encoding/binary"
	"math"
)

// The From* constructors build a Tensor from a Go slice, encoding the values
// little-endian. They copy both shape and v. They do not check that len(v)
// matches shape; Encode does, and reports the tensor by name.

// FromFloat64 returns an F64 tensor holding v.
func FromFloat64(name string, shape []int64, v []float64) Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return Tensor{Name: name, DType: F64, Shape: cloneShape(shape), Data: b}
}

// FromFloat32 returns an F32 tensor holding v.
func FromFloat32(name string, shape []int64, v []float32) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return Tensor{Name: name, DType: F32, Shape: cloneShape(shape), Data: b}
}

// FromInt64 returns an I64 tensor holding v.
func FromInt64(name string, shape []int64, v []int64) Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return Tensor{Name: name, DType: I64, Shape: cloneShape(shape), Data: b}
}

// FromInt32 returns an I32 tensor holding v.
func FromInt32(name string, shape []int64, v []int32) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return Tensor{Name: name, DType: I32, Shape: cloneShape(shape), Data: b}
}

// FromUint8 returns a U8 tensor holding v.
func FromUint8(name string, shape []int64, v []uint8) Tensor {
	return Tensor{Name: name, DType: U8, Shape: cloneShape(shape), Data: append([]byte{}, v...)}
}

// FromBool returns a BOOL tensor holding v.
func FromBool(name string, shape []int64, v []bool) Tensor {
	b := make([]byte, len(v))
	for i, x := range v {
		if x {
			b[i] = 1
		}
	}
	return Tensor{Name: name, DType: Bool, Shape: cloneShape(shape), Data: b}
}

func cloneShape(shape []int64) []int64 {
	return append([]int64{}, shape...)
}

// The typed accessors below decode t.Data into a new slice. They perform
// only lossless conversions and return an [*Error] wrapping [ErrInvalid] if
// t.DType cannot be converted or t.Data does not match t.Shape.

// NumElements returns the number of elements of t, the product of its shape
// (1 for a 0-d scalar), or an error if the shape is invalid.
func (t *Tensor) NumElements() (int64, error) {
	n, err := byteSize(t.DType, t.Shape)
	if err != nil {
		return 0, newErr(ErrInvalid, t.Name, "%v", err)
	}
	return n / int64(t.DType.Size()), nil
}

// Float64 returns the elements of an F64, F32, F16 or BF16 tensor as
// float64.
func (t *Tensor) Float64() ([]float64, error) {
	if err := t.convertible("float64", F64, F32, F16, BF16); err != nil {
		return nil, err
	}
	out := make([]float64, len(t.Data)/t.DType.Size())
	d := t.Data
	switch t.DType {
	case F64:
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(d[8*i:]))
		}
	default:
		for i := range out {
			out[i] = float64(t.float32At(i))
		}
	}
	return out, nil
}

// Float32 returns the elements of an F32, F16 or BF16 tensor as float32.
// F16 and BF16 values, including subnormals, infinities and NaNs, convert
// exactly.
func (t *Tensor) Float32() ([]float32, error) {
	if err := t.convertible("float32", F32, F16, BF16); err != nil {
		return nil, err
	}
	out := make([]float32, len(t.Data)/t.DType.Size())
	for i := range out {
		out[i] = t.float32At(i)
	}
	return out, nil
}

// float32At decodes element i of an F32, F16 or BF16 tensor.
func (t *Tensor) float32At(i int) float32 {
	switch t.DType {
	case F16:
		return Float16ToFloat32(binary.LittleEndian.Uint16(t.Data[2*i:]))
	case BF16:
		return BFloat16ToFloat32(binary.LittleEndian.Uint16(t.Data[2*i:]))
	default:
		return math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
}

// Int64 returns the elements of an I64, I32, I16, I8 or U8 tensor as int64.
func (t *Tensor) Int64() ([]int64, error) {
	if err := t.convertible("int64", I64, I32, I16, I8, U8); err != nil {
		return nil, err
	}
	out := make([]int64, len(t.Data)/t.DType.Size())
	d := t.Data
	for i := range out {
		switch t.DType {
		case I64:
			out[i] = int64(binary.LittleEndian.Uint64(d[8*i:]))
		case I32:
			out[i] = int64(int32(binary.LittleEndian.Uint32(d[4*i:])))
		case I16:
			out[i] = int64(int16(binary.LittleEndian.Uint16(d[2*i:])))
		case I8:
			out[i] = int64(int8(d[i]))
		case U8:
			out[i] = int64(d[i])
		}
	}
	return out, nil
}

// Int32 returns the elements of an I32, I16, I8 or U8 tensor as int32.
func (t *Tensor) Int32() ([]int32, error) {
	if err := t.convertible("int32", I32, I16, I8, U8); err != nil {
		return nil, err
	}
	out := make([]int32, len(t.Data)/t.DType.Size())
	d := t.Data
	for i := range out {
		switch t.DType {
		case I32:
			out[i] = int32(binary.LittleEndian.Uint32(d[4*i:]))
		case I16:
			out[i] = int32(int16(binary.LittleEndian.Uint16(d[2*i:])))
		case I8:
			out[i] = int32(int8(d[i]))
		case U8:
			out[i] = int32(d[i])
		}
	}
	return out, nil
}

// Uint8 returns the elements of a U8 tensor.
func (t *Tensor) Uint8() ([]uint8, error) {
	if err := t.convertible("uint8", U8); err != nil {
		return nil, err
	}
	return append([]uint8{}, t.Data...), nil
}

// Bool returns the elements of a BOOL tensor. Bytes other than 0 and 1 are
// an error wrapping [ErrCorrupt].
func (t *Tensor) Bool() ([]bool, error) {
	if err := t.convertible("bool", Bool); err != nil {
		return nil, err
	}
	out := make([]bool, len(t.Data))
	for i, b := range t.Data {
		switch b {
		case 0:
		case 1:
			out[i] = true
		default:
			return nil, newErr(ErrCorrupt, t.Name, "element %d is byte %d, not a bool (0 or 1)", i, b)
		}
	}
	return out, nil
}

// convertible checks that t is consistent and that its dtype is one of ok.
func (t *Tensor) convertible(goType string, ok ...DType) error {
	if err := t.check(ErrInvalid); err != nil {
		return err
	}
	for _, d := range ok {
		if t.DType == d {
			return nil
		}
	}
	return newErr(ErrInvalid, t.Name, "cannot convert dtype %s to []%s without loss", t.DType, goType)
}

// Float16ToFloat32 converts an IEEE 754 binary16 value, given by its bits,
// to float32. The conversion is exact.
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	var bits uint32
	switch {
	case exp == 0x1f: // infinity or NaN; keep the NaN payload
		bits = sign | 0x7f800000 | mant<<13
	case exp == 0 && mant == 0: // signed zero
		bits = sign
	case exp == 0: // subnormal: mant * 2^-24, normalise it
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		bits = sign | e<<23 | (mant&0x3ff)<<13
	default:
		bits = sign | (exp+127-15)<<23 | mant<<13
	}
	return math.Float32frombits(bits)
}

// BFloat16ToFloat32 converts a bfloat16 value, given by its bits, to
// float32. The conversion is exact.
func BFloat16ToFloat32(b uint16) float32 {
	return math.Float32frombits(uint32(b) << 16)
}
