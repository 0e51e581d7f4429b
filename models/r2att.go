package models

import (
	"fmt"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "r2att", Description: "R2AttU-Net (R2U-Net with attention gates)", DefaultWidth: 64, RefParams: 39_427_366, Multiple: 16, MinSize: 32,
		TestWidth: 4, TestSizes: [][2]int64{{32, 32}, {64, 96}, {128, 128}, {512, 512}}, Twin: "r2att.R2AttUNet",
		Build: func(c Config) (nn.Module, error) { return NewR2AttUNet(c, R2Options{}), nil }})
}

// R2AttUNet is R2AttU-Net as the reference builds it: R2UNet's encoder and
// decoder (RRCNN1..5, Up5..2, Up_RRCNN5..2, Conv_1x1) with an Attention
// U-Net gate Att5..2 on each skip, gated by the up-sampled decoder map;
// Up_RRCNN<k> takes the concatenation [gated skip, up]. The gates' norms are
// InstanceNorms without affine parameters, like the rest of the model, so
// it has no buffers.
//
// State-dict keys are R2UNet's plus "Att5.W_g.0.weight", "Att5.W_x.0.bias",
// "Att5.psi.0.weight" ..., registered after Up<k> and before Up_RRCNN<k>,
// as in the reference.
//
// Input sides must be multiples of 16 and at least 32, as R2UNet's.
type R2AttUNet struct {
	nn.Base
	enc      r2Encoder
	ups      [4]*r2UpConv
	atts     [4]*block.AttentionGate
	upRRCNNs [4]*r2RRCNN
	head     *nn.Conv2d
}

// NewR2AttUNet builds an R2AttU-Net of base width c.Width (64 in the
// reference; 39,427,366 parameters with 3 input channels and 2 classes).
func NewR2AttUNet(c Config, o R2Options) *R2AttUNet {
	m := &R2AttUNet{}
	b := &m.Base
	w := m.enc.register(b, c.InChannels, c.Width, o.t())
	for k := 0; k < 4; k++ { // k=0 is level 5, the deepest
		lvl := 5 - k
		hi, lo := w[4-k], w[3-k]
		m.ups[k] = nn.Register(b, fmt.Sprintf("Up%d", lvl), newR2UpConv(hi, lo))
		m.atts[k] = nn.Register(b, fmt.Sprintf("Att%d", lvl), block.NewAttentionGate(lo, lo, lo/2, block.Norm(block.InstanceNorm)))
		m.upRRCNNs[k] = nn.Register(b, fmt.Sprintf("Up_RRCNN%d", lvl), newR2RRCNN(hi, lo, o.t()))
	}
	m.head = nn.Register(b, "Conv_1x1", nn.NewConv2d(w[0], c.Classes, 1))
	return m
}

// Forward implements nn.Module: logits [N, classes, H, W].
func (m *R2AttUNet) Forward(x *torch.Tensor) *torch.Tensor {
	if err := r2CheckInput("r2att", x); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		s := m.enc.skips(x)
		d := s[4]
		for k := 0; k < 4; k++ {
			up := m.ups[k].Forward(d)
			d = m.upRRCNNs[k].Forward(torch.Cat([]*torch.Tensor{m.atts[k].Merge(up, s[3-k]), up}, 1))
		}
		return m.head.Forward(d)
	})
}
