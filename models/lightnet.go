package models

import (
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "lightnet", Description: "LightNet (grey input, stride-4 patches, 16 dilated shifted group convs, multiplicative fusion)", DefaultWidth: 64, RefParams: 2_836_802, Multiple: onenetMultiple,
		TestWidth: 16, TestSizes: [][2]int64{{4, 4}, {36, 44}, {128, 128}, {512, 512}}, Twin: "lightnet.LightNet",
		Build: NewLightNet})
}

// LightNet is the reference's LightNet at base width w (64). The input is
// summed over its channels to one grey channel (so c.InChannels changes
// nothing in the layout), then "embed": "embed.0.conv", a 4×4 stride-4
// convolution (with bias) 1 → w, and four ShiftGroupConvs "embed.1" ..
// "embed.4" widening w → 2w → 4w → 8w → 16w (16 input and 32 output
// channels per group); "layers", 16 ShiftGroupConvs at 16w (16 channels
// per group) with OneNet's dilations, chained; fusion from the deepest
// tap down: with L = the outputs of layers 2, 6, 11, 12, 12, 13, 14, 15,
// fused = L[7], then fused = fuse[i](fused · L[i]) for i = 6 .. 0, where
// "fuse.0" .. "fuse.6" are 1×1 ShiftGroupConvs; "decode": 1×1
// ShiftGroupConvs 16w → 8w → 4w (32 input and 16 output channels per
// group) and "decode.2.conv", a 4×4 stride-4 transposed convolution →
// classes. Every ShiftGroupConv shifts by 8 channels.
//
// Width scales every channel count and keeps the channels per group, so
// the group counts scale with it (w/16 .. w/2 for embed, w for layers and
// fuse): w must be a multiple of 16. Input sides must be multiples of 4
// (the smallest input is 4×4); others give an error naming the model.
type LightNet struct {
	nn.Base
	embed  *nn.Sequential
	layers []*onenetShiftGroupConv // "layers.0" .. "layers.15"
	fuse   []*onenetShiftGroupConv // "fuse.0" .. "fuse.6"
	decode *nn.Sequential
}

// NewLightNet builds LightNet at base width c.Width.
func NewLightNet(c Config) (nn.Module, error) {
	w := c.Width
	if err := onenetWidth("lightnet", w, 64); err != nil {
		return nil, err
	}
	m := &LightNet{}
	b := &m.Base
	m.embed = nn.Register(b, "embed", nn.Seq(
		nn.NewPath("conv", nn.NewConv2d(1, w, 4, nn.Stride(4))),
		newOnenetShiftGroupConv(16, 32, w/16, 8, 1, 3),
		newOnenetShiftGroupConv(16, 32, w/8, 8, 1, 3),
		newOnenetShiftGroupConv(16, 32, w/4, 8, 1, 3),
		newOnenetShiftGroupConv(16, 32, w/2, 8, 1, 3)))
	layers := nn.Register(b, "layers", nn.NewList())
	for _, d := range onenetDilations {
		m.layers = append(m.layers, newOnenetShiftGroupConv(16, 16, w, 8, d, 3))
		layers.Append(m.layers[len(m.layers)-1])
	}
	fuse := nn.Register(b, "fuse", nn.NewList())
	for i := 0; i < len(onenetTaps)-1; i++ {
		m.fuse = append(m.fuse, newOnenetShiftGroupConv(16, 16, w, 8, 1, 1))
		fuse.Append(m.fuse[i])
	}
	m.decode = nn.Register(b, "decode", nn.Seq(
		newOnenetShiftGroupConv(32, 16, w/2, 8, 1, 1),
		newOnenetShiftGroupConv(32, 16, w/4, 8, 1, 1),
		nn.NewPath("conv", nn.NewConvTranspose2d(4*w, c.Classes, 4, nn.Stride(4)))))
	return m, nil
}

// Forward implements nn.Module: logits [N, classes, H, W].
func (m *LightNet) Forward(x *torch.Tensor) *torch.Tensor {
	if err := onenetCheck("lightnet", x); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		outs := onenetLayers(m.layers, m.embed.Forward(x.SumDims([]int64{1}, true)))
		fused := outs[onenetTaps[7]]
		for i := 6; i >= 0; i-- {
			fused = m.fuse[i].Forward(fused.Mul(outs[onenetTaps[i]]))
		}
		return m.decode.Forward(fused)
	})
}
