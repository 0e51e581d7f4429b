package safetensors

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/oracle/py"
)

// le16 encodes raw 16-bit patterns little-endian.
func le16(v ...uint16) []byte {
	b := make([]byte, 0, 2*len(v))
	for _, x := range v {
		b = append(b, byte(x), byte(x>>8))
	}
	return b
}

// expectedFile mirrors expected() and METADATA in
// internal/oracle/py/safetensors_gen.py.
func expectedFile() *File {
	return &File{
		Metadata: map[string]string{"format": "pt", "producer": "jmedseg gen.py"},
		Tensors: []Tensor{
			FromFloat32("encoder.conv.weight", []int64{2, 2, 3},
				[]float32{-1, -0.5, 0, 0.5, 1, 1.5, 2, 3.25, -7.125, 1e-3, 3e38, float32(math.Copysign(0, -1))}),
			FromFloat64("encoder.conv.bias", []int64{3}, []float64{0.1, -2.25, 3e100}),
			FromInt64("num_batches_tracked", []int64{}, []int64{-(1 << 40) + 7}),
			FromBool("mask", []int64{2, 3}, []bool{true, false, true, false, false, true}),
			// 1, -2.5, 65504, 2^-24, -inf, 0.333251953125
			{Name: "half", DType: F16, Shape: []int64{6}, Data: le16(0x3c00, 0xc100, 0x7bff, 0x0001, 0xfc00, 0x3555)},
			// 1, -3, 0.15625, 2^100
			{Name: "bhalf", DType: BF16, Shape: []int64{4}, Data: le16(0x3f80, 0xc040, 0x3e20, 0x7180)},
			FromFloat32("empty", []int64{0, 3}, nil),
			FromInt32("labels", []int64{4}, []int32{-7, 0, math.MaxInt32, math.MinInt32}),
			{Name: "small", DType: I16, Shape: []int64{2}, Data: le16(0x8000, 0x7fff)},
			{Name: "tiny", DType: I8, Shape: []int64{3}, Data: []byte{0x80, 0x7f, 0}},
			FromUint8("bytes", []int64{2, 2}, []uint8{0, 1, 128, 255}),
		},
	}
}

// TestGolden decodes the file written by safetensors_gen.py (torch, manual
// layout; header keys sorted, so not in data order).
func TestGolden(t *testing.T) {
	got, err := ReadFile(filepath.Join("testdata", "golden.safetensors"))
	require.NoError(t, err)
	checkExpected(t, got)
}

// checkExpected asserts that f holds exactly expectedFile(), in data order.
func checkExpected(t *testing.T, f *File) {
	t.Helper()
	want := expectedFile()
	assert.Equal(t, want.Metadata, f.Metadata)
	require.Len(t, f.Tensors, len(want.Tensors))
	for i, w := range want.Tensors {
		g := f.Tensors[i]
		assert.Equal(t, w.Name, g.Name, "data order")
		assert.Equal(t, w.DType, g.DType, w.Name)
		assert.Equal(t, w.Shape, g.Shape, w.Name)
		assert.Equal(t, w.Data, g.Data, w.Name)
	}

	// Typed views.
	half, _ := f.Lookup("half")
	hv, err := half.Float32()
	require.NoError(t, err)
	assert.Equal(t, []float32{1, -2.5, 65504, float32(math.Ldexp(1, -24)), float32(math.Inf(-1)), 0.333251953125}, hv)
	bhalf, _ := f.Lookup("bhalf")
	bv, err := bhalf.Float32()
	require.NoError(t, err)
	assert.Equal(t, []float32{1, -3, 0.15625, float32(math.Ldexp(1, 100))}, bv)
	bias, _ := f.Lookup("encoder.conv.bias")
	fv, err := bias.Float64()
	require.NoError(t, err)
	assert.Equal(t, []float64{0.1, -2.25, 3e100}, fv)
	weight, _ := f.Lookup("encoder.conv.weight")
	wv, err := weight.Float32()
	require.NoError(t, err)
	assert.Equal(t, float32(3e38), wv[10])
	assert.True(t, math.Signbit(float64(wv[11])), "-0 keeps its sign")
	step, _ := f.Lookup("num_batches_tracked")
	sv, err := step.Int64()
	require.NoError(t, err)
	assert.Equal(t, []int64{-(1 << 40) + 7}, sv)
	mask, _ := f.Lookup("mask")
	mv, err := mask.Bool()
	require.NoError(t, err)
	assert.Equal(t, []bool{true, false, true, false, false, true}, mv)
	labels, _ := f.Lookup("labels")
	lv, err := labels.Int32()
	require.NoError(t, err)
	assert.Equal(t, []int32{-7, 0, math.MaxInt32, math.MinInt32}, lv)
	small, _ := f.Lookup("small")
	iv, err := small.Int64()
	require.NoError(t, err)
	assert.Equal(t, []int64{math.MinInt16, math.MaxInt16}, iv)
	tiny, _ := f.Lookup("tiny")
	iv, err = tiny.Int64()
	require.NoError(t, err)
	assert.Equal(t, []int64{math.MinInt8, math.MaxInt8, 0}, iv)
	u8, _ := f.Lookup("bytes")
	uv, err := u8.Uint8()
	require.NoError(t, err)
	assert.Equal(t, []uint8{0, 1, 128, 255}, uv)
	empty, _ := f.Lookup("empty")
	ev, err := empty.Float32()
	require.NoError(t, err)
	assert.Empty(t, ev)
}

// TestPythonReadsGo: Go writes the expected state dict and
// safetensors_gen.py (internal/oracle/py) parses it with torch.frombuffer and
// compares it with its own tensors.
func TestPythonReadsGo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "go.safetensors")
	require.NoError(t, WriteFile(path, expectedFile()))
	out := py.Run(t, "safetensors_gen.py", "check", path)
	assert.Contains(t, string(out), "OK")
}

// TestGoReadsPython: safetensors_gen.py writes a fresh file, Go decodes it.
func TestGoReadsPython(t *testing.T) {
	path := filepath.Join(t.TempDir(), "py.safetensors")
	py.Run(t, "safetensors_gen.py", "write", path)
	f, err := ReadFile(path)
	require.NoError(t, err)
	checkExpected(t, f)

	// The committed golden file is still what safetensors_gen.py produces.
	fresh, err := os.ReadFile(path)
	require.NoError(t, err)
	golden, err := os.ReadFile(filepath.Join("testdata", "golden.safetensors"))
	require.NoError(t, err)
	assert.Equal(t, golden, fresh, "regenerate testdata/golden.safetensors with internal/oracle/py/safetensors_gen.py")
}
