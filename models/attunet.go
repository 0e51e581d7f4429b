package models

import (
	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "attunet", Description: "Attention U-Net (Oktay et al.)", DefaultWidth: 64, RefParams: 34_878_638, Multiple: 16,
		TestWidth: 4, TestSizes: [][2]int64{{16, 16}, {64, 96}, {128, 128}, {512, 512}}, Twin: "attunet.AttUNet",
		Build: func(c Config) (nn.Module, error) { return NewAttUNet(c), nil }})
}

// attunetConv is (conv3 + BN + ReLU) × 2 as "conv".
func attunetConv(in, out int64) *nn.Path {
	return nn.NewPath("conv", nn.Seq(block.DoubleCBR(in, out, out)...))
}

// attunetUp is nearest ×2 then conv3 + BN + ReLU, as "up".
func attunetUp(in, out int64) *nn.Path {
	return nn.NewPath("up", nn.Seq(append([]nn.Module{nn.NewUpsample(2, torch.Nearest)}, block.CBR(in, out, 3)...)...))
}

// AttUNet is the Attention U-Net: Conv1..5 encoder, Up5..2 + Att5..2 +
// Up_conv5..2 decoder, Conv_1x1 head.
type AttUNet struct {
	nn.Base
	pool    *nn.MaxPool2d
	enc     [5]*nn.Path
	ups     [4]*nn.Path
	atts    [4]*block.AttentionGate
	upConvs [4]*nn.Path
	head    *nn.Conv2d
}

// NewAttUNet builds an Attention U-Net of base width c.Width (64).
func NewAttUNet(c Config) *AttUNet {
	m := &AttUNet{}
	b := &m.Base
	w := []int64{c.Width, 2 * c.Width, 4 * c.Width, 8 * c.Width, 16 * c.Width}
	m.pool = nn.Register(b, "Maxpool", nn.NewMaxPool2d(2))
	in := c.InChannels
	for i := range m.enc {
		m.enc[i] = nn.Register(b, "Conv"+itoa(i+1), attunetConv(in, w[i]))
		in = w[i]
	}
	for k := 0; k < 4; k++ { // k=0 is level 5 (deepest)
		lvl := 5 - k
		hi, lo := w[4-k], w[3-k]
		fint := lo / 2
		m.ups[k] = nn.Register(b, "Up"+itoa(lvl), attunetUp(hi, lo))
		m.atts[k] = nn.Register(b, "Att"+itoa(lvl), block.NewAttentionGate(lo, lo, fint))
		m.upConvs[k] = nn.Register(b, "Up_conv"+itoa(lvl), attunetConv(hi, lo))
	}
	m.head = nn.Register(b, "Conv_1x1", nn.NewConv2d(w[0], c.Classes, 1))
	return m
}

// Forward implements nn.Module.
func (m *AttUNet) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		return m.head.Forward(m.level(0, x))
	})
}

// level runs the U from encoder level i (Conv1..Conv5) down and back up to
// the same level. Frames make lifetimes follow the figure: the deeper
// result dies once up-sampled, the skip and the gated features once
// concatenated, so the level's convolutions run with only the
// concatenation alive.
func (m *AttUNet) level(i int, x *torch.Tensor) *torch.Tensor {
	encode := func(x *torch.Tensor) *torch.Tensor {
		if i > 0 {
			x = m.pool.Forward(x)
		}
		return m.enc[i].Forward(x)
	}
	if i == len(m.enc)-1 {
		return nn.Frame(x, encode)
	}
	k := len(m.enc) - 2 - i // ups, atts and upConvs run deepest first
	return m.upConvs[k].Forward(nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		skip := nn.Frame(x, encode) // the pooled input dies here
		up := nn.Frame(skip, func(skip *torch.Tensor) *torch.Tensor { return m.ups[k].Forward(m.level(i+1, skip)) })
		return torch.Cat([]*torch.Tensor{m.atts[k].Merge(up, skip), up}, 1)
	}))
}
