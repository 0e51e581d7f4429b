package models

import (
	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/models/encoder"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "deeplab", Description: "DeepLabV3+ on ResNet-101 (deep stem, output stride 16)", DefaultWidth: 64, MinTrainBatch: 2, RefParams: 59_462_946, Multiple: 16,
		TestWidth: 4, TestSizes: [][2]int64{{16, 16}, {64, 96}, {128, 128}, {512, 512}}, Twin: "deeplab.DeepLab",
		Build: func(c Config) (nn.Module, error) { return NewDeepLab(c), nil }})
}

// deeplabDecoder fuses the ASPP output with 48 channels of layer1
// features: "conv1" (1×1, no bias) and "bn1" on layer1, then "last_conv",
// conv3 256 + BN + ReLU, Dropout 0.5, conv3 256 + BN + ReLU, Dropout 0.1,
// 1×1 to the classes.
type deeplabDecoder struct {
	nn.Base
	conv1 *nn.Conv2d
	bn1   nn.Module
	last  *nn.Sequential
}

func newDeeplabDecoder(low, c, classes int64) *deeplabDecoder {
	d := &deeplabDecoder{}
	b := &d.Base
	d.conv1 = nn.Register(b, "conv1", nn.NewConv2d(low, 48, 1, nn.NoBias()))
	d.bn1 = nn.Register(b, "bn1", block.BatchNorm(48))
	var mods []nn.Module
	mods = append(mods, block.CBR(c+48, c, 3, block.NoBias())...)
	mods = append(mods, nn.NewDropout(0.5))
	mods = append(mods, block.CBR(c, c, 3, block.NoBias())...)
	mods = append(mods, nn.NewDropout(0.1), nn.NewConv2d(c, classes, 1))
	d.last = nn.Register(b, "last_conv", nn.Seq(mods...))
	return d
}

// Merge takes (x, low): the ASPP output and layer1's features.
func (d *deeplabDecoder) Merge(xs ...*torch.Tensor) *torch.Tensor {
	return nn.Frame2(xs[0], xs[1], func(x, low *torch.Tensor) *torch.Tensor {
		// The concatenation's inputs die before last_conv runs.
		cat := nn.Frame2(x, low, func(x, low *torch.Tensor) *torch.Tensor {
			low = nn.ReluInPlace(d.bn1.Forward(d.conv1.Forward(low)))
			up := torch.Resize(x, [2]int64{low.Size(2), low.Size(3)}, torch.Bilinear, true)
			return torch.Cat([]*torch.Tensor{up, low}, 1)
		})
		return d.last.Forward(cat)
	})
}

// DeepLab is DeepLabV3+: "backbone" (ResNet-101, deep stem, output stride
// 16, multigrid 1, 2, 4), "aspp" and "decoder"; logits are resized to the
// input.
//
// The backbone keeps this port's first layout (encoder.StemDeepFlat:
// conv1, bn1, conv2, bn2, conv3 with a ReLU after conv3) and resizes with
// align_corners=True, where the reference names the stem conv1.0 ...
// conv1.6, applies no ReLU after its third conv, and resizes with Jittor's
// align_corners=False; the parameters are the same.
type DeepLab struct {
	nn.Base
	backbone *encoder.ResNet
	aspp     *block.ASPP
	decoder  *deeplabDecoder
}

// NewDeepLab builds DeepLabV3+ with backbone width c.Width (64); the ASPP
// and decoder keep the reference's 256 channels.
func NewDeepLab(c Config) *DeepLab {
	m := &DeepLab{}
	b := &m.Base
	m.backbone = nn.Register(b, "backbone", encoder.NewResNet(101, encoder.InChannels(c.InChannels), encoder.Width(c.Width),
		encoder.Stem(encoder.StemDeepFlat), encoder.OutputStride(16), encoder.Multigrid(1, 2, 4), encoder.Taps(1, 4)))
	m.aspp = nn.Register(b, "aspp", block.NewASPP(32*c.Width, 256, [3]int64{6, 12, 18}))
	m.decoder = nn.Register(b, "decoder", newDeeplabDecoder(4*c.Width, 256, c.Classes))
	return m
}

// Encode returns the ASPP output (256 channels at 1/16), the feature map
// SAS pretraining uses.
func (m *DeepLab) Encode(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		return m.aspp.Forward(m.backbone.Split(x)[1])
	})
}

// Forward implements nn.Module.
func (m *DeepLab) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		// layer4's output dies with this frame, before the decoder runs.
		f := nn.FrameN([]*torch.Tensor{x}, func(xs []*torch.Tensor) []*torch.Tensor {
			f := m.backbone.Split(xs[0]) // layer1 at 1/4, layer4 at 1/16
			if len(f) != 2 {
				return f
			}
			return []*torch.Tensor{m.aspp.Forward(f[1]), f[0]}
		})
		if len(f) != 2 {
			return f[0]
		}
		out := m.decoder.Merge(f[0], f[1])
		return torch.Resize(out, [2]int64{x.Size(2), x.Size(3)}, torch.Bilinear, true)
	})
}
