package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"sort"
	"strconv"
	"unicode/utf8"
)

// Encode writes f to w in safetensors format.
//
// Tensors are laid out in the order of f.Tensors, and the header lists them
// in that order after the metadata (whose keys are sorted). The header is
// padded with spaces so that the data section starts at a multiple of 8
// bytes. Encoding is deterministic: equal Files give identical bytes.
//
// f is validated completely before anything is written; an invalid File
// yields an [*Error] wrapping [ErrInvalid] or [ErrUnsupportedDType] and no
// output. Errors from w are returned unchanged.
func Encode(w io.Writer, f *File) error {
	header, err := encodeHeader(f)
	if err != nil {
		return err
	}
	if _, err := w.Write(header); err != nil {
		return err
	}
	for i := range f.Tensors {
		if len(f.Tensors[i].Data) == 0 {
			continue
		}
		if _, err := w.Write(f.Tensors[i].Data); err != nil {
			return err
		}
	}
	return nil
}

// encodeHeader validates f and returns the 8-byte length prefix followed by
// the padded JSON header.
func encodeHeader(f *File) ([]byte, error) {
	if f == nil {
		return nil, newErr(ErrInvalid, "", "nil File")
	}
	var buf bytes.Buffer
	buf.Write(make([]byte, 8)) // length prefix, filled in below
	buf.WriteByte('{')
	first := true
	comma := func() {
		if !first {
			buf.WriteByte(',')
		}
		first = false
	}

	if len(f.Metadata) > 0 {
		keys := make([]string, 0, len(f.Metadata))
		for k, v := range f.Metadata {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return nil, newErr(ErrInvalid, "", "metadata entry %q is not valid UTF-8", clip(k, 200))
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		comma()
		writeJSONString(&buf, metadataKey)
		buf.WriteString(":{")
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSONString(&buf, k)
			buf.WriteByte(':')
			writeJSONString(&buf, f.Metadata[k])
		}
		buf.WriteByte('}')
	}

	seen := make(map[string]bool, len(f.Tensors))
	var offset int64
	for i := range f.Tensors {
		t := &f.Tensors[i]
		switch {
		case t.Name == metadataKey:
			return nil, newErr(ErrInvalid, t.Name, "name is reserved for metadata")
		case !utf8.ValidString(t.Name):
			return nil, newErr(ErrInvalid, t.Name, "name is not valid UTF-8")
		case seen[t.Name]:
			return nil, newErr(ErrInvalid, t.Name, "duplicate tensor name")
		}
		seen[t.Name] = true
		if err := t.check(ErrInvalid); err != nil {
			return nil, err
		}
		comma()
		writeJSONString(&buf, t.Name)
		buf.WriteString(`:{"dtype":`)
		writeJSONString(&buf, string(t.DType))
		buf.WriteString(`,"shape":[`)
		for j, d := range t.Shape {
			if j > 0 {
				buf.WriteByte(',')
			}
			buf.WriteString(strconv.FormatInt(d, 10))
		}
		end := offset + int64(len(t.Data))
		buf.WriteString(`],"data_offsets":[`)
		buf.WriteString(strconv.FormatInt(offset, 10))
		buf.WriteByte(',')
		buf.WriteString(strconv.FormatInt(end, 10))
		buf.WriteString("]}")
		offset = end
	}
	buf.WriteByte('}')
	for buf.Len()%8 != 0 {
		buf.WriteByte(' ')
	}
	out := buf.Bytes()
	n := len(out) - 8
	if n > MaxHeaderSize {
		return nil, newErr(ErrInvalid, "", "header would be %d bytes, over the limit of %d", n, MaxHeaderSize)
	}
	binary.LittleEndian.PutUint64(out[:8], uint64(n))
	return out, nil
}

// writeJSONString appends s as a JSON string. s must be valid UTF-8.
func writeJSONString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // cannot fail for a string; appends '\n'
	buf.Truncate(buf.Len() - 1)
}
