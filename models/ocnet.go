package models

import (
	"fmt"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/models/encoder"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "ocnet", Description: "OCNet (object-context self-attention) on ResNet-101 (deep stem, output stride 16)", DefaultWidth: 64, RefParams: 57_570_498, Multiple: 16,
		TestWidth: 4, TestSizes: [][2]int64{{16, 16}, {64, 96}, {128, 128}, {512, 512}}, Twin: "ocnet.OCNet",
		Build: func(c Config) (nn.Module, error) { return NewOCNet(c), nil }})
}

// zeroInit zeroes a convolution's weight, as the reference's
// _zero_init_conv does (its bias keeps PyTorch's default initialisation). A
// failure is recorded on b, for Err. Shared by ocnet and ocrnet.
func zeroInit(b *nn.Base, who string, conv *nn.Conv2d) {
	if err := nn.Zeros(conv.Weight); err != nil {
		b.RegisterParameter("(init)", torch.FromError(fmt.Errorf("%s: zero-initialising a convolution: %w", who, err)))
	}
}

// ocnetOC is the reference's OC_Module on c channels, self-attention over
// positions: "query_conv" and "key_conv" (1×1 to c/2, with bias) give an
// affinity between every pair of positions, softmax over the second;
// "value_conv" (1×1, c → c) features are summed with those weights;
// "scale_conv" (1×1, c → c, weight zero at first) maps the result, which is
// concatenated with x: [scale_conv(attention), x], 2c channels.
type ocnetOC struct {
	nn.Base
	queryConv, keyConv, valueConv, scaleConv *nn.Conv2d
}

func newOCNetOC(c int64) *ocnetOC {
	a := &ocnetOC{}
	b := &a.Base
	a.queryConv = nn.Register(b, "query_conv", nn.NewConv2d(c, c/2, 1))
	a.keyConv = nn.Register(b, "key_conv", nn.NewConv2d(c, c/2, 1))
	a.valueConv = nn.Register(b, "value_conv", nn.NewConv2d(c, c, 1))
	a.scaleConv = nn.Register(b, "scale_conv", nn.NewConv2d(c, c, 1))
	zeroInit(b, "ocnet", a.scaleConv)
	return a
}

func (a *ocnetOC) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		n, c, h, w := x.Size(0), x.Size(1), x.Size(2), x.Size(3)
		q := a.queryConv.Forward(x).Reshape(n, -1, h*w).Permute(0, 2, 1) // [N, HW, c/2]
		k := a.keyConv.Forward(x).Reshape(n, -1, h*w)                    // [N, c/2, HW]
		attention := q.Matmul(k).Softmax(-1)                             // [N, HW, HW]
		v := a.valueConv.Forward(x).Reshape(n, -1, h*w)                  // [N, c, HW]
		out := a.scaleConv.Forward(v.Matmul(attention.Permute(0, 2, 1)).Reshape(n, c, h, w))
		return torch.Cat([]*torch.Tensor{out, x}, 1)
	})
}

// ocnetHead is the reference's OCHead on in channels (inter = in/4):
// "conv_0" (conv3 in → inter, no bias, BatchNorm, ReLU), "oc" (the object
// context, 2·inter channels out), "conv_1" (conv3 2·inter → inter, no bias,
// BatchNorm, ReLU), "conv_2" (Dropout 0.1, 1×1 conv with bias to the
// classes).
type ocnetHead struct {
	nn.Base
	conv0, conv1, conv2 *nn.Sequential
	oc                  *ocnetOC
}

func newOCNetHead(in, classes int64) *ocnetHead {
	inter := in / 4
	d := &ocnetHead{}
	b := &d.Base
	d.conv0 = nn.Register(b, "conv_0", nn.Seq(block.CBR(in, inter, 3, block.NoBias())...))
	d.oc = nn.Register(b, "oc", newOCNetOC(inter))
	d.conv1 = nn.Register(b, "conv_1", nn.Seq(block.CBR(2*inter, inter, 3, block.NoBias())...))
	d.conv2 = nn.Register(b, "conv_2", nn.Seq(nn.NewDropout(0.1), nn.NewConv2d(inter, classes, 1)))
	return d
}

func (d *ocnetHead) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		return d.conv2.Forward(d.conv1.Forward(d.oc.Forward(d.conv0.Forward(x))))
	})
}

// OCNet is the reference's OCNet (model/OCNet.py): "backbone", the
// reference's ResNet-101 (deep stem, output stride 16, layer4 dilated 2,
// 4, 8: encoder.StemDeep, keys "backbone.conv1.0.weight"); "head", the
// object-context head on layer4's 32w channels with inter 8w channels and
// queries and keys of 4w (keys "head.conv_0.0.weight",
// "head.oc.query_conv.weight", "head.oc.scale_conv.bias",
// "head.conv_2.1.bias"); a bilinear resize of the logits to the input
// (align_corners False, Jittor's).
//
// "head.oc.scale_conv.weight" starts at zero, as in the reference, so the
// object context begins as zeros beside the features and the attention's
// query, key and value weights get no gradient until it moves.
//
// w is the width (64 in the reference: 2048 channels into the head, 512
// inside, 256 for queries and keys). Input sides are multiples of 16.
type OCNet struct {
	nn.Base
	backbone *encoder.ResNet
	head     *ocnetHead
}

// NewOCNet builds OCNet of width c.Width (64 in the reference; 57,570,498
// parameters with 3 input channels and 2 classes).
func NewOCNet(c Config) *OCNet {
	w := c.Width
	m := &OCNet{}
	b := &m.Base
	m.backbone = nn.Register(b, "backbone", encoder.NewResNet(101, encoder.InChannels(c.InChannels), encoder.Width(w),
		encoder.Stem(encoder.StemDeep), encoder.OutputStride(16), encoder.Multigrid(1, 2, 4), encoder.Taps(4)))
	m.head = nn.Register(b, "head", newOCNetHead(32*w, c.Classes))
	return m
}

// Forward implements nn.Module: logits [N, classes, H, W] for an input
// whose sides are multiples of 16.
func (m *OCNet) Forward(x *torch.Tensor) *torch.Tensor {
	if err := checkInputSides("ocnet", x, 16, 16); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		out := m.head.Forward(m.backbone.Split(x)[0])
		return torch.Resize(out, [2]int64{x.Size(2), x.Size(3)}, torch.Bilinear, false)
	})
}
