package models

import (
	"fmt"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "r2", Description: "R2U-Net (recurrent residual U-Net, t=3, InstanceNorm)", DefaultWidth: 64, RefParams: 39_077_762, Multiple: 16, MinSize: 32,
		TestWidth: 4, TestSizes: [][2]int64{{32, 32}, {64, 96}, {128, 128}, {512, 512}}, Twin: "r2.R2UNet",
		Build: func(c Config) (nn.Module, error) { return NewR2UNet(c, R2Options{}), nil }})
}

// R2Options are R2U-Net's own constructor arguments.
type R2Options struct {
	// T is the number of recurrent steps of each recurrent block: its
	// convolution runs T+1 times. 0 selects the reference's 3.
	T int
}

func (o R2Options) t() int {
	if o.T <= 0 {
		return 3
	}
	return o.T
}

// r2MinSize is the smallest input side R2U-Net and R2AttU-Net take: their
// InstanceNorm needs at least 2×2 pixels at the deepest level, 1/16.
const r2MinSize = 32

// r2CheckInput rejects inputs the R2 U-Nets cannot take (sides that are not
// multiples of 16, or below 32) with an error naming the model.
func r2CheckInput(name string, x *torch.Tensor) error {
	if err := x.Err(); err != nil {
		return err
	}
	if x.Dim() != 4 {
		return fmt.Errorf("models: %s: want a 4-D input [N, C, H, W], got %v", name, x.Shape())
	}
	h, w := x.Size(2), x.Size(3)
	if h < r2MinSize || w < r2MinSize || h%16 != 0 || w%16 != 0 {
		return fmt.Errorf("models: %s takes a height and width that are multiples of 16 and at least %d (its InstanceNorm needs 2×2 pixels at 1/16), got %dx%d",
			name, r2MinSize, h, w)
	}
	return nil
}

// r2CBR is conv3 (with bias) + InstanceNorm (no affine parameters) + ReLU,
// the R2 U-Nets' unit.
func r2CBR(in, out int64) []nn.Module {
	return block.CBR(in, out, 3, block.Norm(block.InstanceNorm))
}

// r2RecurrentBlock is the reference's Recurrent_block: one convolution
// unit "conv" (conv3 + InstanceNorm + ReLU, keys "conv.0.weight",
// "conv.0.bias") applied t+1 times, x1 = f(x) and then x1 = f(x + x1)
// t times.
type r2RecurrentBlock struct {
	nn.Base
	conv *nn.Sequential
	t    int
}

func newR2RecurrentBlock(c int64, t int) *r2RecurrentBlock {
	b := &r2RecurrentBlock{t: t}
	b.conv = nn.Register(&b.Base, "conv", nn.Seq(r2CBR(c, c)...))
	return b
}

func (b *r2RecurrentBlock) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		x1 := b.conv.Forward(x)
		for i := 0; i < b.t; i++ {
			x1 = b.conv.Forward(x.Add(x1))
		}
		return x1
	})
}

// r2RRCNN is the reference's RRCNN_block: "Conv_1x1" maps in → out
// channels, "RCNN" (two recurrent blocks, "RCNN.0", "RCNN.1") refines
// that, and the two are added. RCNN is registered first, as in the
// reference, so its keys come first.
type r2RRCNN struct {
	nn.Base
	rcnn    *nn.Sequential
	conv1x1 *nn.Conv2d
}

func newR2RRCNN(in, out int64, t int) *r2RRCNN {
	b := &r2RRCNN{}
	b.rcnn = nn.Register(&b.Base, "RCNN", nn.Seq(newR2RecurrentBlock(out, t), newR2RecurrentBlock(out, t)))
	b.conv1x1 = nn.Register(&b.Base, "Conv_1x1", nn.NewConv2d(in, out, 1))
	return b
}

func (b *r2RRCNN) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		x = b.conv1x1.Forward(x)
		return x.Add(b.rcnn.Forward(x))
	})
}

// r2UpConv is the reference's up_conv: nearest ×2, then conv3 +
// InstanceNorm + ReLU, as "up" ("up.1.weight").
type r2UpConv struct {
	nn.Base
	seq *nn.Sequential
}

