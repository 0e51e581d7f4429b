package npy

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// Write encodes a as a version 1.0 .npy file in little-endian C order with
// the dtype a.DType ("u1", "i2", "i4", "i8", "f4", "f8", ...). Values are
// converted (and rounded for integer dtypes) from a.Data.
func Write(w io.Writer, a *Array) error {
	h := &header{order: binary.LittleEndian}
	if len(a.DType) < 2 {
		return fmt.Errorf("npy: bad dtype %q", a.DType)
	}
	hd, err := parseHeader(fmt.Sprintf("{'descr': '<%s', 'fortran_order': False, 'shape': (), }", a.DType))
	if err != nil {
		return err
	}
	h.kind, h.size = hd.kind, hd.size
	if a.Len() != len(a.Data) {
		return fmt.Errorf("npy: shape %v needs %d elements, have %d", a.Shape, a.Len(), len(a.Data))
	}
	dims := make([]string, len(a.Shape))
	for i, s := range a.Shape {
		dims[i] = fmt.Sprint(s)
	}
	shape := strings.Join(dims, ", ")
	if len(a.Shape) == 1 {
		shape += ","
	}
	desc := "|"
	if h.size > 1 {
		desc = "<"
	}
	dict := fmt.Sprintf("{'descr': '%s%s', 'fortran_order': False, 'shape': (%s), }", desc, a.DType, shape)
	// Pad so that magic(6)+version(2)+len(2)+dict+newline is a multiple of 64.
	total := 10 + len(dict) + 1
	pad := (64 - total%64) % 64
	dict += strings.Repeat(" ", pad) + "\n"
	buf := make([]byte, 0, 10+len(dict)+len(a.Data)*h.size)
	buf = append(buf, Magic...)
	buf = append(buf, 1, 0)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(dict)))
	buf = append(buf, dict...)
	for _, v := range a.Data {
		switch h.kind {
		case 'b', 'u', 'i':
			r := int64(math.Round(v))
			switch h.size {
			case 1:
				buf = append(buf, byte(r))
			case 2:
				buf = binary.LittleEndian.AppendUint16(buf, uint16(r))
			case 4:
				buf = binary.LittleEndian.AppendUint32(buf, uint32(r))
			case 8:
				buf = binary.LittleEndian.AppendUint64(buf, uint64(r))
			}
		case 'f':
			if h.size == 4 {
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(float32(v)))
			} else {
				buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
			}
		}
	}
	_, err = w.Write(buf)
	return err
}

// WriteFile writes a to path (see Write).
func WriteFile(path string, a *Array) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := Write(f, a); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
