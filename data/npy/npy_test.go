package npy

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadGolden(t *testing.T) {
	tests := []struct {
		file  string
		dtype string
		shape []int
		data  []float64
	}{
		{"u1_2x3.npy", "u1", []int{2, 3}, []float64{0, 1, 2, 3, 254, 255}},
		{"i2be_2x2.npy", "i2", []int{2, 2}, []float64{-300, 0, 7, 32767}},
		{"f4fortran_2x3.npy", "f4", []int{2, 3}, []float64{1, 2, 3, 4, 5, 6}},
		{"i8_3.npy", "i8", []int{3}, []float64{-1, 0, 1 << 40}},
		{"b1_2x2.npy", "b1", []int{2, 2}, []float64{1, 0, 0, 1}},
		{"f8v2_1x2x2.npy", "f8", []int{1, 2, 2}, []float64{0.5, -0.25, 1e10, 3}},
		{"u2_rgb_1x2x3.npy", "u2", []int{1, 2, 3}, []float64{0, 65535, 1000, 1, 2, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			a, err := ReadFile(filepath.Join("testdata", tc.file))
			require.NoError(t, err)
			assert.Equal(t, tc.dtype, a.DType)
			assert.Equal(t, tc.shape, a.Shape)
			assert.Equal(t, tc.data, a.Data)
			assert.Equal(t, tc.dtype != "f4" && tc.dtype != "f8", a.IsInteger())
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, dt := range []string{"u1", "i1", "u2", "i2", "i4", "u4", "i8", "f4", "f8", "b1"} {
		t.Run(dt, func(t *testing.T) {
			a := &Array{DType: dt, Shape: []int{2, 1, 3}, Data: []float64{0, 1, 1, 0, 1, 1}}
			var buf bytes.Buffer
			require.NoError(t, Write(&buf, a))
			assert.Zero(t, (buf.Len()-len(a.Data)*elemSize(dt))%64, "header is 64-byte aligned")
			b, err := Decode(&buf)
			require.NoError(t, err)
			assert.Equal(t, a, b)
		})
	}
}

func elemSize(dt string) int { return int(dt[1] - '0') }

func TestDecodeErrors(t *testing.T) {
	good, err := os.ReadFile("testdata/u1_2x3.npy")
	require.NoError(t, err)
	hdr := func(d string) []byte {
		b := append([]byte(Magic), 1, 0, byte(len(d)), 0)
		return append(b, d...)
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "reading magic"},
		{"bad magic", []byte("PK\x03\x04xxxxxxxx"), "bad magic"},
		{"version", append([]byte(Magic), 9, 0, 0, 0), "unsupported format version"},
		{"truncated header", good[:20], "reading header"},
		{"truncated data", good[:len(good)-2], "data truncated"},
		{"not a dict", hdr("hello"), "not a dict"},
		{"no descr", hdr("{'shape': (1,), 'fortran_order': False}"), "no 'descr'"},
		{"complex", hdr("{'descr': '<c8', 'fortran_order': False, 'shape': (1,)}"), "unsupported dtype"},
		{"object", hdr("{'descr': '|O', 'fortran_order': False, 'shape': (1,)}"), "bad dtype"},
		{"bad shape", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (a,)}"), "bad shape"},
		{"huge", hdr("{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000, 100000)}"), "too large"},
		{"bool value", append(hdr("{'descr': '|b1', 'fortran_order': False, 'shape': (1,)}"), 7), "bool element"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(bytes.NewReader(tc.in))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestReadFileNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "broken.npy")
	require.NoError(t, os.WriteFile(p, []byte("nope"), 0o644))
	_, err := ReadFile(p)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "broken.npy")
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.npy")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := Decode(bytes.NewReader(b))
		if err == nil && a.Len() != len(a.Data) {
			t.Fatalf("shape %v but %d elements", a.Shape, len(a.Data))
		}
	})
}
