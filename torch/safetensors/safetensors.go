// Package safetensors reads and writes the Hugging Face safetensors format
// in pure Go (no cgo).
//
// A safetensors file is laid out as
//
//	[8 bytes]  N, the header length, little-endian uint64
//	[N bytes]  JSON header, optionally padded with trailing spaces
//	[rest]     data section: the raw little-endian bytes of every tensor
//
// The header is a JSON object that maps each tensor name to
// {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, with
// offsets relative to the start of the data section, plus an optional
// "__metadata__" entry holding a string-to-string map.
//
// [Decode] and [ReadFile] validate a file completely, the same way the
// reference Rust implementation does: the header must be valid UTF-8 JSON no
// larger than [MaxHeaderSize], every dtype must be supported, every tensor's
// byte range must match its shape and dtype, and the ranges must cover the
// data section exactly, without gaps or overlaps. A hostile file can neither
// make them panic nor allocate more memory than its own size. Errors are
// [*Error] values that wrap one of [ErrTruncated], [ErrCorrupt],
// [ErrUnsupportedDType] or [ErrInvalid], so callers can test them with
// [errors.Is].
//
// [Encode] and [WriteFile] write tensors in the order of [File.Tensors] and
// pad the header with spaces so that the data section starts at a multiple of
// 8 bytes, as the reference writer does. [WriteFile] replaces its target
// atomically.
package safetensors

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxHeaderSize is the largest JSON header, in bytes, that [Decode] accepts
// and [Encode] produces. It matches the limit of the reference
// implementation.
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved header key that holds the file's metadata.
const metadataKey = "__metadata__"

// DType is the element type of a tensor, spelled as in the safetensors
// header.
type DType string

// Supported element types. All multi-byte types are stored little-endian.
const (
	F64  DType = "F64"  // IEEE 754 binary64 (torch.float64)
	F32  DType = "F32"  // IEEE 754 binary32 (torch.float32)
	F16  DType = "F16"  // IEEE 754 binary16 (torch.float16)
	BF16 DType = "BF16" // bfloat16 (torch.bfloat16)
	I64  DType = "I64"  // signed 64-bit integer (torch.int64)
	I32  DType = "I32"  // signed 32-bit integer (torch.int32)
	I16  DType = "I16"  // signed 16-bit integer (torch.int16)
	I8   DType = "I8"   // signed 8-bit integer (torch.int8)
	U8   DType = "U8"   // unsigned 8-bit integer (torch.uint8)
	Bool DType = "BOOL" // one byte per element, 0 or 1 (torch.bool)
)

// Size returns the size of one element in bytes, or 0 if d is not a
// supported dtype.
func (d DType) Size() int {
	switch d {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16, I16:
		return 2
	case I8, U8, Bool:
		return 1
	}
	return 0
}

// Tensor is one named tensor of a safetensors file.
type Tensor struct {
	// Name is the tensor's key in the header, e.g. "encoder.conv1.weight".
	Name string
	// DType is the element type.
	DType DType
	// Shape holds the dimensions, outermost first. A nil or empty Shape
	// denotes a 0-d scalar with one element; any zero dimension makes the
	// tensor empty.
	Shape []int64
	// Data holds the elements in row-major (C) order as raw little-endian
	// bytes; its length must be the product of Shape times DType.Size().
	Data []byte
}

// File is the content of a safetensors file.
type File struct {
	// Metadata is the optional free-form "__metadata__" map. Decode leaves
	// it nil when the file has none or an empty one.
	Metadata map[string]string
	// Tensors lists the tensors in data order. Encode writes them in this
	// order; Decode returns them sorted by their position in the data
	// section, which for files written by Encode is the original order.
	Tensors []Tensor
}

// Lookup returns a pointer to the tensor called name, and whether there is
// one. The pointer refers to the element of f.Tensors.
func (f *File) Lookup(name string) (*Tensor, bool) {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i], true
		}
	}
	return nil, false
}

// Error kinds. Every error returned by this package for a malformed file or
// an invalid tensor is an [*Error] whose Kind is one of these, so
// errors.Is(err, ErrCorrupt) and the like work.
var (
	// ErrTruncated means the input ends before the header or the data it
	// announces.
	ErrTruncated = errors.New("truncated")
	// ErrCorrupt means the input is not a well-formed safetensors file:
	// bad header length, invalid JSON, bad shapes or offsets, trailing data.
	ErrCorrupt = errors.New("corrupt")
	// ErrUnsupportedDType means a tensor uses a dtype this package does not
	// support (e.g. F8_E4M3) or an unknown one.
	ErrUnsupportedDType = errors.New("unsupported dtype")
	// ErrInvalid means a caller-supplied File or Tensor cannot be encoded or
	// converted: e.g. a duplicate name, or Data whose length does not match
	// Shape and DType, or a conversion to an incompatible Go type.
	ErrInvalid = errors.New("invalid")
)

// Error describes a problem with a safetensors file or tensor.
type Error struct {
	// Kind is ErrTruncated, ErrCorrupt, ErrUnsupportedDType or ErrInvalid.
	Kind error
	// Path is the file involved; set by ReadFile and WriteFile only.
	Path string
	// Tensor is the name of the tensor involved, if any.
	Tensor string
	// Msg says what is wrong.
	Msg string
}

// Error implements the error interface.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("safetensors: ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	if e.Tensor != "" {
		b.WriteString("tensor ")
		b.WriteString(strconv.Quote(clip(e.Tensor, 200)))
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Kind != nil && !strings.Contains(e.Msg, e.Kind.Error()) {
		b.WriteString(" (")
		b.WriteString(e.Kind.Error())
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns e.Kind.
func (e *Error) Unwrap() error { return e.Kind }

func newErr(kind error, tensor, format string, args ...any) *Error {
	return &Error{Kind: kind, Tensor: tensor, Msg: fmt.Sprintf(format, args...)}
}

// byteSize returns the number of data bytes a tensor of the given dtype and
// shape occupies, checking that no dimension is negative and that the size
// fits in an int64. Any zero dimension yields 0 regardless of the others.
func byteSize(dt DType, shape []int64) (int64, error) {
	size := dt.Size()
	if size == 0 {
		return 0, fmt.Errorf("unsupported dtype %q", clip(string(dt), 60))
	}
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d at axis %d of shape %v", d, i, shape)
		}
		if d == 0 {
			return 0, nil
		}
	}
	n := int64(size)
	for _, d := range shape {
		if n > (1<<63-1)/d {
			return 0, fmt.Errorf("shape %v overflows the addressable size", shape)
		}
		n *= d
	}
	return n, nil
}

// check validates t on its own (not against other tensors): supported dtype,
// sane shape and len(Data) consistent with both.
func (t *Tensor) check(kind error) error {
	n, err := byteSize(t.DType, t.Shape)
	if err != nil {
		if t.DType.Size() == 0 {
			kind = ErrUnsupportedDType
		}
		return newErr(kind, t.Name, "%v", err)
	}
	if int64(len(t.Data)) != n {
		return newErr(kind, t.Name, "data is %d bytes, want %d for shape %v and dtype %s",
			len(t.Data), n, t.Shape, t.DType)
	}
	return nil
}
