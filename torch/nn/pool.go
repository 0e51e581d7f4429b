package nn

import "github.com/jmedseg/jmedseg/torch"

// MaxPool2d is torch.nn.MaxPool2d.
type MaxPool2d struct {
	Base
	Kernel, Stride, Padding, Dilation [2]int64
	CeilMode                          bool
}

// NewMaxPool2d pools k×k windows; the stride defaults to the kernel.
// Options: Kernel, Stride, Padding, Dilation, CeilMode.
func NewMaxPool2d(k int64, opts ...Option) *MaxPool2d {
	c, cerr := configure("MaxPool2d", optKernel|optStride|optPadding|optDilation|optCeilMode, opts)
	kk := pair2(c.kernel, k)
	m := &MaxPool2d{Kernel: kk, Padding: pair2(c.padding, 0), Dilation: pair2(c.dilation, 1), CeilMode: c.ceilMode}
	m.fail(cerr)
	m.Stride = kk
	if len(c.stride) > 0 {
		m.Stride = pair2(c.stride, 1)
	}
	return m
}

// Forward takes window maxima of x [N, C, H, W].
func (m *MaxPool2d) Forward(x *torch.Tensor) *torch.Tensor {
	return torch.MaxPool2d(x, m.Kernel, m.Stride, m.Padding, m.Dilation, m.CeilMode)
}

// ForwardWithIndices also returns the flat int64 indices MaxUnpool2d needs
// (return_indices=True).
func (m *MaxPool2d) ForwardWithIndices(x *torch.Tensor) (out, indices *torch.Tensor) {
	return torch.MaxPool2dWithIndices(x, m.Kernel, m.Stride, m.Padding, m.Dilation, m.CeilMode)
}

// MaxUnpool2d is torch.nn.MaxUnpool2d. It is a Node but not a Module: it
// needs the pooling indices (see Unpool).
type MaxUnpool2d struct {
	Base
	Kernel, Stride, Padding [2]int64
}

// NewMaxUnpool2d inverts a k×k max pooling. Options: Kernel, Stride, Padding.
func NewMaxUnpool2d(k int64, opts ...Option) *MaxUnpool2d {
	c, cerr := configure("MaxUnpool2d", optKernel|optStride|optPadding, opts)
	kk := pair2(c.kernel, k)
	m := &MaxUnpool2d{Kernel: kk, Stride: kk, Padding: pair2(c.padding, 0)}
	m.fail(cerr)
	if len(c.stride) > 0 {
		m.Stride = pair2(c.stride, 1)
	}
	return m
}

// Unpool scatters x to the positions in indices. size gives the output
// [H, W]; nil derives it as PyTorch does: (in-1)·stride - 2·padding + kernel.
func (m *MaxUnpool2d) Unpool(x, indices *torch.Tensor, size *[2]int64) *torch.Tensor {
	if err := torch.FirstErr(x, indices); err != nil {
		return torch.FromError(err)
	}
	var out [2]int64
	if size != nil {
		out = *size
	} else {
		s := x.Shape()
		if len(s) != 4 {
			return fail("MaxUnpool2d: want a 4-D input, got %v", s)
		}
		for i := 0; i < 2; i++ {
			out[i] = (s[2+i]-1)*m.Stride[i] - 2*m.Padding[i] + m.Kernel[i]
		}
	}
	return torch.MaxUnpool2d(x, indices, out)
}

// AvgPool2d is torch.nn.AvgPool2d.
type AvgPool2d struct {
	Base
	Kernel, Stride, Padding [2]int64
	CeilMode, ExcludePad    bool
}

// NewAvgPool2d averages k×k windows; the stride defaults to the kernel.
// Options: Kernel, Stride, Padding, CeilMode, ExcludePadding.
func NewAvgPool2d(k int64, opts ...Option) *AvgPool2d {
	c, cerr := configure("AvgPool2d", optKernel|optStride|optPadding|optCeilMode|optExcludePad, opts)
	kk := pair2(c.kernel, k)
	m := &AvgPool2d{Kernel: kk, Stride: kk, Padding: pair2(c.padding, 0), CeilMode: c.ceilMode, ExcludePad: c.excludePad}
	m.fail(cerr)
	if len(c.stride) > 0 {
		m.Stride = pair2(c.stride, 1)
	}
	return m
}

// Forward averages windows of x [N, C, H, W].
func (m *AvgPool2d) Forward(x *torch.Tensor) *torch.Tensor {
	return torch.AvgPool2d(x, m.Kernel, m.Stride, m.Padding, m.CeilMode, !m.ExcludePad)
}

// AdaptiveAvgPool2d is torch.nn.AdaptiveAvgPool2d.
type AdaptiveAvgPool2d struct {
	Base
	Size [2]int64
}

// NewAdaptiveAvgPool2d averages into an h×w output.
func NewAdaptiveAvgPool2d(h, w int64) *AdaptiveAvgPool2d {
	return &AdaptiveAvgPool2d{Size: [2]int64{h, w}}
}

// Forward pools x [N, C, H, W] to [N, C, h, w].
func (m *AdaptiveAvgPool2d) Forward(x *torch.Tensor) *torch.Tensor {
	return torch.AdaptiveAvgPool2d(x, m.Size)
}

// AdaptiveMaxPool2d is torch.nn.AdaptiveMaxPool2d.
type AdaptiveMaxPool2d struct {
	Base
	Size [2]int64
}

// NewAdaptiveMaxPool2d takes maxima into an h×w output.
func NewAdaptiveMaxPool2d(h, w int64) *AdaptiveMaxPool2d {
	return &AdaptiveMaxPool2d{Size: [2]int64{h, w}}
}

// Forward pools x [N, C, H, W] to [N, C, h, w].
func (m *AdaptiveMaxPool2d) Forward(x *torch.Tensor) *torch.Tensor {
	out, idx := torch.AdaptiveMaxPool2d(x, m.Size)
	idx.Free()
	return out
}

// ForwardWithIndices also returns the int64 indices of the maxima.
func (m *AdaptiveMaxPool2d) ForwardWithIndices(x *torch.Tensor) (out, indices *torch.Tensor) {
	return torch.AdaptiveMaxPool2d(x, m.Size)
}
