package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// raw assembles a file from a literal header and data section.
func raw(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func encode(t testing.TB, f *File) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, Encode(&buf, f))
	return buf.Bytes()
}

func sampleFile() *File {
	return &File{
		Metadata: map[string]string{"format": "pt", "note": "<&> ünïcødé \"quoted\"\n"},
		Tensors: []Tensor{
			FromFloat32("z.weight", []int64{2, 3}, []float32{1, 2, 3, 4, 5, float32(math.Inf(-1))}),
			FromFloat64("a.bias", []int64{3}, []float64{0.1, -0, math.MaxFloat64}),
			FromInt64("step", []int64{}, []int64{math.MinInt64}),
			FromInt32("labels", []int64{2, 2}, []int32{-1, 0, 1, math.MaxInt32}),
			FromUint8("bytes", []int64{3}, []uint8{0, 128, 255}),
			FromBool("mask", []int64{1, 2}, []bool{true, false}),
			FromFloat32("empty", []int64{0, 5}, nil),
			{Name: "half", DType: F16, Shape: []int64{2}, Data: []byte{0x00, 0x3c, 0x00, 0xc1}},
			{Name: "bhalf", DType: BF16, Shape: []int64{1}, Data: []byte{0x80, 0x3f}},
			{Name: "small", DType: I16, Shape: []int64{1}, Data: []byte{0x00, 0x80}},
			{Name: "tiny", DType: I8, Shape: []int64{2}, Data: []byte{0x80, 0x7f}},
			{Name: "", DType: U8, Shape: []int64{1}, Data: []byte{7}},
			{Name: "名前 with \"quotes\" \\ and \u2028", DType: U8, Shape: []int64{1, 1, 1}, Data: []byte{9}},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	want := sampleFile()
	b := encode(t, want)
	require.Zero(t, (8+binary.LittleEndian.Uint64(b))%8, "data section must be 8-byte aligned")

	got, err := Decode(b)
	require.NoError(t, err)
	assert.Equal(t, want.Metadata, got.Metadata)
	require.Len(t, got.Tensors, len(want.Tensors))
	for i := range want.Tensors {
		w, g := want.Tensors[i], got.Tensors[i]
		assert.Equal(t, w.Name, g.Name, "order must be preserved")
		assert.Equal(t, w.DType, g.DType, w.Name)
		assert.Equal(t, w.Shape, g.Shape, w.Name)
		assert.Equal(t, w.Data, g.Data, w.Name)
	}

	// Encoding is deterministic, also through a decode.
	assert.Equal(t, b, encode(t, want))
	assert.Equal(t, b, encode(t, got))

	v, err := got.Tensors[0].Float32()
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 2, 3, 4, 5, float32(math.Inf(-1))}, v)
}

func TestRoundTripEmpty(t *testing.T) {
	for _, f := range []*File{{}, {Metadata: map[string]string{}}, {Metadata: map[string]string{"k": ""}}} {
		b := encode(t, f)
		got, err := Decode(b)
		require.NoError(t, err)
		assert.Empty(t, got.Tensors)
		if len(f.Metadata) == 0 {
			assert.Nil(t, got.Metadata)
		} else {
			assert.Equal(t, f.Metadata, got.Metadata)
		}
	}
	assert.Equal(t, raw("{}      ", nil), encode(t, &File{}))
}

func TestDecodeAliasesWithoutCapacity(t *testing.T) {
	f := &File{Tensors: []Tensor{
		FromUint8("a", []int64{2}, []uint8{1, 2}),
		FromUint8("b", []int64{2}, []uint8{3, 4}),
	}}
	got, err := Decode(encode(t, f))
	require.NoError(t, err)
	a, _ := got.Lookup("a")
	_ = append(a.Data, 99)
	b, ok := got.Lookup("b")
	require.True(t, ok)
	assert.Equal(t, []byte{3, 4}, b.Data)
	_, ok = got.Lookup("c")
	assert.False(t, ok)
}

