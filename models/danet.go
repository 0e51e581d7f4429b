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

// danetPAM is the reference's PAM_Module, position attention on c
// channels: "query_conv" and "key_conv" (1×1 to c/8, with bias) give an
// affinity between every pair of positions, softmax over the second;
// "value_conv" (1×1, c → c) features are summed with those weights;
// "gamma" (a parameter, zero at first) scales the result, added to x.
type danetPAM struct {
	nn.Base
	gamma                         *torch.Tensor
	queryConv, keyConv, valueConv *nn.Conv2d
}

func newDANetPAM(c int64) *danetPAM {
	a := &danetPAM{}
	b := &a.Base
	a.queryConv = nn.Register(b, "query_conv", nn.NewConv2d(c, c/8, 1))
	a.keyConv = nn.Register(b, "key_conv", nn.NewConv2d(c, c/8, 1))
	a.valueConv = nn.Register(b, "value_conv", nn.NewConv2d(c, c, 1))
	a.gamma = b.RegisterParameter("gamma", torch.Zeros([]int64{1}))
	return a
}

func (a *danetPAM) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		n, c, h, w := x.Size(0), x.Size(1), x.Size(2), x.Size(3)
		q := a.queryConv.Forward(x).Reshape(n, -1, h*w).Permute(0, 2, 1) // [N, HW, c/8]
		k := a.keyConv.Forward(x).Reshape(n, -1, h*w)                    // [N, c/8, HW]
		attention := q.Matmul(k).Softmax(-1)                             // [N, HW, HW]
		v := a.valueConv.Forward(x).Reshape(n, -1, h*w)                  // [N, c, HW]
		out := v.Matmul(attention.Permute(0, 2, 1)).Reshape(n, c, h, w)
		return a.gamma.Mul(out).Add(x)
	})
}

// danetCAM is the reference's CAM_Module, channel attention: the channel
// affinity E = X·Xᵀ of the flattened map, softmax over each row (see
// DANetOptions.OfficialCAM), weighs the channels; "gamma" (zero at first)
// scales the result, added to x.
type danetCAM struct {
	nn.Base
	gamma    *torch.Tensor
	official bool
}

func newDANetCAM(official bool) *danetCAM {
	a := &danetCAM{official: official}
	a.gamma = a.RegisterParameter("gamma", torch.Zeros([]int64{1}))
	return a
}

func (a *danetCAM) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		n, c, h, w := x.Size(0), x.Size(1), x.Size(2), x.Size(3)
		q := x.Reshape(n, c, -1)               // [N, C, HW]
		energy := q.Matmul(q.Permute(0, 2, 1)) // [N, C, C]
		if a.official {
			maxima, _ := energy.MaxDim(-1, true)
			energy = maxima.Expand(energy.Shape()...).Sub(energy)
		}
		out := energy.Softmax(-1).Matmul(q).Reshape(n, c, h, w)
		return a.gamma.Mul(out).Add(x)
	})
}

// danetHead is the reference's DANetHead on in channels (inter = in/4):
// "conv5a" and "conv5c" (conv3 in → inter, no bias, BatchNorm, ReLU) feed
// the position ("sa") and channel ("sc") attention, each followed by its
// conv3 + BN + ReLU ("conv51", "conv52"); the two are summed and "conv8"
// (Dropout 0.1, 1×1 conv with bias to the classes) gives the logits.
type danetHead struct {
	nn.Base
	conv5a, conv5c, conv51, conv52, conv8 *nn.Sequential
	sa                                    *danetPAM
	sc                                    *danetCAM
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
