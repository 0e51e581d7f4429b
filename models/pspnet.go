package models

import (
	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/models/encoder"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// pspnetMinSize is PSPNet's smallest input side: the 6×6 bin of its pyramid
// needs a deepest map of at least 6×6, at 1/16.
const pspnetMinSize = 96

func init() {
	Register(Spec{Name: "pspnet", Description: "PSPNet (pyramid pooling, bins 1/2/3/6) on ResNet-101 (deep stem, output stride 16)", DefaultWidth: 64, MinTrainBatch: 2, RefParams: 65_698_498,
		Multiple: 16, MinSize: pspnetMinSize,
		TestWidth: 4, TestSizes: [][2]int64{{96, 96}, {128, 128}, {192, 288}, {512, 512}}, Twin: "pspnet.PSPNet",
		Build: func(c Config) (nn.Module, error) { return NewPSPNet(c), nil }})
}

// PSPNet is the reference's PSPNet (model/PSPNet.py) on its ResNet-101:
// "backbone" (deep stem, output stride 16, layer4 dilated 2, 4, 8:
// encoder.StemDeep, keys "backbone.conv1.0.weight",
// "backbone.layer4.2.bn3.running_var"); "layer5a".."layer5d", the
// pyramid's bins 1, 2, 3, 6 (block.PyramidPool: adaptive average pooling,
// 1×1 conv 32w → 8w without bias, BatchNorm, ReLU, bilinear back to the
// map's size; keys "layer5a.conv.1.weight"); the concatenation [layer4,
// 5a, 5b, 5c, 5d] of 64w channels into "final_conv": conv3 → 8w (no
// bias), BatchNorm, ReLU, Dropout 0.3, 1×1 conv (with bias) to the classes
// ("final_conv.4.bias"); a bilinear resize to the input (align_corners
// False, Jittor's).
//
// w is the width, the backbone's base width (64 in the reference: layer4
// has 2048 channels, the bins 512 each). Input sides are multiples of 16
// and at least 96 (the 6×6 bin needs a 6×6 map at 1/16). Adaptive pooling
// uses libtorch's windows, which equal Jittor's where the 1/16 map is a
// multiple of 6 pixels (96, 192, 288, ...) and differ elsewhere (Jittor
// pools with stride ⌊H/bin⌋ and kernel H − (bin−1)·stride).
type PSPNet struct {
	nn.Base
	backbone *encoder.ResNet
	pools    [4]*block.PyramidPool
	final    *nn.Sequential
}

// NewPSPNet builds PSPNet of width c.Width (64 in the reference;
// 65,698,498 parameters with 3 input channels and 2 classes).
func NewPSPNet(c Config) *PSPNet {
	w := c.Width
	m := &PSPNet{}
	b := &m.Base
	m.backbone = nn.Register(b, "backbone", encoder.NewResNet(101, encoder.InChannels(c.InChannels), encoder.Width(w),
		encoder.Stem(encoder.StemDeep), encoder.OutputStride(16), encoder.Multigrid(1, 2, 4), encoder.Taps(4)))
	for i, bin := range []int64{1, 2, 3, 6} {
		m.pools[i] = nn.Register(b, "layer5"+string(rune('a'+i)), block.NewPyramidPool(32*w, 8*w, bin))
	}
	mods := block.CBR(64*w, 8*w, 3, block.NoBias())
	mods = append(mods, nn.NewDropout(0.3), nn.NewConv2d(8*w, c.Classes, 1))
	m.final = nn.Register(b, "final_conv", nn.Seq(mods...))
	return m
}

// Forward implements nn.Module: logits [N, classes, H, W] for an input
// whose sides are multiples of 16 and at least 96.
func (m *PSPNet) Forward(x *torch.Tensor) *torch.Tensor {
	if err := checkInputSides("pspnet", x, 16, pspnetMinSize); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		f := m.backbone.Split(x)[0] // layer4, 32w channels at 1/16
		out := m.final.Forward(block.Pyramid(f, m.pools[:]...))
		return torch.Resize(out, [2]int64{x.Size(2), x.Size(3)}, torch.Bilinear, false)
	})
}