func TestDecodeAcceptsReferenceVariants(t *testing.T) {
	for name, b := range map[string][]byte{
		"unpadded header":       raw(`{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{5}),
		"whitespace, any order": raw("{ \"x\" : { \"shape\" : [ 1 ] , \"data_offsets\" : [0, 1], \"dtype\" : \"U8\" } }\n\t  ", []byte{5}),
		"null metadata":         raw(`{"__metadata__":null,"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{5}),
		"metadata last":         raw(`{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"__metadata__":{"a":"b"}}`, []byte{5}),
		"escaped name":          raw(`{"\u0078":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{5}),
	} {
		t.Run(name, func(t *testing.T) {
			f, err := Decode(b)
			require.NoError(t, err)
			x, ok := f.Lookup("x")
			require.True(t, ok)
			assert.Equal(t, []byte{5}, x.Data)
		})
	}
}

func TestDecodeOrdersByOffset(t *testing.T) {
	b := raw(`{"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]},"e":{"dtype":"F32","shape":[0],"data_offsets":[1,1]},`+
		`"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"z":{"dtype":"BOOL","shape":[0,2],"data_offsets":[3,3]}}`,
		[]byte{1, 2, 3})
	f, err := Decode(b)
	require.NoError(t, err)
	var names []string
	for _, t := range f.Tensors {
		names = append(names, t.Name)
	}
	assert.Equal(t, []string{"a", "e", "b", "z"}, names)
}

func TestDecodeBadFiles(t *testing.T) {
	const u8 = `{"dtype":"U8","shape":[2],"data_offsets":[0,2]}`
	two := []byte{1, 2}
	hugeLen := binary.LittleEndian.AppendUint64(nil, math.MaxUint64)
	tests := []struct {
		name string
		in   []byte
		kind error
		msg  string // substring of the error message
	}{
		{"empty", nil, ErrTruncated, "shorter than the 8-byte"},
		{"7 bytes", []byte{1, 2, 3, 4, 5, 6, 7}, ErrTruncated, "shorter than the 8-byte"},
		{"header longer than file", append(binary.LittleEndian.AppendUint64(nil, 100), "{}"...), ErrTruncated, "header length 100 exceeds the 2 bytes"},
		{"header over cap", append(hugeLen, "{}"...), ErrCorrupt, "exceeds the limit"},
		{"header just over cap", binary.LittleEndian.AppendUint64(nil, MaxHeaderSize+1), ErrCorrupt, "exceeds the limit"},
		{"zero header", raw("", nil), ErrCorrupt, "does not start with '{'"},
		{"leading space", raw(" {}", nil), ErrCorrupt, "does not start with '{'"},
		{"not json", raw("{nope}", nil), ErrCorrupt, "invalid JSON"},
		{"unterminated", raw(`{"x":{"dtype":"U8"`, nil), ErrCorrupt, "unexpected end"},
		{"trailing garbage", raw(`{} x`, nil), ErrCorrupt, "after the header object"},
		{"two objects", raw(`{}{}`, nil), ErrCorrupt, "after the header object"},
		{"invalid utf-8", raw("{\"\xff\":1}", nil), ErrCorrupt, "UTF-8"},
		{"entry not object", raw(`{"x":[1]}`, nil), ErrCorrupt, `tensor "x": entry must be an object`},
		{"unknown dtype", raw(`{"x":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}`, two), ErrUnsupportedDType, `tensor "x": unsupported dtype "F8_E4M3"`},
		{"lowercase dtype", raw(`{"x":{"dtype":"f32","shape":[],"data_offsets":[0,4]}}`, []byte{0, 0, 0, 0}), ErrUnsupportedDType, "unsupported dtype"},
		{"dtype not string", raw(`{"x":{"dtype":4,"shape":[2],"data_offsets":[0,2]}}`, two), ErrCorrupt, "dtype must be a string"},
		{"missing dtype", raw(`{"x":{"shape":[2],"data_offsets":[0,2]}}`, two), ErrCorrupt, `missing field "dtype"`},
		{"missing shape", raw(`{"x":{"dtype":"U8","data_offsets":[0,2]}}`, two), ErrCorrupt, `missing field "shape"`},
		{"missing offsets", raw(`{"x":{"dtype":"U8","shape":[2]}}`, two), ErrCorrupt, `missing field "data_offsets"`},
		{"unknown field", raw(`{"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"stride":[1]}}`, two), ErrCorrupt, `unknown field string "stride"`},
		{"duplicate field", raw(`{"x":{"dtype":"U8","dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, two), ErrCorrupt, `duplicate field "dtype"`},
		{"negative dim", raw(`{"x":{"dtype":"U8","shape":[-2],"data_offsets":[0,2]}}`, two), ErrCorrupt, "negative value -2"},
		{"fractional dim", raw(`{"x":{"dtype":"U8","shape":[2.0],"data_offsets":[0,2]}}`, two), ErrCorrupt, "not an integer"},
		{"exponent dim", raw(`{"x":{"dtype":"U8","shape":[2e0],"data_offsets":[0,2]}}`, two), ErrCorrupt, "not an integer"},
		{"huge dim", raw(`{"x":{"dtype":"U8","shape":[99999999999999999999],"data_offsets":[0,2]}}`, two), ErrCorrupt, "not an integer"},
		{"dim not number", raw(`{"x":{"dtype":"U8","shape":["2"],"data_offsets":[0,2]}}`, two), ErrCorrupt, "must hold integers"},
		{"shape not array", raw(`{"x":{"dtype":"U8","shape":2,"data_offsets":[0,2]}}`, two), ErrCorrupt, "shape: expected"},
		{"shape overflow", raw(`{"x":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,2]}}`, two), ErrCorrupt, "overflows"},
		{"shape overflow by dtype", raw(`{"x":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,2]}}`, two), ErrCorrupt, "overflows"},
		{"one offset", raw(`{"x":{"dtype":"U8","shape":[2],"data_offsets":[2]}}`, two), ErrCorrupt, "must have 2 elements"},
		{"three offsets", raw(`{"x":{"dtype":"U8","shape":[2],"data_offsets":[0,1,2]}}`, two), ErrCorrupt, "must have 2 elements"},
		{"begin after end", raw(`{"x":{"dtype":"U8","shape":[0],"data_offsets":[2,0]}}`, two), ErrCorrupt, "begin is after end"},
		{"size mismatch", raw(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,2]}}`, two), ErrCorrupt, "span 2 bytes, want 8"},
		{"offsets out of range", raw(`{"x":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}`, two), ErrTruncated, "exceed the 2-byte data section"},
		{"offsets far out of range", raw(`{"x":{"dtype":"U8","shape":[2],"data_offsets":[9223372036854775805,9223372036854775807]}}`, two), ErrTruncated, "exceed"},
		{"truncated data", raw(`{"x":`+u8+`}`, two[:1]), ErrTruncated, "exceed the 1-byte data section"},
		{"trailing data", raw(`{"x":`+u8+`}`, []byte{1, 2, 3}), ErrCorrupt, "1 bytes of trailing data"},
		{"data without tensors", raw(`{}`, two), ErrCorrupt, "trailing data"},
		{"gap", raw(`{"x":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, two), ErrCorrupt, `tensor "x": data_offsets [1, 2] leave a gap of 1 bytes`},
		{"overlap", raw(`{"x":`+u8+`,"y":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, two), ErrCorrupt, `tensor "y": data_offsets [1, 2] overlap tensor "x"`},
		{"same range", raw(`{"x":`+u8+`,"y":`+u8+`}`, two), ErrCorrupt, "overlap"},
		{"empty inside other", raw(`{"x":`+u8+`,"y":{"dtype":"U8","shape":[0],"data_offsets":[1,1]}}`, two), ErrCorrupt, "overlap"},
		{"duplicate name", raw(`{"x":`+u8+`,"x":`+u8+`}`, two), ErrCorrupt, `tensor "x": duplicate tensor name`},
		{"duplicate metadata", raw(`{"__metadata__":{},"__metadata__":{}}`, nil), ErrCorrupt, "duplicate \"__metadata__\""},
		{"metadata not object", raw(`{"__metadata__":["a"]}`, nil), ErrCorrupt, "must be an object of strings"},
		{"metadata number", raw(`{"__metadata__":{"epoch":3}}`, nil), ErrCorrupt, `value of "epoch" must be a string, got number 3`},
		{"metadata nested", raw(`{"__metadata__":{"a":{"b":"c"}}}`, nil), ErrCorrupt, `value of "a" must be a string`},
		{"metadata null value", raw(`{"__metadata__":{"a":null}}`, nil), ErrCorrupt, `value of "a" must be a string, got null`},
		{"metadata duplicate key", raw(`{"__metadata__":{"a":"1","a":"2"}}`, nil), ErrCorrupt, `duplicate key "a"`},
		{"entry is number", raw(`{"x":1}`, nil), ErrCorrupt, "entry must be an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Decode(tt.in)
			require.Error(t, err)
			assert.Nil(t, f)
			assert.ErrorIs(t, err, tt.kind)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Contains(t, err.Error(), tt.msg)
			assert.True(t, strings.HasPrefix(err.Error(), "safetensors: "), err.Error())
			for _, other := range []error{ErrTruncated, ErrCorrupt, ErrUnsupportedDType, ErrInvalid} {
				if other != tt.kind {
					assert.NotErrorIs(t, err, other)
				}
			}
		})
	}
}

