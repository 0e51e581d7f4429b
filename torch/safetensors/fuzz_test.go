package safetensors

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode checks that Decode never panics, that it classifies every
// failure as one of the package's error kinds, and that whatever it accepts
// survives an Encode/Decode round trip unchanged. Seeds live in
// testdata/fuzz/FuzzDecode and below; run with
//
//	go test -run '^$' -fuzz FuzzDecode ./torch/safetensors
func FuzzDecode(f *testing.F) {
	if golden, err := os.ReadFile(filepath.Join("testdata", "golden.safetensors")); err == nil {
		f.Add(golden)
	}
	var buf bytes.Buffer
	if err := Encode(&buf, sampleFile()); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(raw("{}", nil))
	f.Add(raw(`{"__metadata__":{"a":"b"},"x":{"dtype":"BF16","shape":[1,2],"data_offsets":[0,4]}}`, []byte{1, 2, 3, 4}))
	f.Add(raw(`{"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"y":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2}))
	f.Add(raw(`{"x":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"y":{"dtype":"I8","shape":[],"data_offsets":[0,1]}}`, []byte{1}))

	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Decode(b)
		if err != nil {
			if got != nil {
				t.Fatal("non-nil File with error")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error is not *Error: %T %v", err, err)
			}
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedDType) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		// Typed accessors must not panic on anything Decode accepts.
		for i := range got.Tensors {
			tt := &got.Tensors[i]
			_, _ = tt.Float64()
			_, _ = tt.Float32()
			_, _ = tt.Int64()
			_, _ = tt.Int32()
			_, _ = tt.Uint8()
			_, _ = tt.Bool()
			if _, err := tt.NumElements(); err != nil {
				t.Fatalf("NumElements of decoded tensor: %v", err)
			}
		}

		var enc bytes.Buffer
		if err := Encode(&enc, got); err != nil {
			t.Fatalf("Encode of a decoded file: %v", err)
		}
		again, err := Decode(enc.Bytes())
		if err != nil {
			t.Fatalf("Decode of re-encoded file: %v", err)
		}
		if len(again.Metadata) != len(got.Metadata) {
			t.Fatalf("metadata: %v != %v", again.Metadata, got.Metadata)
		}
		for k, v := range got.Metadata {
			if again.Metadata[k] != v {
				t.Fatalf("metadata %q: %q != %q", k, again.Metadata[k], v)
			}
		}
		if len(again.Tensors) != len(got.Tensors) {
			t.Fatalf("%d tensors != %d", len(again.Tensors), len(got.Tensors))
		}
		for i, g := range got.Tensors {
			a := again.Tensors[i]
			if a.Name != g.Name || a.DType != g.DType || !equalShape(a.Shape, g.Shape) || !bytes.Equal(a.Data, g.Data) {
				t.Fatalf("tensor %d: %+v != %+v", i, a, g)
			}
		}
		var enc2 bytes.Buffer
		if err := Encode(&enc2, again); err != nil || !bytes.Equal(enc.Bytes(), enc2.Bytes()) {
			t.Fatalf("encoding is not a fixed point (err %v)", err)
		}
	})
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
