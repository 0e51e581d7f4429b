package models

import (
	"strconv"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	// TestWidth is 16, not smaller: each SE squeezes its channels 16 times
	// and the shallowest have the base width.
	Register(Spec{Name: "scseunet", Description: "U-Net with scSE attention after every encoder and decoder block", DefaultWidth: 64, RefParams: 17_359_111, Multiple: 16,
		TestWidth: 16, TestSizes: [][2]int64{{16, 16}, {64, 96}, {128, 128}, {512, 512}}, Twin: "scseunet.SCSEUNet",
		Build: func(c Config) (nn.Module, error) { return NewSCSEUNet(c, SCSEOptions{}), nil }})
}

// SCSEOptions are the SCSE U-Net's own constructor arguments.
type SCSEOptions struct {
	// Gate is the scSE gating: block.Sigmoid (the zero value) is the
	// published gate; block.SoftmaxAll is the reference's softmax without a
	// dimension, which normalises over the whole tensor, batch included, so
	// that every weight shrinks with the batch and the map size (a likely
	// cause of the reference's collapse to background).
	Gate block.Gating
}

// scseunetUp is the reference's Up: "up" doubles x bilinearly
// (align_corners False), "conv" is DoubleConv(in, out, in/2) on the
// concatenation [skip, up], "spa_cha_gate" an scSE on its output.
type scseunetUp struct {
	nn.Base
	up   *nn.Upsample
	conv *block.DoubleConv
	gate *block.SCSE
}

func newSCSEUNetUp(in, out int64, g block.Gating) *scseunetUp {
	u := &scseunetUp{}
	u.up = nn.Register(&u.Base, "up", nn.NewUpsample(2, torch.Bilinear))
	u.conv = nn.Register(&u.Base, "conv", block.NewDoubleConv(in, out, in/2))
	u.gate = nn.Register(&u.Base, "spa_cha_gate", block.NewSCSE(out, block.Gate(g)))
	return u
}

// Merge implements nn.Merger: the up-path x, then the skip.
func (u *scseunetUp) Merge(xs ...*torch.Tensor) *torch.Tensor {
	return nn.Frame2(xs[0], xs[1], func(x, skip *torch.Tensor) *torch.Tensor {
		up := block.PadTo(u.up.Forward(x), skip)
		return u.gate.Forward(u.conv.Forward(torch.Cat([]*torch.Tensor{skip, up}, 1)))
	})
}

// SCSEUNet is the reference's SCSEUnet: the bilinear U-Net of unet's
// widths with an scSE module (concurrent channel and spatial
// squeeze-excitation, their outputs summed) after every encoder
// DoubleConv and every decoder Up.
//
// Keys follow the reference's attributes: encoder stages
// "conv_encode1".."conv_encode4" and "bottleneck" are nn.Sequentials of a
// DoubleConv and an scSE ("conv_encode1.0.double_conv.0.weight",
// "conv_encode1.1.spatial_gate.linear_1.weight"); pooling
// "conv_pool1".."conv_pool4" (no keys); decoders
// "conv_decode4".."conv_decode1" with "up", "conv" and "spa_cha_gate"
// ("conv_decode4.spa_cha_gate.channel_gate.conv.weight"); head
// "outc.conv". The reference's names swap the published ones:
// "spatial_gate" is the channel SE (Linear layers, reduction 16) and
// "channel_gate" the per-pixel 1×1 convolution.
//
// The gates are sigmoids, as published, unless SCSEOptions.Gate selects
// the reference's whole-tensor softmax. Input sides must be multiples of
// 16; the base width must be at least 16 (each SE squeezes 16 times).
type SCSEUNet struct {
	nn.Base
	enc  [5]*nn.Sequential // conv_encode1..4, bottleneck
	pool [4]*nn.MaxPool2d
	dec  [4]*scseunetUp // conv_decode4..1
	outc *nn.Path
}

// NewSCSEUNet builds an SCSE U-Net of base width c.Width (64 in the
// reference; 17,359,111 parameters with 3 input channels and 2 classes).
func NewSCSEUNet(c Config, o SCSEOptions) *SCSEUNet {
	w := c.Width
	m := &SCSEUNet{}
	b := &m.Base
	widths := [5]int64{w, 2 * w, 4 * w, 8 * w, 8 * w}
	in := c.InChannels
	for i, out := range widths {
		stage := nn.Seq(block.NewDoubleConv(in, out, 0), block.NewSCSE(out, block.Gate(o.Gate)))
		if i < 4 {
			n := strconv.Itoa(i + 1)
			m.enc[i] = nn.Register(b, "conv_encode"+n, stage)
			m.pool[i] = nn.Register(b, "conv_pool"+n, nn.NewMaxPool2d(2))
		} else {
			m.enc[i] = nn.Register(b, "bottleneck", stage)
		}
		in = out
	}
	for k, io := range [4][2]int64{{16 * w, 4 * w}, {8 * w, 2 * w}, {4 * w, w}, {2 * w, w}} {
		m.dec[k] = nn.Register(b, "conv_decode"+strconv.Itoa(4-k), newSCSEUNetUp(io[0], io[1], o.Gate))
	}
	m.outc = nn.Register(b, "outc", nn.NewPath("conv", nn.NewConv2d(w, c.Classes, 1)))
	return m
}

// Forward implements nn.Module: logits [N, classes, H, W].
func (m *SCSEUNet) Forward(x *torch.Tensor) *torch.Tensor {
	if err := checkInputSides("scseunet", x, 16, 16); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		var skips [4]*torch.Tensor
		h := x
		for i := range m.pool {
			skips[i] = m.enc[i].Forward(h)
			h = m.pool[i].Forward(skips[i])
		}
		h = m.enc[4].Forward(h)
		for k, d := range m.dec {
			h = d.Merge(h, skips[3-k])
		}
		return m.outc.Forward(h)
	})
}