// Every proper prefix of a valid file must be rejected.
func TestDecodeEveryPrefix(t *testing.T) {
	b := encode(t, sampleFile())
	for n := range len(b) {
		_, err := Decode(b[:n])
		require.Error(t, err, "prefix of %d bytes", n)
		require.True(t, errors.Is(err, ErrTruncated) || errors.Is(err, ErrCorrupt), "prefix %d: %v", n, err)
	}
}

func TestEncodeInvalid(t *testing.T) {
	ok := FromUint8("ok", []int64{1}, []uint8{1})
	tests := []struct {
		name string
		f    *File
		kind error
		msg  string
	}{
		{"nil file", nil, ErrInvalid, "nil File"},
		{"length mismatch", &File{Tensors: []Tensor{FromFloat32("w", []int64{2, 2}, []float32{1, 2, 3})}}, ErrInvalid, `tensor "w": data is 12 bytes, want 16`},
		{"scalar without data", &File{Tensors: []Tensor{{Name: "s", DType: F32}}}, ErrInvalid, "data is 0 bytes, want 4"},
		{"negative dim", &File{Tensors: []Tensor{{Name: "n", DType: U8, Shape: []int64{-1}}}}, ErrInvalid, "negative dimension"},
		{"overflow", &File{Tensors: []Tensor{{Name: "o", DType: U8, Shape: []int64{math.MaxInt64, 2}}}}, ErrInvalid, "overflows"},
		{"bad dtype", &File{Tensors: []Tensor{{Name: "d", DType: "F8_E5M2", Shape: []int64{1}, Data: []byte{1}}}}, ErrUnsupportedDType, `unsupported dtype "F8_E5M2"`},
		{"empty dtype", &File{Tensors: []Tensor{{Name: "d", Shape: []int64{1}, Data: []byte{1}}}}, ErrUnsupportedDType, `unsupported dtype ""`},
		{"duplicate", &File{Tensors: []Tensor{ok, ok}}, ErrInvalid, `tensor "ok": duplicate tensor name`},
		{"reserved name", &File{Tensors: []Tensor{{Name: "__metadata__", DType: U8, Shape: []int64{0}}}}, ErrInvalid, "reserved"},
		{"bad utf-8 name", &File{Tensors: []Tensor{{Name: "\xff", DType: U8, Shape: []int64{0}}}}, ErrInvalid, "not valid UTF-8"},
		{"bad utf-8 metadata", &File{Metadata: map[string]string{"k": "\xfe"}}, ErrInvalid, "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Encode(&buf, tt.f)
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.kind)
			assert.Contains(t, err.Error(), tt.msg)
			assert.Zero(t, buf.Len(), "nothing may be written for an invalid file")
		})
	}
}

