package models

import (
	"github.com/jmedseg/jmedseg/models/encoder"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "ocrnet", Description: "OCRNet (object-contextual representations) on ResNet-101 (deep stem, output stride 16)", DefaultWidth: 64, RefParams: 57_064_644, Multiple: 16,
		TestWidth: 4, TestSizes: [][2]int64{{16, 16}, {64, 96}, {128, 128}, {512, 512}}, Twin: "ocrnet.OCRNet",
		Build: func(c Config) (nn.Module, error) { return NewOCRNet(c, OCRNetOptions{}), nil }})
}

// OCRNetOptions selects variants of OCRNet's head.
type OCRNetOptions struct {
	// ReferenceRelation normalises the pixel-region relation over the
	// pixels, for each class, as the reference does (its second softmax
	// reuses the first's dim=2 on [N, classes, H·W]): each class's weights
	// then sum to one over the map, so the object context a pixel receives
	// shrinks as 1/(H·W) and what the head learns at one input size is off
	// by the ratio of areas at another. The default is the published OCR's
	// (Yuan et al., 2020): each pixel's weights over the classes sum to one.
	ReferenceRelation bool
}

// ocrnetHead is the reference's OCRHead on c channels, given the soft
// object regions (context, [N, K, h, w]) and the pixel features ([N, c, h,
// w]): each region's representation is the sum of the features weighted by
// the region's softmax over the pixels; each pixel's relation to the K
// regions (feature · region, softmax over the regions, or over the pixels
// with OCRNetOptions.ReferenceRelation) weighs them into its object
// context; "conv_1x1" (1×1, c → c with bias, weight zero at first) maps it;
// the concatenation [context, features] goes through "last_conv" (conv3
// 2c → classes, with bias).
type ocrnetHead struct {
	nn.Base
	conv1x1, lastConv *nn.Conv2d
	referenceRelation bool
}

func newOCRNetHead(c, classes int64, o OCRNetOptions) *ocrnetHead {
	d := &ocrnetHead{referenceRelation: o.ReferenceRelation}
	b := &d.Base
	d.conv1x1 = nn.Register(b, "conv_1x1", nn.NewConv2d(c, c, 1))
	d.lastConv = nn.Register(b, "last_conv", nn.NewConv2d(2*c, classes, 3, nn.Padding(1)))
	zeroInit(b, "ocrnet", d.conv1x1)
	return d
}

// Merge takes (context, feature): the soft object regions and the pixel
// features, at the same size.
func (d *ocrnetHead) Merge(xs ...*torch.Tensor) *torch.Tensor {
	return nn.Frame2(xs[0], xs[1], func(context, feature *torch.Tensor) *torch.Tensor {
		n, c, h, w := feature.Size(0), feature.Size(1), feature.Size(2), feature.Size(3)
		f := feature.Reshape(n, c, -1).Permute(0, 2, 1)               // [N, HW, c]
		regions := context.Reshape(n, context.Size(1), -1).Softmax(2) // [N, K, HW]
		objects := regions.Matmul(f).Permute(0, 2, 1)                 // [N, c, K]
		relation := f.Matmul(objects).Permute(0, 2, 1)                // [N, K, HW]
		dim := int64(1)                                               // over the regions
		if d.referenceRelation {
			dim = 2 // over the pixels
		}
		out := objects.Matmul(relation.Softmax(dim)).Reshape(n, c, h, w)
		out = d.conv1x1.Forward(out)
		return d.lastConv.Forward(torch.Cat([]*torch.Tensor{out, feature}, 1))
	})
}

// OCRNet is the reference's OCRNet (model/OCRNet.py): "backbone", the
// reference's ResNet-101 (deep stem, output stride 16, layer4 dilated 2,
// 4, 8: encoder.StemDeep, keys "backbone.conv1.0.weight"), of which
// layer3 (16w channels) and layer4 (32w) are used; "head", the OCR head on
// 8w channels ("head.conv_1x1.weight", "head.last_conv.bias");
// "get_context", the soft object regions from layer3 (conv3 16w → 8w with
// bias, BatchNorm, ReLU, Dropout 0.05, 1×1 to the classes with bias; keys
// "get_context.0.weight", "get_context.4.bias"); "conv_3x3", the pixel
// features from layer4 (conv3 32w → 8w with bias, BatchNorm, ReLU); the
// head's logits resized bilinearly to the input (align_corners False,
// Jittor's). Like the reference's forward, it returns only the head's
// logits: the regions are not supervised (the reference's auxiliary loss
// is never given them).
//
// "head.conv_1x1.weight" starts at zero, as in the reference, so the object
// context begins as zeros beside the features and the regions get no
// gradient until it moves. The pixel-region relation is the published
// OCR's, a softmax over the regions; the reference's softmax over the
// pixels is OCRNetOptions.ReferenceRelation.
//
// w is the width (64 in the reference: 1024 and 2048 channels from the
// backbone, 512 in the head). Input sides are multiples of 16.
type OCRNet struct {
	nn.Base
	backbone   *encoder.ResNet
	head       *ocrnetHead
	getContext *nn.Sequential
	conv3x3    *nn.Sequential
}

// NewOCRNet builds OCRNet of width c.Width (64 in the reference; 57,064,644
// parameters with 3 input channels and 2 classes).
func NewOCRNet(c Config, o OCRNetOptions) *OCRNet {
	w := c.Width
	m := &OCRNet{}
	b := &m.Base
	m.backbone = nn.Register(b, "backbone", encoder.NewResNet(101, encoder.InChannels(c.InChannels), encoder.Width(w),
		encoder.Stem(encoder.StemDeep), encoder.OutputStride(16), encoder.Multigrid(1, 2, 4), encoder.Taps(3, 4)))
	m.head = nn.Register(b, "head", newOCRNetHead(8*w, c.Classes, o))
	m.getContext = nn.Register(b, "get_context", nn.Seq(
		nn.NewConv2d(16*w, 8*w, 3, nn.Padding(1)), nn.NewBatchNorm2d(8*w), nn.ReLUInPlace(),
		nn.NewDropout(0.05), nn.NewConv2d(8*w, c.Classes, 1)))
	m.conv3x3 = nn.Register(b, "conv_3x3", nn.Seq(
		nn.NewConv2d(32*w, 8*w, 3, nn.Padding(1)), nn.NewBatchNorm2d(8*w), nn.ReLUInPlace()))
	return m
}

// Forward implements nn.Module: logits [N, classes, H, W] for an input
// whose sides are multiples of 16.
func (m *OCRNet) Forward(x *torch.Tensor) *torch.Tensor {
	if err := checkInputSides("ocrnet", x, 16, 16); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		f := m.backbone.Split(x) // layer3 and layer4, both at 1/16
		if len(f) != 2 {
			return f[0]
		}
		out := m.head.Merge(m.getContext.Forward(f[0]), m.conv3x3.Forward(f[1]))
		return torch.Resize(out, [2]int64{x.Size(2), x.Size(3)}, torch.Bilinear, false)
	})
}
