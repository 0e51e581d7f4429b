package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"unicode/utf8"
)

// entry is a tensor as described by the header, before validation against
// the data section.
type entry struct {
	name       string
	dtype      DType
	shape      []int64
	begin, end uint64
}

// Decode parses and validates a complete safetensors file held in b.
//
// The Data of each returned tensor aliases b (without spare capacity, so
// appending to it never overwrites a neighbour); copy it if b is reused.
// Errors are [*Error] values wrapping [ErrTruncated], [ErrCorrupt] or
// [ErrUnsupportedDType].
func Decode(b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, newErr(ErrTruncated, "", "file is %d bytes, shorter than the 8-byte header length", len(b))
	}
	n := binary.LittleEndian.Uint64(b[:8])
	if n > MaxHeaderSize {
		return nil, newErr(ErrCorrupt, "", "header length %d exceeds the limit of %d bytes", n, MaxHeaderSize)
	}
	if n > uint64(len(b)-8) {
		return nil, newErr(ErrTruncated, "", "header length %d exceeds the %d bytes after the length prefix", n, len(b)-8)
	}
	header := b[8 : 8+n]
	data := b[8+n:]

	meta, entries, err := parseHeader(header)
	if err != nil {
		return nil, err
	}

	// Per-tensor checks: dtype, shape, byte range.
	dataLen := uint64(len(data))
	for i := range entries {
		e := &entries[i]
		if e.dtype.Size() == 0 {
			return nil, newErr(ErrUnsupportedDType, e.name, "unsupported dtype %q", clip(string(e.dtype), 60))
		}
		size, err := byteSize(e.dtype, e.shape)
		if err != nil {
			return nil, newErr(ErrCorrupt, e.name, "%v", err)
		}
		if e.begin > e.end {
			return nil, newErr(ErrCorrupt, e.name, "data_offsets [%d, %d]: begin is after end", e.begin, e.end)
		}
		if got := e.end - e.begin; got != uint64(size) {
			return nil, newErr(ErrCorrupt, e.name, "data_offsets [%d, %d] span %d bytes, want %d for shape %v and dtype %s",
				e.begin, e.end, got, size, e.shape, e.dtype)
		}
		if e.end > dataLen {
			return nil, newErr(ErrTruncated, e.name, "data_offsets [%d, %d] exceed the %d-byte data section", e.begin, e.end, dataLen)
		}
	}

	// The byte ranges must tile the data section exactly. Sorting by
	// (begin, end) puts empty tensors before a tensor starting at the same
	// offset; the stable sort keeps header order among identical ranges.
	sort.SliceStable(entries, func(i, j int) bool {
		if entries[i].begin != entries[j].begin {
			return entries[i].begin < entries[j].begin
		}
		return entries[i].end < entries[j].end
	})
	var pos uint64
	prev := ""
	for _, e := range entries {
		switch {
		case e.begin > pos:
			return nil, newErr(ErrCorrupt, e.name, "data_offsets [%d, %d] leave a gap of %d bytes after offset %d",
				e.begin, e.end, e.begin-pos, pos)
		case e.begin < pos:
			return nil, newErr(ErrCorrupt, e.name, "data_offsets [%d, %d] overlap tensor %q ending at %d",
				e.begin, e.end, clip(prev, 200), pos)
		}
		pos, prev = e.end, e.name
	}
	if pos != dataLen {
		return nil, newErr(ErrCorrupt, "", "%d bytes of trailing data after the last tensor (data section is %d bytes, tensors cover %d)",
			dataLen-pos, dataLen, pos)
	}

	f := &File{Metadata: meta}
	if len(entries) > 0 {
		f.Tensors = make([]Tensor, len(entries))
	}
	for i, e := range entries {
		f.Tensors[i] = Tensor{Name: e.name, DType: e.dtype, Shape: e.shape, Data: data[e.begin:e.end:e.end]}
	}
	return f, nil
}

// parseHeader parses the JSON header with a token stream, so that duplicate
// keys, unknown fields and wrongly typed values are detected instead of being
// silently resolved as encoding/json would.
func parseHeader(header []byte) (map[string]string, []entry, error) {
	if len(header) == 0 || header[0] != '{' {
		return nil, nil, newErr(ErrCorrupt, "", "header does not start with '{'")
	}
	if !utf8.Valid(header) {
		return nil, nil, newErr(ErrCorrupt, "", "header is not valid UTF-8")
	}
	p := &parser{dec: json.NewDecoder(bytes.NewReader(header))}
	p.dec.UseNumber()

	if err := p.delim('{', "header"); err != nil {
		return nil, nil, err
	}
	var (
		meta     map[string]string
		seenMeta bool
		entries  []entry
		names    = map[string]bool{}
	)
	for p.dec.More() {
		key, err := p.key("header")
		if err != nil {
			return nil, nil, err
		}
		if key == metadataKey {
			if seenMeta {
				return nil, nil, newErr(ErrCorrupt, "", "duplicate %q key", metadataKey)
			}
			seenMeta = true
			if meta, err = p.metadata(); err != nil {
				return nil, nil, err
			}
			continue
		}
		if names[key] {
			return nil, nil, newErr(ErrCorrupt, key, "duplicate tensor name")
		}
		names[key] = true
		e, err := p.entry(key)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, e)
	}
	if err := p.delim('}', "header"); err != nil {
		return nil, nil, err
	}
	// Only whitespace (the padding) may follow the object.
	if tok, err := p.dec.Token(); err != io.EOF {
		if err != nil {
			return nil, nil, newErr(ErrCorrupt, "", "invalid JSON after the header object: %v", err)
		}
		return nil, nil, newErr(ErrCorrupt, "", "unexpected %v after the header object", tokString(tok))
	}
	if len(meta) == 0 {
		meta = nil
	}
	return meta, entries, nil
}

