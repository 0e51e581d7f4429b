package models

import (
	"strconv"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/models/encoder"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "hardnet", Description: "HarD-MSEG (HarDNet-68, RFB blocks, PraNet partial decoder at 1/8)", DefaultWidth: 32, RefParams: 17_423_934, Multiple: 32,
		TestWidth: 4, TestSizes: [][2]int64{{32, 32}, {64, 96}, {128, 128}, {512, 512}}, Twin: "hardnet.HarDMSEG",
		Build: func(c Config) (nn.Module, error) { return NewHarDMSEG(c), nil }})
}

// hardnetBasicConv is RFB's BasicConv2d: "conv" (kh×kw, no bias) and "bn"
// (BatchNorm), with no ReLU, as the reference's forward skips its relu.
func hardnetBasicConv(in, out, kh, kw, ph, pw, dilation int64) *block.ConvNormAct {
	return block.NewConvNormAct(in, out, kh, block.Kernel(kh, kw), block.Padding(ph, pw), block.Dilation(dilation),
		block.NoBias(), block.Act(nil))
}

// hardnetConv3 is a size-keeping conv3 BasicConv2d.
func hardnetConv3(in, out int64) *block.ConvNormAct { return hardnetBasicConv(in, out, 3, 3, 1, 1, 1) }

// hardnetRFB is PraNet's RFB_modified on in channels to c, shared by
// hardnet and hardalter: "branch0", a 1×1 BasicConv2d; "branch1".."branch3",
// a 1×1, a 1×k, a k×1 and a conv3 of dilation k for k = 3, 5, 7
// ("branch2.3.conv.weight"); "conv_cat", a conv3 4c → c on their
// concatenation; "conv_res", a 1×1 shortcut; the output is
// ReLU(conv_cat + conv_res).
type hardnetRFB struct {
	nn.Base
	branches [4]*nn.Sequential
	convCat  *block.ConvNormAct
	convRes  *block.ConvNormAct
}

func newHarDNetRFB(in, c int64) *hardnetRFB {
	r := &hardnetRFB{}
	b := &r.Base
	r.branches[0] = nn.Register(b, "branch0", nn.Seq(hardnetBasicConv(in, c, 1, 1, 0, 0, 1)))
	for i, k := range []int64{3, 5, 7} {
		r.branches[i+1] = nn.Register(b, "branch"+strconv.Itoa(i+1), nn.Seq(
			hardnetBasicConv(in, c, 1, 1, 0, 0, 1),
			hardnetBasicConv(c, c, 1, k, 0, k/2, 1),
			hardnetBasicConv(c, c, k, 1, k/2, 0, 1),
			hardnetBasicConv(c, c, 3, 3, k, k, k)))
	}
	r.convCat = nn.Register(b, "conv_cat", hardnetConv3(4*c, c))
	r.convRes = nn.Register(b, "conv_res", hardnetBasicConv(in, c, 1, 1, 0, 0, 1))
	return r
}

func (r *hardnetRFB) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		parts := make([]*torch.Tensor, len(r.branches))
		for i, br := range r.branches {
			parts[i] = br.Forward(x)
		}
		return nn.ReluInPlace(r.convCat.Forward(torch.Cat(parts, 1)).Add(r.convRes.Forward(x)))
	})
}

// hardnetAggregation is PraNet's partial decoder ("aggregation"), shared by
// hardnet (3 levels) and hardalter (4 levels), on c channels per level:
// "conv_upsample1".."conv_upsample5" (and "conv_upsample6" with 4 levels),
// "conv_concat2", "conv_concat3" (and "conv_concat4"), "conv4", all conv3
// BasicConv2d without ReLU, and "conv5", a 1×1 convolution with bias to
// the classes. Up-sampling is bilinear ×2 with align_corners=False
// (Jittor's nn.Upsample).
type hardnetAggregation struct {
	nn.Base
	levels int
	up     []*block.ConvNormAct // conv_upsample1..
	concat []*block.ConvNormAct // conv_concat2..
	conv4  *block.ConvNormAct
	conv5  *nn.Conv2d
}

func newHarDNetAggregation(c, classes int64, levels int) *hardnetAggregation {
	a := &hardnetAggregation{levels: levels}
	b := &a.Base
	widths := []int64{c, c, c, c, 2 * c, 3 * c}
	for i := 0; i < 5+levels-3; i++ {
		a.up = append(a.up, nn.Register(b, "conv_upsample"+strconv.Itoa(i+1), hardnetConv3(widths[i], widths[i])))
	}
	for l := 2; l <= levels; l++ {
		w := int64(l) * c
		a.concat = append(a.concat, nn.Register(b, "conv_concat"+strconv.Itoa(l), hardnetConv3(w, w)))
	}
	w := int64(levels) * c
	a.conv4 = nn.Register(b, "conv4", hardnetConv3(w, w))
	a.conv5 = nn.Register(b, "conv5", nn.NewConv2d(w, classes, 1))
	return a
}

