// Package ckpt saves and loads model weights as safetensors files that
// PyTorch reads and writes too.
//
// A checkpoint holds the module's state dict under PyTorch's keys, so
// `model.load_state_dict(load_file(path))` works in Python and a state dict
// written from Python loads here. Files are written atomically; errors name
// the file and, where there is one, the tensor.
//
// A file's "jmedseg.kind" metadata entry tells what it holds (KindModel,
// KindTraining, or a kind of its owner's, such as models' encoder files).
// A training checkpoint, written by package train, holds the model under
// ModelPrefix besides the optimizer, scheduler and RNG state; Load reads
// its model. This package links no optimizer or training code, so a
// program that only predicts can use it.
package ckpt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
	"github.com/jmedseg/jmedseg/torch/safetensors"
)

// MetaKind is the metadata key whose value says what a file holds.
const MetaKind = "jmedseg.kind"

// Values of MetaKind this package knows.
const (
	KindModel    = "model"    // a state dict (Save)
	KindTraining = "training" // a training checkpoint (package train)
)

// ModelPrefix starts the model's keys in a training checkpoint.
const ModelPrefix = "model."

// Encode copies a tensor (from any device) into a safetensors tensor:
// float32, float64, integer and bool tensors; convert others (float16,
// bfloat16) first.
func Encode(name string, t *torch.Tensor) (safetensors.Tensor, error) {
	st, err := encode(name, t)
	if err != nil {
		return st, fmt.Errorf("ckpt: %w", err)
	}
	return st, nil
}

// encode is Encode; its errors name the tensor.
func encode(name string, t *torch.Tensor) (safetensors.Tensor, error) {
	wrap := func(err error) (safetensors.Tensor, error) {
		return safetensors.Tensor{}, fmt.Errorf("tensor %q: %w", name, err)
	}
	if err := t.Err(); err != nil {
		return wrap(err)
	}
	shape := t.Shape()
	switch t.DType() {
	case torch.Float32:
		v, err := torch.ToSlice[float32](t)
		if err != nil {
			return wrap(err)
		}
		return safetensors.FromFloat32(name, shape, v), nil
	case torch.Float64:
		v, err := torch.ToSlice[float64](t)
		if err != nil {
			return wrap(err)
		}
		return safetensors.FromFloat64(name, shape, v), nil
	case torch.Int64:
		v, err := torch.ToSlice[int64](t)
		if err != nil {
			return wrap(err)
		}
		return safetensors.FromInt64(name, shape, v), nil
	case torch.Int32:
		v, err := torch.ToSlice[int32](t)
		if err != nil {
			return wrap(err)
		}
		return safetensors.FromInt32(name, shape, v), nil
	case torch.Uint8:
		v, err := torch.ToSlice[uint8](t)
		if err != nil {
			return wrap(err)
		}
		return safetensors.FromUint8(name, shape, v), nil
	case torch.Bool:
		v, err := torch.ToSlice[bool](t)
		if err != nil {
			return wrap(err)
		}
		return safetensors.FromBool(name, shape, v), nil
	case torch.Int16:
		v, err := torch.ToSlice[int16](t)
		if err != nil {
			return wrap(err)
		}
		b := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(x))
		}
		return safetensors.Tensor{Name: name, DType: safetensors.I16, Shape: shape, Data: b}, nil
	case torch.Int8:
		v, err := torch.ToSlice[int8](t)
		if err != nil {
			return wrap(err)
		}
		b := make([]byte, len(v))
		for i, x := range v {
			b[i] = byte(x)
		}
		return safetensors.Tensor{Name: name, DType: safetensors.I8, Shape: shape, Data: b}, nil
	}
	return wrap(fmt.Errorf("dtype %s cannot be saved (convert it to float32 first)", t.DType()))
}

// Decode makes a CPU tensor (owned by the caller) from a safetensors
// tensor. F16 and BF16 become float16 and bfloat16 tensors.
func Decode(st *safetensors.Tensor) *torch.Tensor {
	t := decode(st)
	if err := t.Err(); err != nil {
		return torch.FromError(fmt.Errorf("ckpt: %w", err))
	}
	return t
}

// decode is Decode; its errors name the tensor.
func decode(st *safetensors.Tensor) *torch.Tensor {
	shape := st.Shape
	if shape == nil {
		shape = []int64{}
	}
	fromErr := func(err error) *torch.Tensor {
		return torch.FromError(fmt.Errorf("tensor %q: %w", st.Name, err))
	}
	switch st.DType {
	case safetensors.F32, safetensors.F16, safetensors.BF16:
		v, err := st.Float32()
		if err != nil {
			return fromErr(err)
		}
		switch st.DType {
		case safetensors.F16:
			return torch.FromSlice(v, shape, torch.Float16)
		case safetensors.BF16:
			return torch.FromSlice(v, shape, torch.BFloat16)
		}
		return torch.FromSlice(v, shape)
	case safetensors.F64:
		v, err := st.Float64()
		if err != nil {
			return fromErr(err)
		}
		return torch.FromSlice(v, shape)
	case safetensors.I64:
		v, err := st.Int64()
		if err != nil {
			return fromErr(err)
		}
		return torch.FromSlice(v, shape)
	case safetensors.I32:
		v, err := st.Int32()
		if err != nil {
			return fromErr(err)
		}
		return torch.FromSlice(v, shape)
	case safetensors.I16, safetensors.I8:
		v, err := st.Int64()
		if err != nil {
			return fromErr(err)
		}
		dt := torch.Int16
		if st.DType == safetensors.I8 {
			dt = torch.Int8
		}
		return torch.FromSlice(v, shape, dt)
	case safetensors.U8:
		v, err := st.Uint8()
		if err != nil {
			return fromErr(err)
		}
		return torch.FromSlice(v, shape)
	case safetensors.Bool:
		v, err := st.Bool()
		if err != nil {
			return fromErr(err)
		}
		return torch.FromSlice(v, shape)
	}
	return fromErr(fmt.Errorf("unsupported dtype %q", st.DType))
}

