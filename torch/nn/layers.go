package nn

import (
	"github.com/jmedseg/jmedseg/torch"
)

// Func is a parameter-free module that applies a function: the activations
// (ReLU, GELU, ...) and anything wrapped with Fn.
type Func struct {
	Base
	Name string
	F    func(x *torch.Tensor) *torch.Tensor
}

// Fn wraps f as a module named name (for String and debugging).
func Fn(name string, f func(x *torch.Tensor) *torch.Tensor) *Func { return &Func{Name: name, F: f} }

// Forward applies the function.
func (m *Func) Forward(x *torch.Tensor) *torch.Tensor { return m.F(x) }

func (m *Func) String() string { return m.Name }

// ReLU is torch.nn.ReLU.
func ReLU() *Func { return Fn("ReLU", (*torch.Tensor).Relu) }

// ReLUInPlace is ReLU(inplace=True): it overwrites its input, saving a
// tensor per call, and returns a new handle to it (an Alias), so freeing
// the result never frees the input's handle. Use it where autograd does
// not need the input again, e.g. after BatchNorm.
func ReLUInPlace() *Func { return Fn("ReLU", ReluInPlace) }

// ReluInPlace applies ReLU to x in place and returns an alias of x: the
// functional form of ReLUInPlace, for the same places.
func ReluInPlace(x *torch.Tensor) *torch.Tensor {
	if err := x.ReluInPlace(); err != nil {
		return torch.FromError(err)
	}
	return x.Alias()
}

// ReLU6 is torch.nn.ReLU6.
func ReLU6() *Func { return Fn("ReLU6", (*torch.Tensor).Relu6) }

// LeakyReLU is torch.nn.LeakyReLU with the given negative slope (PyTorch's default is 0.01).
func LeakyReLU(slope float64) *Func {
	return Fn("LeakyReLU", func(x *torch.Tensor) *torch.Tensor { return x.LeakyRelu(slope) })
}

// GELU is torch.nn.GELU (approximate="tanh" when tanh is true).
func GELU(tanh bool) *Func {
	return Fn("GELU", func(x *torch.Tensor) *torch.Tensor { return x.Gelu(tanh) })
}

// ELU is torch.nn.ELU.
func ELU(alpha float64) *Func {
	return Fn("ELU", func(x *torch.Tensor) *torch.Tensor { return x.Elu(alpha) })
}

// Hardtanh is torch.nn.Hardtanh.
func Hardtanh(lo, hi float64) *Func {
	return Fn("Hardtanh", func(x *torch.Tensor) *torch.Tensor { return x.Hardtanh(lo, hi) })
}

// Sigmoid is torch.nn.Sigmoid.
func Sigmoid() *Func { return Fn("Sigmoid", (*torch.Tensor).Sigmoid) }

// Tanh is torch.nn.Tanh.
func Tanh() *Func { return Fn("Tanh", (*torch.Tensor).Tanh) }

// SiLU is torch.nn.SiLU.
func SiLU() *Func { return Fn("SiLU", (*torch.Tensor).Silu) }

// Softmax is torch.nn.Softmax over dim.
func Softmax(dim int64) *Func {
	return Fn("Softmax", func(x *torch.Tensor) *torch.Tensor { return x.Softmax(dim) })
}

// LogSoftmax is torch.nn.LogSoftmax over dim.
func LogSoftmax(dim int64) *Func {
	return Fn("LogSoftmax", func(x *torch.Tensor) *torch.Tensor { return x.LogSoftmax(dim) })
}

// Flatten is torch.nn.Flatten (start 1, end -1 in PyTorch's default).
func Flatten(start, end int64) *Func {
	return Fn("Flatten", func(x *torch.Tensor) *torch.Tensor { return x.Flatten(start, end) })
}

// ReflectionPad2d is torch.nn.ReflectionPad2d with (left, right, top, bottom).
func ReflectionPad2d(left, right, top, bottom int64) *Func {
	pad := []int64{left, right, top, bottom}
	return Fn("ReflectionPad2d", func(x *torch.Tensor) *torch.Tensor { return x.Pad(pad, torch.PadReflect, 0) })
}

// Identity is torch.nn.Identity: it returns its input. The result is a new
// handle, so that freeing it leaves the input alone.
type Identity struct{ Base }

// NewIdentity makes an Identity.
func NewIdentity() *Identity { return &Identity{} }

// Forward returns a new handle to x, in x's scope.
func (m *Identity) Forward(x *torch.Tensor) *torch.Tensor {
	if x.Err() != nil {
		return x
	}
	return x.Scope().Track(x.Shallow())
}

// Dropout is torch.nn.Dropout (and Dropout2d with Feature set): active in
// training mode only.
type Dropout struct {
	Base
	P       float64
	Feature bool // zero whole channels (Dropout2d)
}

// NewDropout zeroes elements with probability p in training.
func NewDropout(p float64) *Dropout { return &Dropout{P: p} }

// NewDropout2d zeroes whole channels of [N, C, H, W] with probability p.
func NewDropout2d(p float64) *Dropout { return &Dropout{P: p, Feature: true} }

// Forward applies dropout in training mode; in evaluation mode it returns
// a new handle to x.
func (m *Dropout) Forward(x *torch.Tensor) *torch.Tensor {
	if x.Err() != nil {
		return x
	}
	if !m.Training() || m.P == 0 {
		return x.Scope().Track(x.Shallow())
	}
	if m.Feature {
		return torch.Dropout2d(x, m.P, true)
	}
	return torch.Dropout(x, m.P, true)
}

// Upsample is torch.nn.Upsample by a scale factor or to a fixed size.
type Upsample struct {
	Base
	Scale        float64  // used when Size is zero
	Size         [2]int64 // fixed output size when non-zero
	Mode         torch.InterpMode
	AlignCorners bool
}

// NewUpsample scales [N, C, H, W] by factor with mode (torch.Nearest or
// torch.Bilinear). Options: AlignCorners.
func NewUpsample(factor float64, mode torch.InterpMode, opts ...Option) *Upsample {
	c, cerr := configure("Upsample", optAlignCorners, opts)
	u := &Upsample{Scale: factor, Mode: mode, AlignCorners: c.alignCorners}
	u.fail(cerr)
	return u
}

// NewUpsampleSize resizes [N, C, H, W] to h×w.
func NewUpsampleSize(h, w int64, mode torch.InterpMode, opts ...Option) *Upsample {
	c, cerr := configure("Upsample", optAlignCorners, opts)
	u := &Upsample{Size: [2]int64{h, w}, Mode: mode, AlignCorners: c.alignCorners}
	u.fail(cerr)
	return u
}

// Forward interpolates x.
func (m *Upsample) Forward(x *torch.Tensor) *torch.Tensor {
	if m.Size != [2]int64{} {
		return torch.Resize(x, m.Size, m.Mode, m.AlignCorners)
	}
	return torch.Upscale(x, m.Scale, m.Mode, m.AlignCorners)
}
