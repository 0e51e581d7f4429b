package models

import (
	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/models/encoder"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "danet", Description: "DANet (position and channel attention) on ResNet-101 (deep stem, output stride 16)", DefaultWidth: 64, RefParams: 66_550_084, Multiple: 16,
		TestWidth: 4, TestSizes: [][2]int64{{16, 16}, {64, 96}, {128, 128}, {512, 512}}, Twin: "danet.DANet",
		Build: func(c Config) (nn.Module, error) { return NewDANet(c, DANetOptions{}), nil }})
}

// DANetOptions selects variants of DANet's channel attention.
type DANetOptions struct {
	// OfficialCAM makes the channel attention weigh channels by
	// softmax(rowmax(E) − E) of the channel affinity E, as the official
	// DANet code (junfu1115/DANet) does, which equals softmax(−E). The
	// default, softmax(E), is the reference's (it comments that line out)
	// and the DANet paper's equation; libtorch's softmax subtracts each
	// row's maximum internally either way, so neither overflows.
	OfficialCAM bool
}

// newDANetPAM is the reference's PAM_Module on c channels: position
// attention whose "query_conv" and "key_conv" are 1×1 convs to c/8 (with
// bias) and "value_conv" a 1×1 conv c → c.
func newDANetPAM(c int64) *block.PositionAttention {
	return block.NewPositionAttention([3]string{"query_conv", "key_conv", "value_conv"},
		nn.NewConv2d(c, c/8, 1), nn.NewConv2d(c, c/8, 1), nn.NewConv2d(c, c, 1))
}

// newDANetCAM is the reference's CAM_Module: channel attention, softmax of
// the affinity E (max − E with DANetOptions.OfficialCAM).
func newDANetCAM(official bool) *block.ChannelAttention {
	return block.NewChannelAttention(block.ChannelAttentionOptions{MaxMinus: official})
}

// danetHead is the reference's DANetHead on in channels (inter = in/4):
// "conv5a" and "conv5c" (conv3 in → inter, no bias, BatchNorm, ReLU) feed
// the position ("sa") and channel ("sc") attention, each followed by its
// conv3 + BN + ReLU ("conv51", "conv52"); the two are summed and "conv8"
// (Dropout 0.1, 1×1 conv with bias to the classes) gives the logits.
type danetHead struct {
	nn.Base
	conv5a, conv5c, conv51, conv52, conv8 *nn.Sequential
	sa                                    *block.PositionAttention
	sc                                    *block.ChannelAttention
}

func newDANetHead(in, classes int64, o DANetOptions) *danetHead {
	inter := in / 4
	d := &danetHead{}
	b := &d.Base
	d.conv5a = nn.Register(b, "conv5a", nn.Seq(block.CBR(in, inter, 3, block.NoBias())...))
	d.conv5c = nn.Register(b, "conv5c", nn.Seq(block.CBR(in, inter, 3, block.NoBias())...))
	d.sa = nn.Register(b, "sa", newDANetPAM(inter))
	d.sc = nn.Register(b, "sc", newDANetCAM(o.OfficialCAM))
	d.conv51 = nn.Register(b, "conv51", nn.Seq(block.CBR(inter, inter, 3, block.NoBias())...))
	d.conv52 = nn.Register(b, "conv52", nn.Seq(block.CBR(inter, inter, 3, block.NoBias())...))
	d.conv8 = nn.Register(b, "conv8", nn.Seq(nn.NewDropout(0.1), nn.NewConv2d(inter, classes, 1)))
	return d
}

func (d *danetHead) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		sa := d.conv51.Forward(d.sa.Forward(d.conv5a.Forward(x)))
		sc := d.conv52.Forward(d.sc.Forward(d.conv5c.Forward(x)))
		return d.conv8.Forward(sa.Add(sc))
	})
}

// DANet is the reference's DANet (model/DANet.py), without auxiliary
// outputs: "backbone", the reference's ResNet-101 (deep stem, output
// stride 16, layer4 dilated 2, 4, 8: encoder.StemDeep, keys
// "backbone.conv1.0.weight"); "head", the DANet head on layer4's 32w
// channels with inter 8w channels and position-attention queries and keys
// of w channels (keys "head.sa.gamma", "head.sa.query_conv.weight",
// "head.sc.gamma", "head.conv8.1.bias"); a bilinear resize of the logits to
// the input (align_corners False, Jittor's).
//
// Both attention scales ("head.sa.gamma", "head.sc.gamma") start at zero,
// as in the reference, so the attention branches begin as identities and
// their query, key and value weights get no gradient until gamma moves.
// The channel attention's softmax is the reference's, softmax(E); the
// official DANet code's softmax(rowmax(E) − E) is DANetOptions.OfficialCAM.
//
// w is the width (64 in the reference: 2048 channels into the head, 512
// inside, 64 for queries and keys). Input sides are multiples of 16.
type DANet struct {
	nn.Base
	backbone *encoder.ResNet
	head     *danetHead
}

// NewDANet builds DANet of width c.Width (64 in the reference; 66,550,084
// parameters with 3 input channels and 2 classes).
func NewDANet(c Config, o DANetOptions) *DANet {
	w := c.Width
	m := &DANet{}
	b := &m.Base
	m.backbone = nn.Register(b, "backbone", encoder.NewResNet(101, encoder.InChannels(c.InChannels), encoder.Width(w),
		encoder.Stem(encoder.StemDeep), encoder.OutputStride(16), encoder.Multigrid(1, 2, 4), encoder.Taps(4)))
	m.head = nn.Register(b, "head", newDANetHead(32*w, c.Classes, o))
	return m
}

// Forward implements nn.Module: logits [N, classes, H, W] for an input
// whose sides are multiples of 16.
func (m *DANet) Forward(x *torch.Tensor) *torch.Tensor {
	if err := checkInputSides("danet", x, 16, 16); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		out := m.head.Forward(m.backbone.Split(x)[0])
		return torch.Resize(out, [2]int64{x.Size(2), x.Size(3)}, torch.Bilinear, false)
	})
}
