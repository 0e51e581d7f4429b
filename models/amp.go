package models

import (
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// Autocast wraps a model so that its Forward runs under mixed precision
// (torch.Autocast on Device in DType: convolutions and matrix products in
// bfloat16 or float16, precision-sensitive ops in float32) and returns
// float32 logits, so that losses and metrics after it stay in float32, as
// PyTorch's autocast runs cross-entropy in float32. Every other method is
// the wrapped model's: parameters, state dict and checkpoints are
// unchanged.
//
// GradScale, when set (float16 training), scales the gradient that flows
// back into the model by its value without changing the forward result:
// the loss scaling of torch.cuda.amp.GradScaler applied at the model's
// output, so that small float16 gradients do not underflow. The optimizer
// must then unscale (optim.GradScaler.Wrap does both sides).
type Autocast struct {
	nn.Module
	Device    torch.Device
	DType     torch.DType
	GradScale func() float64
}

// WithAutocast wraps m; see Autocast.
func WithAutocast(m nn.Module, dev torch.Device, dtype torch.DType) *Autocast {
	return &Autocast{Module: m, Device: dev, DType: dtype}
}

// Unwrap returns the wrapped model.
func (a *Autocast) Unwrap() nn.Module { return a.Module }

// Forward implements nn.Module.
func (a *Autocast) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		var y *torch.Tensor
		if err := torch.Autocast(a.Device, a.DType, func() { y = a.Module.Forward(x) }); err != nil {
			return torch.FromError(err)
		}
		if y.DType() != torch.Float32 {
			y = y.ToDType(torch.Float32)
		}
		if a.GradScale != nil && y.RequiresGrad() {
			// y.detach() + (y − y.detach())·s: the value is y's exactly
			// (the difference is 0), the gradient s times y's.
			d := y.Detach()
			y = d.Add(y.Sub(d).MulScalar(a.GradScale()))
		}
		return y
	})
}
