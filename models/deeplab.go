package models

import (
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "deeplab", Description: "DeepLabV3+ on ResNet-101 (deep stem, output stride 16)", DefaultWidth: 64, RefParams: 59_462_946, Multiple: 16,
		TestWidth: 4, TestSizes: [][2]int64{{16, 16}, {64, 96}, {128, 128}, {512, 512}}, Twin: "deeplab.DeepLab",
		Build: func(c Config) (nn.Module, error) { return NewDeepLab(c), nil }})
}

// aspp is atrous spatial pyramid pooling: 1×1, three dilated 3×3 and image
// pooling branches of 256 channels, fused by a 1×1.
type aspp struct {
	nn.Base
	branches [4]*nn.Sequential
	pool     *nn.Sequential
	conv1    *nn.Conv2d
	bn1      *nn.BatchNorm
	dropout  *nn.Dropout
}

func newASPP(in, c int64) *aspp {
	a := &aspp{}
	b := &a.Base
	a.branches[0] = nn.Register(b, "aspp1", nn.Seq(cbr(in, c, 1, nn.NoBias())...))
	for i, d := range []int64{6, 12, 18} {
		a.branches[i+1] = nn.Register(b, "aspp"+itoa(i+2), nn.Seq(cbr(in, c, 3, nn.Padding(d), nn.Dilation(d), nn.NoBias())...))
	}
	a.pool = nn.Register(b, "global_avg_pool", nn.Seq(append([]nn.Module{nn.NewAdaptiveAvgPool2d(1, 1)}, cbr(in, c, 1, nn.NoBias())...)...))
	a.conv1 = nn.Register(b, "conv1", nn.NewConv2d(5*c, c, 1, nn.NoBias()))
	a.bn1 = nn.Register(b, "bn1", nn.NewBatchNorm2d(c))
	a.dropout = nn.Register(b, "dropout", nn.NewDropout(0.5))
	return a
}

func (a *aspp) Forward(x *torch.Tensor) *torch.Tensor {
	pooled := a.pool.Forward(x)
	g := torch.Resize(pooled, [2]int64{x.Size(2), x.Size(3)}, torch.Bilinear, true)
	parts := []*torch.Tensor{a.branches[0].Forward(x), a.branches[1].Forward(x), a.branches[2].Forward(x), a.branches[3].Forward(x), g}
	cat := torch.Cat(parts, 1)
	free(append(parts, pooled)...)
	c := a.conv1.Forward(cat)
	b := relu(a.bn1.Forward(c))
	free(cat, c)
	out := a.dropout.Forward(b)
	if out != b {
		b.Free()
	}
	return out
}

// decoder fuses ASPP output with 48 channels of layer1 features.
type decoder struct {
	nn.Base
	conv1 *nn.Conv2d
	bn1   *nn.BatchNorm
	last  *nn.Sequential
}

func newDecoder(low, c, classes int64) *decoder {
	d := &decoder{}
	b := &d.Base
	d.conv1 = nn.Register(b, "conv1", nn.NewConv2d(low, 48, 1, nn.NoBias()))
	d.bn1 = nn.Register(b, "bn1", nn.NewBatchNorm2d(48))
	var mods []nn.Module
	mods = append(mods, cbr(c+48, c, 3, nn.Padding(1), nn.NoBias())...)
	mods = append(mods, nn.NewDropout(0.5))
	mods = append(mods, cbr(c, c, 3, nn.Padding(1), nn.NoBias())...)
	mods = append(mods, nn.NewDropout(0.1), nn.NewConv2d(c, classes, 1))
	d.last = nn.Register(b, "last_conv", nn.Seq(mods...))
	return d
}

func (d *decoder) forward(x, low *torch.Tensor) *torch.Tensor {
	c := d.conv1.Forward(low)
	l := relu(d.bn1.Forward(c))
	up := torch.Resize(x, [2]int64{l.Size(2), l.Size(3)}, torch.Bilinear, true)
	cat := torch.Cat([]*torch.Tensor{up, l}, 1)
	free(c, l, up)
	out := d.last.Forward(cat)
	cat.Free()
	return out
}

// DeepLab is DeepLabV3+: backbone, aspp, decoder; logits are resized to the
// input.
type DeepLab struct {
	nn.Base
	backbone *ResNet
	aspp     *aspp
	decoder  *decoder
}

// NewDeepLab builds DeepLabV3+ with backbone width c.Width (64); the ASPP
// and decoder keep the reference's 256 channels.
func NewDeepLab(c Config) *DeepLab {
	m := &DeepLab{}
	b := &m.Base
	m.backbone = nn.Register(b, "backbone", NewResNet101(c.InChannels, c.Width))
	m.aspp = nn.Register(b, "aspp", newASPP(32*c.Width, 256))
	m.decoder = nn.Register(b, "decoder", newDecoder(4*c.Width, 256, c.Classes))
	return m
}

// Encode returns the ASPP output (256 channels at 1/16), the feature map
// SAS pretraining uses.
func (m *DeepLab) Encode(x *torch.Tensor) *torch.Tensor {
	high, _ := m.backbone.Features(x)
	return m.aspp.Forward(high)
}

// Forward implements nn.Module.
func (m *DeepLab) Forward(x *torch.Tensor) *torch.Tensor {
	high, low := m.backbone.Features(x)
	a := m.aspp.Forward(high)
	high.Free()
	out := m.decoder.forward(a, low)
	free(a, low)
	res := torch.Resize(out, [2]int64{x.Size(2), x.Size(3)}, torch.Bilinear, true)
	out.Free()
	return res
}