type failWriter struct{ left int }

var errDiskFull = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n := w.left
		w.left = 0
		return n, errDiskFull
	}
	w.left -= len(p)
	return len(p), nil
}

func TestEncodeWriterError(t *testing.T) {
	f := sampleFile()
	size := len(encode(t, f))
	for _, n := range []int{0, 10, size - 1} {
		err := Encode(&failWriter{left: n}, f)
		assert.ErrorIs(t, err, errDiskFull, "fail after %d bytes", n)
	}
	assert.NoError(t, Encode(&failWriter{left: size}, f))
}

func TestConversions(t *testing.T) {
	f32 := FromFloat32("f32", []int64{2}, []float32{1.5, -2})
	f64 := FromFloat64("f64", []int64{2}, []float64{1.5, -2})
	i64 := FromInt64("i64", []int64{2}, []int64{math.MinInt64, math.MaxInt64})
	i32 := FromInt32("i32", []int64{2}, []int32{math.MinInt32, 7})
	u8 := FromUint8("u8", []int64{2}, []uint8{0, 255})
	b := FromBool("b", []int64{3}, []bool{true, false, true})
	i16 := Tensor{Name: "i16", DType: I16, Shape: []int64{1}, Data: []byte{0xfe, 0xff}}
	i8 := Tensor{Name: "i8", DType: I8, Shape: []int64{1}, Data: []byte{0x80}}
	f16 := Tensor{Name: "f16", DType: F16, Shape: []int64{1}, Data: []byte{0x00, 0xbe}}  // -1.5
	bf16 := Tensor{Name: "bf", DType: BF16, Shape: []int64{1}, Data: []byte{0xc0, 0x3f}} // 1.5

	v32, err := f32.Float32()
	require.NoError(t, err)
	assert.Equal(t, []float32{1.5, -2}, v32)
	v64, err := f64.Float64()
	require.NoError(t, err)
	assert.Equal(t, []float64{1.5, -2}, v64)
	v64, err = f32.Float64()
	require.NoError(t, err)
	assert.Equal(t, []float64{1.5, -2}, v64)
	v32, err = f16.Float32()
	require.NoError(t, err)
	assert.Equal(t, []float32{-1.5}, v32)
	v64, err = bf16.Float64()
	require.NoError(t, err)
	assert.Equal(t, []float64{1.5}, v64)

	vi, err := i64.Int64()
	require.NoError(t, err)
	assert.Equal(t, []int64{math.MinInt64, math.MaxInt64}, vi)
	for tensor, want := range map[*Tensor]int64{&i32: math.MinInt32, &i16: -2, &i8: -128, &u8: 0} {
		vi, err := tensor.Int64()
		require.NoError(t, err)
		assert.Equal(t, want, vi[0], tensor.Name)
		vi32, err := tensor.Int32()
		require.NoError(t, err)
		assert.Equal(t, int32(want), vi32[0], tensor.Name)
	}
	vu, err := u8.Uint8()
	require.NoError(t, err)
	assert.Equal(t, []uint8{0, 255}, vu)
	vu[0] = 9
	assert.Equal(t, byte(0), u8.Data[0], "Uint8 must copy")
	vb, err := b.Bool()
	require.NoError(t, err)
	assert.Equal(t, []bool{true, false, true}, vb)

	n, err := f32.NumElements()
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)
	n, err = (&Tensor{DType: F64}).NumElements()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "0-d scalar")

	// Lossy or meaningless conversions are refused.
	for _, tc := range []struct {
		conv func() error
		msg  string
	}{
		{func() error { _, err := f64.Float32(); return err }, "cannot convert dtype F64 to []float32"},
		{func() error { _, err := i64.Float64(); return err }, "cannot convert dtype I64 to []float64"},
		{func() error { _, err := i64.Int32(); return err }, "cannot convert dtype I64 to []int32"},
		{func() error { _, err := f32.Int64(); return err }, "cannot convert dtype F32 to []int64"},
		{func() error { _, err := i8.Uint8(); return err }, "cannot convert dtype I8 to []uint8"},
		{func() error { _, err := u8.Bool(); return err }, "cannot convert dtype U8 to []bool"},
		{func() error { _, err := b.Int64(); return err }, "cannot convert dtype BOOL to []int64"},
		{func() error {
			bad := FromFloat32("bad", []int64{3}, []float32{1})
			_, err := bad.Float32()
			return err
		}, `tensor "bad": data is 4 bytes, want 12`},
	} {
		err := tc.conv()
		assert.ErrorIs(t, err, ErrInvalid)
		assert.ErrorContains(t, err, tc.msg)
	}
	_, err = (&Tensor{Name: "b", DType: Bool, Shape: []int64{1}, Data: []byte{2}}).Bool()
	assert.ErrorIs(t, err, ErrCorrupt)
	assert.ErrorContains(t, err, "element 0 is byte 2")
}