// fileErr makes err name path, unless it does already (ReadFile's errors
// do).
func fileErr(path string, err error) error {
	var se *safetensors.Error
	var pe *fs.PathError
	if errors.As(err, &se) && se.Path == path || errors.As(err, &pe) && pe.Path == path {
		return fmt.Errorf("ckpt: %w", err)
	}
	return fmt.Errorf("ckpt: %s: %w", path, err)
}

// ReadFile reads and decodes the safetensors file at path, for
// ReadMetadata's metadata and LoadFile's tensors from one read. Its errors
// name the file.
func ReadFile(path string) (*safetensors.File, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, fileErr(path, err)
	}
	return f, nil
}

// WriteTensors writes tensors and metadata to path atomically.
func WriteTensors(path string, ts []nn.Named, meta map[string]string) error {
	f := &safetensors.File{Metadata: meta}
	for _, n := range ts {
		st, err := encode(n.Name, n.Tensor)
		if err != nil {
			return fileErr(path, err)
		}
		f.Tensors = append(f.Tensors, st)
	}
	if err := safetensors.WriteFile(path, f); err != nil {
		return fileErr(path, err)
	}
	return nil
}

// ReadTensors reads every tensor of a safetensors file into CPU tensors
// (owned by the caller, see Free) in file order, with the metadata.
func ReadTensors(path string) ([]nn.Named, map[string]string, error) {
	f, err := ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	out := make([]nn.Named, 0, len(f.Tensors))
	for i := range f.Tensors {
		t := decode(&f.Tensors[i])
		if err := t.Err(); err != nil {
			Free(out)
			return nil, nil, fileErr(path, err)
		}
		out = append(out, nn.Named{Name: f.Tensors[i].Name, Tensor: t})
	}
	return out, f.Metadata, nil
}

// Free releases the tensors of ts.
func Free(ts []nn.Named) {
	for _, n := range ts {
		n.Tensor.Free()
	}
}

// Save writes m's state dict to path atomically, as a KindModel file (or
// the kind meta names), with meta (for example the model name and its
// configuration) in the file's metadata.
func Save(path string, m nn.Node, meta map[string]string) error {
	if err := m.Err(); err != nil {
		return fmt.Errorf("ckpt: %s: the model is broken: %w", path, err)
	}
	md := map[string]string{"format": "pt", MetaKind: KindModel}
	for k, v := range meta {
		md[k] = v
	}
	return WriteTensors(path, m.StateDict(), md)
}

// Load reads a checkpoint into m (a model checkpoint, a training
// checkpoint's model part, or any state dict in safetensors layout) and
// returns its metadata and how the keys fit. Strict mode fails on missing
// or unexpected keys; both modes fail on shapes or dtype kinds that differ,
// and then nothing is loaded. Errors name the file and the keys.
func Load(path string, m nn.Node, strict bool) (map[string]string, *nn.LoadReport, error) {
	f, err := ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	prefix := ""
	if f.Metadata[MetaKind] == KindTraining {
		prefix = ModelPrefix
	}
	rep, err := LoadFile(f, m, prefix, strict)
	if err != nil {
		return f.Metadata, rep, fileErr(path, err)
	}
	return f.Metadata, rep, nil
}

// LoadFile loads the tensors of f whose names start with prefix (the
// prefix taken off; "" takes all) into m, as Load does: strict mode fails
// on missing or unexpected keys, both modes on shapes that differ or on a
// floating-point tensor where m has an integer one (or the reverse), and
// then nothing is loaded. The tensors are decoded for the call only. Errors
// name the tensors, not the file.
func LoadFile(f *safetensors.File, m nn.Node, prefix string, strict bool) (*nn.LoadReport, error) {
	s := torch.NewScope()
	defer s.Close()
	var sd []nn.Named
	for i := range f.Tensors {
		st := &f.Tensors[i]
		name, ok := strings.CutPrefix(st.Name, prefix)
		if !ok {
			continue
		}
		t := s.Track(decode(st))
		if err := t.Err(); err != nil {
			return nil, err
		}
		sd = append(sd, nn.Named{Name: name, Tensor: t})
	}
	have := make(map[string]*torch.Tensor, len(sd))
	for _, n := range sd {
		have[n.Name] = n.Tensor
	}
	for _, o := range m.StateDict() {
		if src, ok := have[o.Name]; ok && src.DType().IsFloat() != o.Tensor.DType().IsFloat() {
			return nil, fmt.Errorf("tensor %q has dtype %s in the checkpoint but %s in the model", o.Name, src.DType(), o.Tensor.DType())
		}
	}
	return m.LoadStateDict(sd, strict)
}

// ReadMetadata returns a checkpoint's metadata without loading tensors
// into libtorch.
func ReadMetadata(path string) (map[string]string, error) {
	f, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return f.Metadata, nil
}
