package models

import (
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "attunet", Description: "Attention U-Net (Oktay et al.)", DefaultWidth: 64, RefParams: 34_878_638, Multiple: 16,
		TestWidth: 4, TestSizes: [][2]int64{{16, 16}, {64, 96}, {128, 128}, {512, 512}}, Twin: "attunet.AttUNet",
		Build: func(c Config) (nn.Module, error) { return NewAttUNet(c), nil }})
}

// convBlock is (conv3 + BN + ReLU) × 2 as "conv".
type convBlock struct {
	nn.Base
	seq *nn.Sequential
}

func newConvBlock(in, out int64) *convBlock {
	b := &convBlock{}
	b.seq = nn.Register(&b.Base, "conv", doubleCBR(in, out, out))
	return b
}

func (b *convBlock) Forward(x *torch.Tensor) *torch.Tensor { return b.seq.Forward(x) }

// upConv is nearest ×2 then conv3 + BN + ReLU, as "up".
type upConv struct {
	nn.Base
	seq *nn.Sequential
}

func newUpConv(in, out int64) *upConv {
	u := &upConv{}
	u.seq = nn.Register(&u.Base, "up", nn.Seq(append([]nn.Module{nn.NewUpsample(2, torch.Nearest)}, cbr(in, out, 3, nn.Padding(1))...)...))
	return u
}

func (u *upConv) Forward(x *torch.Tensor) *torch.Tensor { return u.seq.Forward(x) }

// attentionGate weighs skip features x by ψ(relu(W_g g + W_x x)).
type attentionGate struct {
	nn.Base
	wg, wx, psi *nn.Sequential
}

func newAttentionGate(fg, fl, fint int64) *attentionGate {
	a := &attentionGate{}
	a.wg = nn.Register(&a.Base, "W_g", nn.Seq(nn.NewConv2d(fg, fint, 1), nn.NewBatchNorm2d(fint)))
	a.wx = nn.Register(&a.Base, "W_x", nn.Seq(nn.NewConv2d(fl, fint, 1), nn.NewBatchNorm2d(fint)))
	a.psi = nn.Register(&a.Base, "psi", nn.Seq(nn.NewConv2d(fint, 1, 1), nn.NewBatchNorm2d(1), nn.Sigmoid()))
	return a
}

// Merge implements nn.Merger: the gating signal g, then the skip x.
func (a *attentionGate) Merge(xs ...*torch.Tensor) *torch.Tensor {
	return nn.Frame2(xs[0], xs[1], func(g, x *torch.Tensor) *torch.Tensor {
		return x.Mul(a.psi.Forward(nn.ReluInPlace(a.wg.Forward(g).Add(a.wx.Forward(x)))))
	})
}

// AttUNet is the Attention U-Net: Conv1..5 encoder, Up5..2 + Att5..2 +
// Up_conv5..2 decoder, Conv_1x1 head.
type AttUNet struct {
	nn.Base
	pool    *nn.MaxPool2d
	enc     [5]*convBlock
	ups     [4]*upConv
	atts    [4]*attentionGate
	upConvs [4]*convBlock
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
		m.enc[i] = nn.Register(b, "Conv"+itoa(i+1), newConvBlock(in, w[i]))
		in = w[i]
	}
	for k := 0; k < 4; k++ { // k=0 is level 5 (deepest)
		lvl := 5 - k
		hi, lo := w[4-k], w[3-k]
		fint := lo / 2
		m.ups[k] = nn.Register(b, "Up"+itoa(lvl), newUpConv(hi, lo))
		m.atts[k] = nn.Register(b, "Att"+itoa(lvl), newAttentionGate(lo, lo, fint))
		m.upConvs[k] = nn.Register(b, "Up_conv"+itoa(lvl), newConvBlock(hi, lo))
	}
	m.head = nn.Register(b, "Conv_1x1", nn.NewConv2d(w[0], c.Classes, 1))
	return m
}

// Forward implements nn.Module.
func (m *AttUNet) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		var skips [5]*torch.Tensor
		h := x
		for i, e := range m.enc {
			if i > 0 {
				h = m.pool.Forward(h)
			}
			h = e.Forward(h)
			skips[i] = h
		}
		d := skips[4]
		for k := 0; k < 4; k++ {
			up := m.ups[k].Forward(d)
			s := m.atts[k].Merge(up, skips[3-k])
			d = m.upConvs[k].Forward(torch.Cat([]*torch.Tensor{s, up}, 1))
		}
		return m.head.Forward(d)
	})
}
