package models

import (
	"strconv"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "simple", Description: "SimpleUNet (GroupNorm, multiplicative skips, stride-2 stem and head)", DefaultWidth: 64, RefParams: 3_014_594, Multiple: 16,
		TestWidth: 8, TestSizes: [][2]int64{{16, 16}, {64, 96}, {128, 128}, {512, 512}}, Twin: "simple.SimpleUNet",
		Build: func(c Config) (nn.Module, error) { return NewSimpleUNet(c), nil }})
}

// simpleBlock is the reference's SimpleBlock, as "block": conv3 without
// bias, the reference's NormLayer (GroupNorm, keys "block.1.norm.weight"),
// ReLU.
func simpleBlock(in, out int64) *nn.Path {
	return nn.NewPath("block", nn.Seq(block.CBR(in, out, 3, block.NoBias(), block.Norm(block.NormLayer))...))
}

// simpleUp is the reference's Up: "up", a ConvTranspose 2×2 stride 2
// without bias to the skip's width, multiplied (not concatenated) with the
// skip, then "conv", a SimpleBlock.
type simpleUp struct {
	nn.Base
	up   *nn.ConvTranspose2d
	conv *nn.Path
}

func newSimpleUp(in, skip, out int64) *simpleUp {
	u := &simpleUp{}
	u.up = nn.Register(&u.Base, "up", nn.NewConvTranspose2d(in, skip, 2, nn.Stride(2), nn.NoBias()))
	u.conv = nn.Register(&u.Base, "conv", simpleBlock(skip, out))
	return u
}

// Merge implements nn.Merger: the up-path x, then the skip.
func (u *simpleUp) Merge(xs ...*torch.Tensor) *torch.Tensor {
	return nn.Frame2(xs[0], xs[1], func(x, skip *torch.Tensor) *torch.Tensor {
		return u.conv.Forward(u.up.Forward(x).Mul(skip))
	})
}

// SimpleUNet is the reference's SimpleUNet: "inc.conv", a 2×2 stride-2
// convolution (with bias) to the base width at 1/2; "down1".."down3"
// ("maxpool_conv": 2×2 max-pooling, then a SimpleBlock, conv3 without bias
// + the reference's GroupNorm rule + ReLU) to 2, 4 and 8 times the width;
// "up1".."up3" (ConvTranspose 2×2 without bias to the skip's width, times
// the skip, then a SimpleBlock) back to 1/2; "outc.conv", a ConvTranspose
// 2×2 stride 2 (with bias) to the classes at full size, gives the logits.
//
// GroupNorm groups follow the reference's NormLayer from each layer's
// channel count (32 from 512 channels down to 1 below 64), so a smaller
// width has fewer groups. Keys: "down1.maxpool_conv.1.block.0.weight",
// "down1.maxpool_conv.1.block.1.norm.weight", "up1.up.weight",
// "up1.conv.block.1.norm.bias", "outc.conv.bias". The reference's own
// docstring states 7,082,178 parameters, which its constructor does not
// give: it builds 3,014,594. Input sides must be multiples of 16.
type SimpleUNet struct {
	nn.Base
	inc  *nn.Path
	down [3]*nn.Path // each "maxpool_conv"
	up   [3]*simpleUp
	outc *nn.Path
}

// NewSimpleUNet builds a SimpleUNet of base width c.Width (64 in the
// reference; 3,014,594 parameters with 3 input channels and 2 classes).
func NewSimpleUNet(c Config) *SimpleUNet {
	w := c.Width
	m := &SimpleUNet{}
	b := &m.Base
	m.inc = nn.Register(b, "inc", nn.NewPath("conv", nn.NewConv2d(c.InChannels, w, 2, nn.Stride(2))))
	for i := range m.down {
		lo, hi := w<<i, w<<(i+1)
		m.down[i] = nn.Register(b, "down"+strconv.Itoa(i+1), nn.NewPath("maxpool_conv", nn.Seq(nn.NewMaxPool2d(2), simpleBlock(lo, hi))))
	}
	for k := range m.up {
		hi, lo := w<<(3-k), w<<(2-k)
		m.up[k] = nn.Register(b, "up"+strconv.Itoa(k+1), newSimpleUp(hi, lo, lo))
	}
	m.outc = nn.Register(b, "outc", nn.NewPath("conv", nn.NewConvTranspose2d(w, c.Classes, 2, nn.Stride(2))))
	return m
}

// Forward implements nn.Module: logits [N, classes, H, W].
func (m *SimpleUNet) Forward(x *torch.Tensor) *torch.Tensor {
	if err := checkInputSides("simple", x, 16, 16); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		var skips [3]*torch.Tensor // at 1/2, 1/4, 1/8
		h := m.inc.Forward(x)
		for i, d := range m.down {
			skips[i] = h
			h = d.Forward(h)
		}
		for k, u := range m.up {
			h = u.Merge(h, skips[2-k])
		}
		return m.outc.Forward(h)
	})
}