func TestFromCopies(t *testing.T) {
	shape := []int64{2}
	v := []uint8{1, 2}
	tensor := FromUint8("x", shape, v)
	shape[0], v[0] = 5, 5
	assert.Equal(t, []int64{2}, tensor.Shape)
	assert.Equal(t, []byte{1, 2}, tensor.Data)
}

// float16Ref decodes binary16 straight from its definition.
func float16Ref(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(mant, -24)
	case 0x1f:
		if mant != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * math.Ldexp(1+mant/1024, exp-15)
}

func TestFloat16ToFloat32Exhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		got := Float16ToFloat32(h)
		want := float16Ref(h)
		if math.IsNaN(want) {
			require.True(t, math.IsNaN(float64(got)), "%#04x", h)
			continue
		}
		require.Equal(t, want, float64(got), "%#04x", h)
		require.Equal(t, math.Signbit(want), math.Signbit(float64(got)), "%#04x sign", h)
	}
}

func TestBFloat16ToFloat32(t *testing.T) {
	assert.Equal(t, float32(1), BFloat16ToFloat32(0x3f80))
	assert.Equal(t, float32(-3), BFloat16ToFloat32(0xc040))
	assert.Equal(t, float32(math.Ldexp(1, 100)), BFloat16ToFloat32(0x7180))
	assert.True(t, math.IsInf(float64(BFloat16ToFloat32(0xff80)), -1))
	assert.True(t, math.IsNaN(float64(BFloat16ToFloat32(0x7fc0))))
}

func TestDTypeSize(t *testing.T) {
	for d, n := range map[DType]int{F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, Bool: 1, "F8_E4M3": 0, "": 0, "f32": 0} {
		assert.Equal(t, n, d.Size(), string(d))
	}
}

func TestErrorMessagesStayShort(t *testing.T) {
	name := strings.Repeat("ä", 1000)
	_, err := Decode(raw(`{"`+name+`":{"dtype":"`+strings.Repeat("X", 1000)+`","shape":[],"data_offsets":[0,1]}}`, []byte{1}))
	require.ErrorIs(t, err, ErrUnsupportedDType)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, name, e.Tensor, "the full name stays available")
	assert.Less(t, len(err.Error()), 400)
	assert.True(t, utf8.ValidString(err.Error()))
}
