package npy

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
)

// Magic is the six-byte prefix of every .npy file.
const Magic = "\x93NUMPY"

// MaxElements bounds the number of elements a decoder accepts, so that a
// corrupt header cannot make it allocate unbounded memory (1<<28 elements,
// 2 GiB of float64).
const MaxElements = 1 << 28

// Array is a decoded n-dimensional array. Values are kept as float64, which
// holds every integer up to 2^53 and every float32 exactly.
type Array struct {
	// DType is the numpy type descriptor without byte order, e.g. "u1",
	// "i2", "f4", "b1".
	DType string
	// Shape is the array shape in C (row-major) order.
	Shape []int
	// Data holds the elements in C order, converted to float64.
	Data []float64
}

// Len returns the number of elements, the product of Shape.
func (a *Array) Len() int {
	n := 1
	for _, s := range a.Shape {
		n *= s
	}
	return n
}

// IsInteger reports whether the array has an integer or boolean dtype.
func (a *Array) IsInteger() bool {
	return a.DType != "" && a.DType[0] != 'f'
}

// ReadFile decodes the .npy file at path. Errors name the file.
func ReadFile(path string) (*Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a, err := Decode(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// header is the parsed dictionary of an .npy header.
type header struct {
	order   binary.ByteOrder
	kind    byte // 'b', 'i', 'u', 'f'
	size    int  // bytes per element
	fortran bool
	shape   []int
}

// Decode reads one array from r.
func Decode(r io.Reader) (*Array, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, fmt.Errorf("npy: reading magic: %w", noEOF(err))
	}
	if string(pre[:6]) != Magic {
		return nil, errors.New("npy: not an .npy file (bad magic)")
	}
	var hlen int
	switch pre[6] {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("npy: reading header length: %w", noEOF(err))
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("npy: reading header length: %w", noEOF(err))
		}
		n := binary.LittleEndian.Uint32(b[:])
		if n > 1<<20 {
			return nil, fmt.Errorf("npy: header length %d is implausible", n)
		}
		hlen = int(n)
	default:
		return nil, fmt.Errorf("npy: unsupported format version %d.%d", pre[6], pre[7])
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, fmt.Errorf("npy: reading header: %w", noEOF(err))
	}
	h, err := parseHeader(string(hb))
	if err != nil {
		return nil, err
	}
	n := 1
	for _, s := range h.shape {
		if s < 0 || (s > 0 && n > MaxElements/s) {
			return nil, fmt.Errorf("npy: shape %v is too large", h.shape)
		}
		n *= s
	}
	raw := make([]byte, 0, min(n*h.size, 1<<24))
	buf := bytes.NewBuffer(raw)
	got, err := io.CopyN(buf, r, int64(n*h.size))
	if err != nil {
		return nil, fmt.Errorf("npy: data truncated: %d of %d bytes for shape %v", got, n*h.size, h.shape)
	}
	data, err := convert(buf.Bytes(), h)
	if err != nil {
		return nil, err
	}
	if h.fortran && len(h.shape) > 1 {
		data = fortranToC(data, h.shape)
	}
	dt := string(h.kind) + strconv.Itoa(h.size)
	return &Array{DType: dt, Shape: h.shape, Data: data}, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseHeader parses the Python dict literal of an .npy header, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }.
