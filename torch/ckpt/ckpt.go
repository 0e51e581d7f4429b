// Package ckpt saves and loads model weights and full training states as
// safetensors files that PyTorch reads and writes too.
//
// A model checkpoint holds the module's state dict under PyTorch's keys, so
// `model.load_state_dict(load_file(path))` works in Python and a state dict
// written from Python loads here. A training checkpoint adds the optimizer
// and scheduler state, the RNG state, the epoch and the step, so that a
// resumed run continues exactly. Files are written atomically; errors name
// the file and, where there is one, the tensor.
package ckpt

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
	"github.com/jmedseg/jmedseg/torch/safetensors"
)

// metadata keys this package owns.
const (
	keyKind      = "jmedseg.kind"
	keyEpoch     = "jmedseg.epoch"
	keyStep      = "jmedseg.step"
	keyOptimizer = "jmedseg.optimizer"
	keyScheduler = "jmedseg.scheduler"
	kindModel    = "model"
	kindTraining = "training"
	modelPrefix  = "model."
	optimPrefix  = "optimizer."
	rngKey       = "rng.cpu"
)

var toST = map[torch.DType]safetensors.DType{
	torch.Float32: safetensors.F32, torch.Float64: safetensors.F64, torch.Int64: safetensors.I64,
	torch.Int32: safetensors.I32, torch.Int16: safetensors.I16, torch.Int8: safetensors.I8,
	torch.Uint8: safetensors.U8, torch.Bool: safetensors.Bool,
}

// Encode copies a tensor (from any device) into a safetensors tensor.
func Encode(name string, t *torch.Tensor) (safetensors.Tensor, error) {
	if err := t.Err(); err != nil {
		return safetensors.Tensor{}, fmt.Errorf("ckpt: tensor %q: %w", name, err)
	}
	shape := t.Shape()
	wrap := func(err error) (safetensors.Tensor, error) {
		return safetensors.Tensor{}, fmt.Errorf("ckpt: tensor %q: %w", name, err)
	}
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
	shape := st.Shape
	if shape == nil {
		shape = []int64{}
	}
	fromErr := func(err error) *torch.Tensor {
		return torch.FromError(fmt.Errorf("ckpt: tensor %q: %w", st.Name, err))
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

// fileErr makes err name path (safetensors errors from ReadFile already do).
func fileErr(path string, err error) error {
	var se *safetensors.Error
	if errors.As(err, &se) && se.Path != "" {
		return fmt.Errorf("ckpt: %w", err)
	}
	return fmt.Errorf("ckpt: %s: %w", path, err)
}

// WriteTensors writes tensors and metadata to path atomically.
func WriteTensors(path string, ts []nn.Named, meta map[string]string) error {
	f := &safetensors.File{Metadata: meta}
	for _, n := range ts {
		st, err := Encode(n.Name, n.Tensor)
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
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, nil, fileErr(path, err)
	}
	out := make([]nn.Named, 0, len(f.Tensors))
	for i := range f.Tensors {
		t := Decode(&f.Tensors[i])
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

// Save writes m's state dict to path atomically, with meta (for example the
// model name and its configuration) in the file's metadata.
func Save(path string, m nn.Node, meta map[string]string) error {
	if err := m.Err(); err != nil {
		return fmt.Errorf("ckpt: %s: the model is broken: %w", path, err)
	}
	md := map[string]string{"format": "pt", keyKind: kindModel}
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
	ts, meta, err := ReadTensors(path)
	if err != nil {
		return nil, nil, err
	}
	defer Free(ts)
	if meta[keyKind] == kindTraining {
		ts = withPrefix(ts, modelPrefix)
	}
	rep, err := loadInto(m, ts, strict)
	if err != nil {
		return meta, rep, fileErr(path, err)
	}
	return meta, rep, nil
}

// ReadMetadata returns a checkpoint's metadata without loading tensors
// into libtorch.
func ReadMetadata(path string) (map[string]string, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, fileErr(path, err)
	}
	return f.Metadata, nil
}

func withPrefix(ts []nn.Named, prefix string) []nn.Named {
	var out []nn.Named
	for _, n := range ts {
		if len(n.Name) > len(prefix) && n.Name[:len(prefix)] == prefix {
			out = append(out, nn.Named{Name: n.Name[len(prefix):], Tensor: n.Tensor})
		}
	}
	return out
}

// loadInto checks dtype kinds, then loads.
func loadInto(m nn.Node, ts []nn.Named, strict bool) (*nn.LoadReport, error) {
	have := make(map[string]*torch.Tensor, len(ts))
	for _, n := range ts {
		have[n.Name] = n.Tensor
	}
	for _, o := range m.StateDict() {
		if src, ok := have[o.Name]; ok && src.DType().IsFloat() != o.Tensor.DType().IsFloat() {
			return nil, fmt.Errorf("tensor %q has dtype %s in the checkpoint but %s in the model", o.Name, src.DType(), o.Tensor.DType())
		}
	}
	return m.LoadStateDict(ts, strict)
}
