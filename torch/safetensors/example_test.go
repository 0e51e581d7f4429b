package safetensors_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/jmedseg/jmedseg/torch/safetensors"
)

// Encode a small state dict to memory and decode it again.
func Example() {
	f := &safetensors.File{
		Metadata: map[string]string{"format": "pt"},
		Tensors: []safetensors.Tensor{
			safetensors.FromFloat32("conv.weight", []int64{2, 2}, []float32{0.5, -1, 2, 0}),
			safetensors.FromInt64("step", []int64{}, []int64{42}), // 0-d scalar
		},
	}
	var buf bytes.Buffer
	if err := safetensors.Encode(&buf, f); err != nil {
		log.Fatal(err)
	}

	got, err := safetensors.Decode(buf.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("metadata:", got.Metadata)
	for _, t := range got.Tensors {
		fmt.Println(t.Name, t.DType, t.Shape, len(t.Data), "bytes")
	}
	w, _ := got.Lookup("conv.weight")
	v, err := w.Float32()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v)
	// Output:
	// metadata: map[format:pt]
	// conv.weight F32 [2 2] 16 bytes
	// step I64 [] 8 bytes
	// [0.5 -1 2 0]
}

// WriteFile replaces the target atomically; ReadFile validates the file.
func ExampleWriteFile() {
	dir, err := os.MkdirTemp("", "safetensors-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.safetensors")

	f := &safetensors.File{Tensors: []safetensors.Tensor{
		safetensors.FromUint8("mask", []int64{2, 3}, []uint8{0, 1, 1, 0, 2, 2}),
	}}
	if err := safetensors.WriteFile(path, f); err != nil {
		log.Fatal(err)
	}
	got, err := safetensors.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	mask, _ := got.Lookup("mask")
	labels, _ := mask.Int64() // lossless widening from U8
	fmt.Println(mask.Shape, labels)
	// Output:
	// [2 3] [0 1 1 0 2 2]
}

// Half-precision tensors read as float32.
func ExampleTensor_Float32() {
	t := safetensors.Tensor{
		Name:  "half",
		DType: safetensors.F16,
		Shape: []int64{3},
		Data:  []byte{0x00, 0x3c, 0x00, 0xc1, 0x00, 0x7c}, // 1, -2.5, +Inf
	}
	v, err := t.Float32()
	fmt.Println(v, err)
	// Output:
	// [1 -2.5 +Inf] <nil>
}

// Errors wrap a kind that errors.Is can test, and name the tensor.
func ExampleDecode_errors() {
	f := &safetensors.File{Tensors: []safetensors.Tensor{
		safetensors.FromFloat32("w", []int64{4}, []float32{1, 2, 3, 4}),
	}}
	var buf bytes.Buffer
	if err := safetensors.Encode(&buf, f); err != nil {
		log.Fatal(err)
	}
	b := buf.Bytes()

	_, err := safetensors.Decode(b[:len(b)-1]) // cut off the last byte
	fmt.Println(errors.Is(err, safetensors.ErrTruncated))
	fmt.Println(err)
	// Output:
	// true
	// safetensors: tensor "w": data_offsets [0, 16] exceed the 15-byte data section (truncated)
}
