package nn

import (
	"fmt"

	"github.com/jmedseg/jmedseg/torch"
)

// newParam allocates an uninitialised float32 CPU tensor for a parameter.
func newParam(shape ...int64) *torch.Tensor { return torch.Empty(shape) }

// initDefault applies PyTorch's default Conv/Linear initialisation and
// registers weight and bias (bias may be nil).
func (b *Base) initDefault(w, bias *torch.Tensor) {
	if err := torch.FirstErr(w, bias); err != nil {
		b.fail(err)
		return
	}
	b.fail(defaultInit(w, bias))
	b.RegisterParameter("weight", w)
	if bias != nil {
		b.RegisterParameter("bias", bias)
	}
}

func checkGroups(in, out, groups int64) error {
	if groups < 1 || in%groups != 0 || out%groups != 0 {
		return fmt.Errorf("nn: %d input and %d output channels are not divisible into %d groups", in, out, groups)
	}
	return nil
}

// Conv2d is torch.nn.Conv2d: weight [out, in/groups, kh, kw], bias [out].
type Conv2d struct {
	Base
	Weight, Bias              *torch.Tensor // Bias is nil with NoBias
	Stride, Padding, Dilation [2]int64
	Groups                    int64
	InChannels, OutChannels   int64
	KernelSize                [2]int64
}

// NewConv2d makes a 2-D convolution with a k×k kernel (Kernel overrides it).
// Options: Stride, Padding, Dilation, Groups, NoBias.
func NewConv2d(in, out, k int64, opts ...Option) *Conv2d {
	c, cerr := configure("Conv2d", optKernel|optStride|optPadding|optDilation|optGroups|optNoBias, opts)
	m := &Conv2d{InChannels: in, OutChannels: out, KernelSize: pair2(c.kernel, k),
		Stride: pair2(c.stride, 1), Padding: pair2(c.padding, 0), Dilation: pair2(c.dilation, 1), Groups: max(c.groups, 1)}
	m.fail(cerr)
	if err := checkGroups(in, out, m.Groups); err != nil {
		m.fail(err)
		return m
	}
	m.Weight = newParam(out, in/m.Groups, m.KernelSize[0], m.KernelSize[1])
	if !c.noBias {
		m.Bias = newParam(out)
	}
	m.initDefault(m.Weight, m.Bias)
	return m
}

// Forward convolves x [N, C, H, W], on oneDNN where libtorch's heuristic
// would pick a slower native kernel (torch.Conv2dOneDNN; off with
// torch.SetOneDNNConv(false)).
func (m *Conv2d) Forward(x *torch.Tensor) *torch.Tensor {
	return torch.Conv2dOneDNN(x, m.Weight, m.Bias, m.Stride, m.Padding, m.Dilation, m.Groups)
}

// Conv1d is torch.nn.Conv1d: weight [out, in/groups, k], bias [out].
type Conv1d struct {
	Base
	Weight, Bias              *torch.Tensor
	Stride, Padding, Dilation int64
	Groups                    int64
	InChannels, OutChannels   int64
	KernelSize                int64
}

// NewConv1d makes a 1-D convolution. Options: Stride, Padding, Dilation,
// Groups, NoBias.
func NewConv1d(in, out, k int64, opts ...Option) *Conv1d {
	c, cerr := configure("Conv1d", optKernel|optStride|optPadding|optDilation|optGroups|optNoBias, opts)
	m := &Conv1d{InChannels: in, OutChannels: out, KernelSize: one(c.kernel, k),
		Stride: one(c.stride, 1), Padding: one(c.padding, 0), Dilation: one(c.dilation, 1), Groups: max(c.groups, 1)}
	m.fail(cerr)
	if err := checkGroups(in, out, m.Groups); err != nil {
		m.fail(err)
		return m
	}
	m.Weight = newParam(out, in/m.Groups, m.KernelSize)
	if !c.noBias {
		m.Bias = newParam(out)
	}
	m.initDefault(m.Weight, m.Bias)
	return m
}

