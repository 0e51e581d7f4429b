package models

import (
	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "unet", Description: "U-Net (milesial layout, bilinear up-sampling)", DefaultWidth: 64, RefParams: 17_267_458, Multiple: 16,
		TestWidth: 4, TestSizes: [][2]int64{{16, 16}, {64, 96}, {128, 128}, {512, 512}}, Twin: "unet.UNet",
		Build: func(c Config) (nn.Module, error) { return NewUNet(c), nil }})
}

// unetDown is max-pooling then DoubleConv, as "maxpool_conv".
func unetDown(in, out int64) *nn.Path {
	return nn.NewPath("maxpool_conv", nn.Seq(nn.NewMaxPool2d(2), block.NewDoubleConv(in, out, out)))
}

// UNet is milesial's U-Net with bilinear up-sampling (align_corners True):
// inc, down1..4, up1..4 (block.Up: up-sample, pad to the skip, concatenate
// [skip, up], DoubleConv(in, out, in/2)), outc.
type UNet struct {
	nn.Base
	inc                        *block.DoubleConv
	down1, down2, down3, down4 *nn.Path
	up1, up2, up3, up4         *block.Up
	outc                       *nn.Path // the 1×1 classifier, as "outc.conv"
}

// NewUNet builds a U-Net of base width c.Width (64 in the reference).
func NewUNet(c Config) *UNet {
	w := c.Width
	m := &UNet{}
	b := &m.Base
	up := func(in, out int64) *block.Up { return block.NewUp(in, out, in/2, block.AlignCorners()) }
	m.inc = nn.Register(b, "inc", block.NewDoubleConv(c.InChannels, w, w))
	m.down1 = nn.Register(b, "down1", unetDown(w, 2*w))
	m.down2 = nn.Register(b, "down2", unetDown(2*w, 4*w))
	m.down3 = nn.Register(b, "down3", unetDown(4*w, 8*w))
	m.down4 = nn.Register(b, "down4", unetDown(8*w, 8*w))
	m.up1 = nn.Register(b, "up1", up(16*w, 4*w))
	m.up2 = nn.Register(b, "up2", up(8*w, 2*w))
	m.up3 = nn.Register(b, "up3", up(4*w, w))
	m.up4 = nn.Register(b, "up4", up(2*w, w))
	m.outc = nn.Register(b, "outc", nn.NewPath("conv", nn.NewConv2d(w, c.Classes, 1)))
	return m
}

// Encode runs the encoder to down4 (512 channels at the reference width),
// the feature map SAS pretraining uses.
func (m *UNet) Encode(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		return m.down4.Forward(m.down3.Forward(m.down2.Forward(m.down1.Forward(m.inc.Forward(x)))))
	})
}

// Forward implements nn.Module: logits [N, classes, H, W].
func (m *UNet) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		return m.outc.Forward(m.level(0, x))
	})
}

// level runs the U from encoder level i (inc, down1..down4) down and back
// up to the same level, in a frame: a level's skip and what the levels
// below made die as soon as its up block has used them.
func (m *UNet) level(i int, x *torch.Tensor) *torch.Tensor {
	enc := []nn.Module{m.inc, m.down1, m.down2, m.down3, m.down4}
	dec := []*block.Up{m.up4, m.up3, m.up2, m.up1}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		skip := enc[i].Forward(x)
		if i == len(dec) {
			return skip
		}
		return dec[i].Merge(m.level(i+1, skip), skip)
	})
}
