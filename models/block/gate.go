package block

import (
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func gate(g Gating, t *torch.Tensor) *torch.Tensor {
	if g == SoftmaxAll {
		return t.Reshape(-1).Softmax(0).Reshape(t.Shape()...)
	}
	return t.Sigmoid()
}

// SE is channel squeeze-excitation: global average pooling, a bottleneck
// of c/r channels with ReLU, a gate per channel, x times the gate. Its
// Linear form (the default) has the reference scseunet's keys
// "linear_1", "linear_2"; ConvForm has torchvision's "fc1", "fc2" (1×1
// convolutions). Both have biases.
type SE struct {
	nn.Base
	fc1, fc2 nn.Module
	conv     bool
	gating   Gating
}

// NewSE makes the block for c channels. Options: Reduction (16),
// ConvForm, Gate (Sigmoid).
func NewSE(c int64, opts ...Option) *SE {
	s := &SE{}
	cfg, err := configure("SE", optReduction|optConvForm|optGate, opts)
	if err == nil {
		err = positive("SE", dim{"channels", c}, dim{"reduction", cfg.reduction})
	}
	if err == nil && c/cfg.reduction < 1 {
		err = errorf("SE", "%d channels reduced %d times leave none", c, cfg.reduction)
	}
	if err != nil {
		failOn(&s.Base, err)
		return s
	}
	hidden := c / cfg.reduction
	s.conv, s.gating = cfg.convForm, cfg.gate
	if s.conv {
		s.fc1 = nn.Register(&s.Base, "fc1", nn.NewConv2d(c, hidden, 1))
		s.fc2 = nn.Register(&s.Base, "fc2", nn.NewConv2d(hidden, c, 1))
	} else {
		s.fc1 = nn.Register(&s.Base, "linear_1", nn.NewLinear(c, hidden))
		s.fc2 = nn.Register(&s.Base, "linear_2", nn.NewLinear(hidden, c))
	}
	return s
}

// Forward weighs x [N, C, H, W] per channel.
func (s *SE) Forward(x *torch.Tensor) *torch.Tensor {
	if s.fc1 == nil {
		return torch.FromError(s.Err())
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		z := x.MeanDims([]int64{2, 3}, s.conv)
		z = s.fc2.Forward(nn.ReluInPlace(s.fc1.Forward(z)))
		if !s.conv {
			z = z.Reshape(z.Size(0), z.Size(1), 1, 1)
		}
		return x.Mul(gate(s.gating, z))
	})
}

// SSE is spatial squeeze-excitation: a 1×1 convolution (with bias) to one
// channel, "conv", gated per pixel, x times the gate.
type SSE struct {
	nn.Base
	conv   *nn.Conv2d
	gating Gating
}

// NewSSE makes the block for c channels. Options: Gate (Sigmoid).
func NewSSE(c int64, opts ...Option) *SSE {
	s := &SSE{}
	cfg, err := configure("SSE", optGate, opts)
	if err == nil {
		err = positive("SSE", dim{"channels", c})
	}
	if err != nil {
		failOn(&s.Base, err)
		return s
	}
	s.gating = cfg.gate
	s.conv = nn.Register(&s.Base, "conv", nn.NewConv2d(c, 1, 1))
	return s
}

// Forward weighs x [N, C, H, W] per pixel.
func (s *SSE) Forward(x *torch.Tensor) *torch.Tensor {
	if s.conv == nil {
		return torch.FromError(s.Err())
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		return x.Mul(gate(s.gating, s.conv.Forward(x)))
	})
}

// SCSE is concurrent spatial and channel squeeze-excitation, the sum of an
// SE (Linear form) and an SSE. The keys keep the reference's names, which
// swap the published ones: "spatial_gate" is the channel SE
// (spatial_gate.linear_1.weight) and "channel_gate" the per-pixel SSE
// (channel_gate.conv.weight). The gates are sigmoids, as published;
// Gate(SoftmaxAll) is the reference's quirk.
type SCSE struct {
	nn.Base
	se  *SE
	sse *SSE
}

// NewSCSE makes the block for c channels. Options: Reduction (16), Gate
// (Sigmoid).
func NewSCSE(c int64, opts ...Option) *SCSE {
	s := &SCSE{}
	cfg, err := configure("SCSE", optReduction|optGate, opts)
	if err != nil {
		failOn(&s.Base, err)
		return s
	}
	s.se = nn.Register(&s.Base, "spatial_gate", NewSE(c, Reduction(cfg.reduction), Gate(cfg.gate)))
	s.sse = nn.Register(&s.Base, "channel_gate", NewSSE(c, Gate(cfg.gate)))
	return s
}

// Forward returns SE(x) + SSE(x).
func (s *SCSE) Forward(x *torch.Tensor) *torch.Tensor {
	if s.se == nil {
		return torch.FromError(s.Err())
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		return s.se.Forward(x).Add(s.sse.Forward(x))
	})
}

// AttentionGate is Attention U-Net's gate (Oktay et al.): skip features x
// weighed by ψ = sigmoid(norm(conv1×1(relu(W_g g + W_x x)))). Keys:
// "W_g.0" (1×1 conv with bias), "W_g.1" (norm), "W_x.0", "W_x.1", "psi.0",
// "psi.1" (norm of one channel), "psi.2" (the sigmoid).
type AttentionGate struct {
	nn.Base
	wg, wx, psi *nn.Sequential
}

// NewAttentionGate makes a gate for a gating signal of fg channels and
// skip features of fl channels, with fint intermediate channels. Options:
// Norm (BatchNorm; R2AttU-Net's InstanceNorm).
func NewAttentionGate(fg, fl, fint int64, opts ...Option) *AttentionGate {
	a := &AttentionGate{}
	cfg, err := configure("AttentionGate", optNorm, opts)
	if err == nil {
		err = positive("AttentionGate", dim{"F_g", fg}, dim{"F_l", fl}, dim{"F_int", fint})
	}
	if err == nil && cfg.norm == nil {
		err = errorf("AttentionGate", "needs a normalisation")
	}
	if err != nil {
		failOn(&a.Base, err)
		return a
	}
	a.wg = nn.Register(&a.Base, "W_g", nn.Seq(nn.NewConv2d(fg, fint, 1), cfg.norm(fint)))
	a.wx = nn.Register(&a.Base, "W_x", nn.Seq(nn.NewConv2d(fl, fint, 1), cfg.norm(fint)))
	a.psi = nn.Register(&a.Base, "psi", nn.Seq(nn.NewConv2d(fint, 1, 1), cfg.norm(1), nn.Sigmoid()))
	return a
}

// Merge takes (g, x), the gating signal and the skip features, and
// returns x weighed by the attention map.
func (a *AttentionGate) Merge(xs ...*torch.Tensor) *torch.Tensor {
	if len(xs) != 2 {
		return torch.FromError(errorf("AttentionGate", "Merge takes (g, x), got %d inputs", len(xs)))
	}
	if a.wg == nil {
		return torch.FromError(a.Err())
	}
	return nn.Frame2(xs[0], xs[1], func(g, x *torch.Tensor) *torch.Tensor {
		psi := a.psi.Forward(nn.ReluInPlace(a.wg.Forward(g).Add(a.wx.Forward(x))))
		return x.Mul(psi)
	})
}