// Merge implements nn.Merger: the levels deepest first (x1 at 1/32, x2 at
// 1/16, x3 at 1/8, and for 4 levels x4 at 1/4); logits at the shallowest
// level's resolution. With x1..x3 as in PraNet:
//
//	x2_1 = up1(↑x1)·x2, x3_1 = up2(↑↑x1)·up3(↑x2)·x3,
//	x2_2 = concat2([x2_1, up4(↑x1)]), x3_2 = concat3([x3_1, up5(↑x2_2)]),
//
// and with a fourth level x4_1 = concat4([x4, up6(↑x3_2)]) (x4 enters
// unweighted, as in the reference); then conv5(conv4(·)) of the last.
func (a *hardnetAggregation) Merge(xs ...*torch.Tensor) *torch.Tensor {
	return nn.FrameN(xs, func(xs []*torch.Tensor) []*torch.Tensor {
		up := func(x *torch.Tensor) *torch.Tensor { return torch.Upscale(x, 2, torch.Bilinear, false) }
		cat := func(x, y *torch.Tensor) *torch.Tensor { return torch.Cat([]*torch.Tensor{x, y}, 1) }
		x1, x2, x3 := xs[0], xs[1], xs[2]
		x21 := a.up[0].Forward(up(x1)).Mul(x2)
		x31 := a.up[1].Forward(up(up(x1))).Mul(a.up[2].Forward(up(x2))).Mul(x3)
		x22 := a.concat[0].Forward(cat(x21, a.up[3].Forward(up(x1))))
		y := a.concat[1].Forward(cat(x31, a.up[4].Forward(up(x22))))
		if a.levels == 4 {
			y = a.concat[2].Forward(cat(xs[3], a.up[5].Forward(up(y))))
		}
		return []*torch.Tensor{a.conv5.Forward(a.conv4.Forward(y))}
	})[0]
}

// HarDMSEG is the reference's HarD-MSEG (model/HarDNet.py): "rfb2_1",
// "rfb3_1", "rfb4_1", RFB blocks to c channels on the HarDNet-68 taps at
// 1/8, 1/16 and 1/32; "agg1", PraNet's partial decoder on them (deepest
// first) to the classes at 1/8; "hardnet", the backbone (encoder.HarDNet,
// "hardnet.base.N"; the tap at 1/4 is computed and unused, as in the
// reference); bilinear ×8 (align_corners=False) to the input size. The
// state dict lists the heads before the backbone, in the reference's
// registration order.
//
// c is the width (32 in the reference, PraNet's channel); the backbone has
// base width 2c (64 in the reference), every channel count and growth rate
// scaled with it (see encoder.HarDNet). Input sides must be multiples of 32,
// the smallest input 32×32.
type HarDMSEG struct {
	nn.Base
	rfb     []*hardnetRFB // shallow to deep
	agg     *hardnetAggregation
	hardnet *encoder.HarDNet
	scale   float64
}

// NewHarDMSEG builds HarD-MSEG of width c.Width (32 in the reference;
// 17,423,934 parameters with 3 input channels and 2 classes).
func NewHarDMSEG(c Config) *HarDMSEG { return newHarDMSEG(c, 3) }

// newHarDMSEG builds HarD-MSEG with 3 decoder levels (taps 1..3, output
// ×8) or 4 (taps 0..3, ×4, HarDNet_alter).
func newHarDMSEG(c Config, levels int) *HarDMSEG {
	m := &HarDMSEG{scale: 8}
	if levels == 4 {
		m.scale = 4
	}
	b := &m.Base
	bb := encoder.NewHarDNet68(encoder.InChannels(c.InChannels), encoder.Width(2*c.Width))
	ch := bb.Channels() // 128, 320, 640, 1024 at the reference width
	for i := 4 - levels; i < 4; i++ {
		m.rfb = append(m.rfb, nn.Register(b, "rfb"+strconv.Itoa(i+1)+"_1", newHarDNetRFB(ch[i], c.Width)))
	}
	m.agg = nn.Register(b, "agg1", newHarDNetAggregation(c.Width, c.Classes, levels))
	m.hardnet = nn.Register(b, "hardnet", bb)
	return m
}

// Forward implements nn.Module: logits [N, classes, H, W].
func (m *HarDMSEG) Forward(x *torch.Tensor) *torch.Tensor {
	name := "hardnet"
	if len(m.rfb) == 4 {
		name = "hardalter"
	}
	if err := checkInputSides(name, x, 32, 32); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		taps := m.hardnet.Split(x)
		if len(taps) != 4 {
			return taps[0] // an error
		}
		taps = taps[4-len(m.rfb):]
		feats := make([]*torch.Tensor, len(m.rfb))
		for i, r := range m.rfb { // deepest first for the decoder
			feats[len(m.rfb)-1-i] = r.Forward(taps[i])
		}
		return torch.Upscale(m.agg.Merge(feats...), m.scale, torch.Bilinear, false)
	})
}