func parseHeader(s string) (*header, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return nil, fmt.Errorf("npy: header is not a dict: %.60q", s)
	}
	descr, ok := dictValue(s, "descr")
	if !ok {
		return nil, errors.New("npy: header has no 'descr'")
	}
	descr = strings.Trim(descr, "'\"")
	h := &header{order: binary.LittleEndian}
	if len(descr) < 2 {
		return nil, fmt.Errorf("npy: bad dtype %q", descr)
	}
	switch descr[0] {
	case '<', '|', '=':
		descr = descr[1:]
	case '>':
		h.order = binary.BigEndian
		descr = descr[1:]
	}
	if len(descr) < 2 {
		return nil, fmt.Errorf("npy: bad dtype %q", descr)
	}
	h.kind = descr[0]
	size, err := strconv.Atoi(descr[1:])
	if err != nil {
		return nil, fmt.Errorf("npy: unsupported dtype %q", descr)
	}
	h.size = size
	switch {
	case h.kind == 'b' && size == 1:
	case (h.kind == 'i' || h.kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8):
	case h.kind == 'f' && (size == 4 || size == 8):
	default:
		return nil, fmt.Errorf("npy: unsupported dtype %q", descr)
	}
	fo, ok := dictValue(s, "fortran_order")
	if !ok {
		return nil, errors.New("npy: header has no 'fortran_order'")
	}
	switch fo {
	case "True":
		h.fortran = true
	case "False":
	default:
		return nil, fmt.Errorf("npy: bad fortran_order %q", fo)
	}
	sh, ok := dictValue(s, "shape")
	if !ok {
		return nil, errors.New("npy: header has no 'shape'")
	}
	sh = strings.TrimSpace(sh)
	if !strings.HasPrefix(sh, "(") || !strings.HasSuffix(sh, ")") {
		return nil, fmt.Errorf("npy: bad shape %q", sh)
	}
	for _, f := range strings.Split(sh[1:len(sh)-1], ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		f = strings.TrimSuffix(f, "L")
		d, err := strconv.Atoi(f)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("npy: bad shape %q", sh)
		}
		h.shape = append(h.shape, d)
	}
	if len(h.shape) > 32 {
		return nil, fmt.Errorf("npy: %d dimensions is too many", len(h.shape))
	}
	return h, nil
}

// dictValue extracts the textual value of key from a flat Python dict
// literal; a tuple value is returned with its parentheses.
func dictValue(s, key string) (string, bool) {
	for _, q := range []string{"'", "\""} {
		i := strings.Index(s, q+key+q)
		if i < 0 {
			continue
		}
		rest := strings.TrimSpace(s[i+len(key)+2:])
		if !strings.HasPrefix(rest, ":") {
			return "", false
		}
		rest = strings.TrimSpace(rest[1:])
		if strings.HasPrefix(rest, "(") {
			j := strings.Index(rest, ")")
			if j < 0 {
				return "", false
			}
			return rest[:j+1], true
		}
		end := strings.IndexAny(rest, ",}")
		if end < 0 {
			return "", false
		}
		return strings.TrimSpace(rest[:end]), true
	}
	return "", false
}

func convert(b []byte, h *header) ([]float64, error) {
	n := len(b) / h.size
	out := make([]float64, n)
	o := h.order
	for i := range out {
		p := b[i*h.size : (i+1)*h.size]
		switch h.kind {
		case 'b':
			if p[0] > 1 {
				return nil, fmt.Errorf("npy: bool element %d has value %d", i, p[0])
			}
			out[i] = float64(p[0])
		case 'u':
			switch h.size {
			case 1:
				out[i] = float64(p[0])
			case 2:
				out[i] = float64(o.Uint16(p))
			case 4:
				out[i] = float64(o.Uint32(p))
			case 8:
				out[i] = float64(o.Uint64(p))
			}
		case 'i':
			switch h.size {
			case 1:
				out[i] = float64(int8(p[0]))
			case 2:
				out[i] = float64(int16(o.Uint16(p)))
			case 4:
				out[i] = float64(int32(o.Uint32(p)))
			case 8:
				out[i] = float64(int64(o.Uint64(p)))
			}
		case 'f':
			if h.size == 4 {
				out[i] = float64(math.Float32frombits(o.Uint32(p)))
			} else {
				out[i] = math.Float64frombits(o.Uint64(p))
			}
		}
	}
	return out, nil
}

// fortranToC reorders column-major data into row-major order.
func fortranToC(in []float64, shape []int) []float64 {
	out := make([]float64, len(in))
	nd := len(shape)
	idx := make([]int, nd)
	// Fortran strides.
	fs := make([]int, nd)
	s := 1
	for d := 0; d < nd; d++ {
		fs[d] = s
		s *= shape[d]
	}
	for c := range out {
		off := 0
		for d := 0; d < nd; d++ {
			off += idx[d] * fs[d]
		}
		out[c] = in[off]
		for d := nd - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < shape[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out
}