type parser struct {
	dec *json.Decoder
}

func (p *parser) token(tensor, what string) (json.Token, error) {
	tok, err := p.dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, newErr(ErrCorrupt, tensor, "invalid JSON in %s: unexpected end of header", what)
		}
		return nil, newErr(ErrCorrupt, tensor, "invalid JSON in %s: %v", what, err)
	}
	return tok, nil
}

func (p *parser) delim(want json.Delim, what string) error {
	return p.delimFor("", want, what)
}

func (p *parser) delimFor(tensor string, want json.Delim, what string) error {
	tok, err := p.token(tensor, what)
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return newErr(ErrCorrupt, tensor, "%s: expected %q, got %s", what, string(want), tokString(tok))
	}
	return nil
}

func (p *parser) key(what string) (string, error) {
	tok, err := p.token("", what)
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok { // cannot happen with a valid decoder state, but never panic
		return "", newErr(ErrCorrupt, "", "%s: expected a key, got %s", what, tokString(tok))
	}
	return s, nil
}

// metadata parses the value of "__metadata__": null or an object of strings.
func (p *parser) metadata() (map[string]string, error) {
	const what = "__metadata__"
	tok, err := p.token("", what)
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, newErr(ErrCorrupt, "", "%s must be an object of strings, got %s", what, tokString(tok))
	}
	meta := map[string]string{}
	for p.dec.More() {
		k, err := p.key(what)
		if err != nil {
			return nil, err
		}
		if _, dup := meta[k]; dup {
			return nil, newErr(ErrCorrupt, "", "%s: duplicate key %q", what, clip(k, 200))
		}
		tok, err := p.token("", what)
		if err != nil {
			return nil, err
		}
		v, ok := tok.(string)
		if !ok {
			return nil, newErr(ErrCorrupt, "", "%s: value of %q must be a string, got %s", what, clip(k, 200), tokString(tok))
		}
		meta[k] = v
	}
	return meta, p.delim('}', what)
}

// entry parses one tensor description.
func (p *parser) entry(name string) (entry, error) {
	e := entry{name: name}
	tok, err := p.token(name, "tensor entry")
	if err != nil {
		return e, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return e, newErr(ErrCorrupt, name, "entry must be an object, got %s", tokString(tok))
	}
	var haveDType, haveShape, haveOffsets bool
	for p.dec.More() {
		tok, err := p.token(name, "tensor entry")
		if err != nil {
			return e, err
		}
		field, _ := tok.(string)
		switch field {
		case "dtype":
			if haveDType {
				return e, newErr(ErrCorrupt, name, "duplicate field \"dtype\"")
			}
			haveDType = true
			tok, err := p.token(name, "dtype")
			if err != nil {
				return e, err
			}
			s, ok := tok.(string)
			if !ok {
				return e, newErr(ErrCorrupt, name, "dtype must be a string, got %s", tokString(tok))
			}
			e.dtype = DType(s)
		case "shape":
			if haveShape {
				return e, newErr(ErrCorrupt, name, "duplicate field \"shape\"")
			}
			haveShape = true
			if e.shape, err = p.uints(name, "shape", 1<<63-1); err != nil {
				return e, err
			}
		case "data_offsets":
			if haveOffsets {
				return e, newErr(ErrCorrupt, name, "duplicate field \"data_offsets\"")
			}
			haveOffsets = true
			offs, err := p.uints(name, "data_offsets", 1<<63-1)
			if err != nil {
				return e, err
			}
			if len(offs) != 2 {
				return e, newErr(ErrCorrupt, name, "data_offsets must have 2 elements, got %d", len(offs))
			}
			e.begin, e.end = uint64(offs[0]), uint64(offs[1])
		default:
			return e, newErr(ErrCorrupt, name, "unknown field %s", tokString(tok))
		}
	}
	if err := p.delimFor(name, '}', "tensor entry"); err != nil {
		return e, err
	}
	switch {
	case !haveDType:
		return e, newErr(ErrCorrupt, name, "missing field \"dtype\"")
	case !haveShape:
		return e, newErr(ErrCorrupt, name, "missing field \"shape\"")
	case !haveOffsets:
		return e, newErr(ErrCorrupt, name, "missing field \"data_offsets\"")
	}
	return e, nil
}

// uints parses a JSON array of non-negative integers no larger than max.
func (p *parser) uints(tensor, what string, max int64) ([]int64, error) {
	if err := p.delimFor(tensor, '[', what); err != nil {
		return nil, err
	}
	out := []int64{}
	for p.dec.More() {
		tok, err := p.token(tensor, what)
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, newErr(ErrCorrupt, tensor, "%s must hold integers, got %s", what, tokString(tok))
		}
		s := string(num)
		if len(s) > 0 && s[0] == '-' {
			return nil, newErr(ErrCorrupt, tensor, "%s holds negative value %s", what, s)
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v > max {
			return nil, newErr(ErrCorrupt, tensor, "%s holds %s, not an integer in [0, %d]", what, s, max)
		}
		out = append(out, v)
	}
	if err := p.delimFor(tensor, ']', what); err != nil {
		return nil, err
	}
	return out, nil
}

// tokString renders a JSON token for an error message, truncated.
func tokString(tok json.Token) string {
	var s string
	switch t := tok.(type) {
	case nil:
		s = "null"
	case json.Delim:
		s = strconv.Quote(string(t))
	case string:
		s = "string " + strconv.Quote(clip(t, 60))
	case json.Number:
		s = "number " + string(t)
	case bool:
		s = "boolean " + strconv.FormatBool(t)
	default:
		s = fmt.Sprintf("%v", t)
	}
	return clip(s, 80)
}

// clip shortens s to at most n bytes plus "...", on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