// Forward convolves x [N, C, L].
func (m *Conv1d) Forward(x *torch.Tensor) *torch.Tensor {
	return torch.Conv1d(x, m.Weight, m.Bias, m.Stride, m.Padding, m.Dilation, m.Groups)
}

// ConvTranspose2d is torch.nn.ConvTranspose2d: weight [in, out/groups, kh, kw].
type ConvTranspose2d struct {
	Base
	Weight, Bias                             *torch.Tensor
	Stride, Padding, OutputPadding, Dilation [2]int64
	Groups                                   int64
	InChannels, OutChannels                  int64
	KernelSize                               [2]int64
}

// NewConvTranspose2d makes a transposed 2-D convolution. Options: Stride,
// Padding, OutputPadding, Dilation, Groups, NoBias.
func NewConvTranspose2d(in, out, k int64, opts ...Option) *ConvTranspose2d {
	c, cerr := configure("ConvTranspose2d", optKernel|optStride|optPadding|optOutputPadding|optDilation|optGroups|optNoBias, opts)
	m := &ConvTranspose2d{InChannels: in, OutChannels: out, KernelSize: pair2(c.kernel, k),
		Stride: pair2(c.stride, 1), Padding: pair2(c.padding, 0), OutputPadding: pair2(c.outputPadding, 0),
		Dilation: pair2(c.dilation, 1), Groups: max(c.groups, 1)}
	m.fail(cerr)
	if err := checkGroups(in, out, m.Groups); err != nil {
		m.fail(err)
		return m
	}
	m.Weight = newParam(in, out/m.Groups, m.KernelSize[0], m.KernelSize[1])
	if !c.noBias {
		m.Bias = newParam(out)
	}
	m.initDefault(m.Weight, m.Bias)
	return m
}

// Forward applies the transposed convolution to x [N, C, H, W], on oneDNN
// where its stride is above 1 (torch.ConvTranspose2dOneDNN; off with
// torch.SetOneDNNConv(false)).
func (m *ConvTranspose2d) Forward(x *torch.Tensor) *torch.Tensor {
	return torch.ConvTranspose2dOneDNN(x, m.Weight, m.Bias, m.Stride, m.Padding, m.OutputPadding, m.Dilation, m.Groups)
}

// Linear is torch.nn.Linear: y = x·Wᵀ + b with weight [out, in].
type Linear struct {
	Base
	Weight, Bias            *torch.Tensor
	InFeatures, OutFeatures int64
}

// NewLinear makes a fully connected layer. Options: NoBias.
func NewLinear(in, out int64, opts ...Option) *Linear {
	c, cerr := configure("Linear", optNoBias, opts)
	m := &Linear{InFeatures: in, OutFeatures: out}
	m.fail(cerr)
	m.Weight = newParam(out, in)
	if !c.noBias {
		m.Bias = newParam(out)
	}
	m.initDefault(m.Weight, m.Bias)
	return m
}

// Forward maps x [..., in] to [..., out].
func (m *Linear) Forward(x *torch.Tensor) *torch.Tensor { return torch.Linear(x, m.Weight, m.Bias) }

// Embedding is torch.nn.Embedding: a lookup table weight [num, dim]
// initialised N(0, 1).
type Embedding struct {
	Base
	Weight *torch.Tensor
}

// NewEmbedding makes a table of num vectors of size dim.
func NewEmbedding(num, dim int64) *Embedding {
	m := &Embedding{Weight: newParam(num, dim)}
	m.fail(Normal(m.Weight, 0, 1))
	m.RegisterParameter("weight", m.Weight)
	return m
}

// Forward looks up the rows at the int64 indices.
func (m *Embedding) Forward(indices *torch.Tensor) *torch.Tensor {
	return torch.Embedding(m.Weight, indices)
}