func newR2UpConv(in, out int64) *r2UpConv {
	u := &r2UpConv{}
	u.seq = nn.Register(&u.Base, "up", nn.Seq(append([]nn.Module{nn.NewUpsample(2, torch.Nearest)}, r2CBR(in, out)...)...))
	return u
}

func (u *r2UpConv) Forward(x *torch.Tensor) *torch.Tensor { return u.seq.Forward(x) }

// r2Encoder is the R2 U-Nets' shared encoder: RRCNN1..5 at widths
// w, 2w, 4w, 8w, 16w with 2×2 max-pooling between them.
type r2Encoder struct {
	pool  *nn.MaxPool2d
	rrcnn [5]*r2RRCNN
}

// register adds "Maxpool" and RRCNN1..5 to b, in the reference's order
// (its unused "Upsample" has no keys and is left out).
func (e *r2Encoder) register(b *nn.Base, in, w int64, t int) [5]int64 {
	widths := [5]int64{w, 2 * w, 4 * w, 8 * w, 16 * w}
	e.pool = nn.Register(b, "Maxpool", nn.NewMaxPool2d(2))
	for i := range e.rrcnn {
		e.rrcnn[i] = nn.Register(b, fmt.Sprintf("RRCNN%d", i+1), newR2RRCNN(in, widths[i], t))
		in = widths[i]
	}
	return widths
}

// skips returns the five encoder levels, full resolution first.
func (e *r2Encoder) skips(x *torch.Tensor) [5]*torch.Tensor {
	var s [5]*torch.Tensor
	h := x
	for i, r := range e.rrcnn {
		if i > 0 {
			h = e.pool.Forward(h)
		}
		h = r.Forward(h)
		s[i] = h
	}
	return s
}

// R2UNet is R2U-Net (Alom et al.) as the reference builds it: an encoder of
// recurrent residual blocks (RRCNN1..5: a 1×1 convolution, then two
// recurrent blocks whose conv3 + InstanceNorm + ReLU runs t+1 times, plus a
// residual), a decoder of Up5..2 (nearest ×2 + conv3 + InstanceNorm + ReLU)
// and Up_RRCNN5..2 on the concatenation [skip, up], and the 1×1 head
// Conv_1x1. The InstanceNorms have no affine parameters, so the model has
// no buffers.
//
// State-dict keys follow the reference's attribute names:
// "RRCNN1.RCNN.0.conv.0.weight", "RRCNN1.Conv_1x1.weight",
// "Up5.up.1.weight", "Up_RRCNN5.RCNN.1.conv.0.bias", "Conv_1x1.weight".
//
// Input sides must be multiples of 16 and at least 32: below that the
// deepest map is 1×1, where InstanceNorm is undefined (PyTorch refuses it);
// Forward returns an error naming the sizes it takes.
type R2UNet struct {
	nn.Base
	enc      r2Encoder
	ups      [4]*r2UpConv
	upRRCNNs [4]*r2RRCNN
	head     *nn.Conv2d
}

// NewR2UNet builds an R2U-Net of base width c.Width (64 in the reference;
// 39,077,762 parameters with 3 input channels and 2 classes).
func NewR2UNet(c Config, o R2Options) *R2UNet {
	m := &R2UNet{}
	b := &m.Base
	w := m.enc.register(b, c.InChannels, c.Width, o.t())
	for k := 0; k < 4; k++ { // k=0 is level 5, the deepest
		lvl := 5 - k
		m.ups[k] = nn.Register(b, fmt.Sprintf("Up%d", lvl), newR2UpConv(w[4-k], w[3-k]))
		m.upRRCNNs[k] = nn.Register(b, fmt.Sprintf("Up_RRCNN%d", lvl), newR2RRCNN(w[4-k], w[3-k], o.t()))
	}
	m.head = nn.Register(b, "Conv_1x1", nn.NewConv2d(w[0], c.Classes, 1))
	return m
}

// Forward implements nn.Module: logits [N, classes, H, W].
func (m *R2UNet) Forward(x *torch.Tensor) *torch.Tensor {
	if err := r2CheckInput("r2", x); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		s := m.enc.skips(x)
		d := s[4]
		for k := 0; k < 4; k++ {
			d = m.upRRCNNs[k].Forward(torch.Cat([]*torch.Tensor{s[3-k], m.ups[k].Forward(d)}, 1))
		}
		return m.head.Forward(d)
	})
}
