package models

import (
	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "lrfea", Description: "LRF-EANet (large-receptive-field GroupNorm backbone, external attention head)", DefaultWidth: 64, RefParams: 51_193_770, Multiple: 16,
		TestWidth: 8, TestSizes: [][2]int64{{16, 16}, {64, 96}, {128, 128}, {512, 512}}, Twin: "lrfea.LRFEANet",
		Build: func(c Config) (nn.Module, error) { return NewLRFEANet(c), nil }})
}

// lrfeaPatchMerge is the reference's PatchMergeBlock, as "block": a p×p
// stride-p convolution in → in·p² (no bias), the reference's NormLayer
// (GroupNorm, "block.1.norm.weight"), ReLU, a 1×1 convolution to out (no
// bias), NormLayer, ReLU.
func lrfeaPatchMerge(in, out, p int64) *nn.Path {
	e := in * p * p
	return nn.NewPath("block", nn.Seq(
		nn.NewConv2d(in, e, p, nn.Stride(p), nn.NoBias()), block.NormLayer(e), nn.ReLUInPlace(),
		nn.NewConv2d(e, out, 1, nn.NoBias()), block.NormLayer(out), nn.ReLUInPlace()))
}

// lrfeaPatchSplit is the reference's PatchSplitBlock, as "block": a 1×1
// convolution in → in·p² (no bias), NormLayer, ReLU, a p×p stride-p
// transposed convolution to out (no bias), NormLayer, ReLU.
func lrfeaPatchSplit(in, out, p int64) *nn.Path {
	e := in * p * p
	return nn.NewPath("block", nn.Seq(
		nn.NewConv2d(in, e, 1, nn.NoBias()), block.NormLayer(e), nn.ReLUInPlace(),
		nn.NewConvTranspose2d(e, out, p, nn.Stride(p), nn.NoBias()), block.NormLayer(out), nn.ReLUInPlace()))
}

// lrfeaAggregation is the reference's AggregationBlock: "block", a dilated
// conv3 c → 2c (no bias), NormLayer, ReLU, a 1×1 convolution 2c → c (no
// bias), NormLayer; then the identity is added and ReLU applied.
type lrfeaAggregation struct {
	nn.Base
	block *nn.Sequential
}

func newLRFEAAggregation(c, dilation int64) *lrfeaAggregation {
	a := &lrfeaAggregation{}
	a.block = nn.Register(&a.Base, "block", nn.Seq(
		nn.NewConv2d(c, 2*c, 3, nn.Padding(dilation), nn.Dilation(dilation), nn.NoBias()), block.NormLayer(2*c), nn.ReLUInPlace(),
		nn.NewConv2d(2*c, c, 1, nn.NoBias()), block.NormLayer(c)))
	return a
}

func (a *lrfeaAggregation) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		return nn.ReluInPlace(a.block.Forward(x).Add(x))
	})
}

// lrfeaLayer is a Sequential of aggregation blocks, one per dilation.
func lrfeaLayer(c int64, dilations ...int64) *nn.Sequential {
	s := nn.Seq()
	for _, d := range dilations {
		s.Append(newLRFEAAggregation(c, d))
	}
	return s
}

// shared with eanet: EANet's external attention, used by lrfea and eanet
// (candidate for models/block).

// externalAttention is the reference's External_attention on c channels
// with k memory units (64 in both reference models): "conv1", a 1×1
// convolution with bias; the map flattened to [N, c, H·W]; "linear_0", a
// Conv1d c → k without bias (the memory's keys); a softmax over the H·W
// positions, then each position's k weights divided by their sum plus 1e-9
// (double normalisation); "linear_1", a Conv1d k → c without bias (the
// memory's values); back to [N, c, H, W]; "conv2", a 1×1 convolution
// without bias and the reference's NormLayer ("conv2.0.weight",
// "conv2.1.norm.weight"); the input added and ReLU applied. Weights are
// PyTorch's default initialisation, as the reference leaves them (the
// EANet paper ties linear_1 to linear_0's transpose at start; the
// reference does not). It is package-wide, without the lrfea prefix: shared
// with eanet.
type externalAttention struct {
	nn.Base
	conv1            *nn.Conv2d
	linear0, linear1 *nn.Conv1d
	conv2            *nn.Sequential
}

// newExternalAttention makes the head for c channels and k memory units
// (shared with eanet).
func newExternalAttention(c, k int64) *externalAttention {
	a := &externalAttention{}
	b := &a.Base
	a.conv1 = nn.Register(b, "conv1", nn.NewConv2d(c, c, 1))
	a.linear0 = nn.Register(b, "linear_0", nn.NewConv1d(c, k, 1, nn.NoBias()))
	a.linear1 = nn.Register(b, "linear_1", nn.NewConv1d(k, c, 1, nn.NoBias()))
	a.conv2 = nn.Register(b, "conv2", nn.Seq(nn.NewConv2d(c, c, 1, nn.NoBias()), block.NormLayer(c)))
	return a
}

// Forward implements nn.Module: [N, c, H, W] to the same shape.
func (a *externalAttention) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		n, c, h, w := x.Size(0), x.Size(1), x.Size(2), x.Size(3)
		attn := a.linear0.Forward(a.conv1.Forward(x).Reshape(n, c, h*w)).Softmax(2) // [N, k, H·W]
		attn = attn.Div(attn.SumDims([]int64{1}, true).AddScalar(1e-9))
		y := a.conv2.Forward(a.linear1.Forward(attn).Reshape(n, c, h, w))
		return nn.ReluInPlace(y.Add(x))
	})
}

// LRFEANet is the reference's LRF-EANet (model/LRFEANet.py): the EANet head
// on a "large receptive field" GroupNorm backbone, every normalisation the
// reference's NormLayer (GroupNorm of 32/16/8/4/1 groups from 512/256/128/
// 64/fewer channels, as child "norm").
//
// "backbone.net" is one Sequential: 0 patch merge (2×2, in → w at 1/2);
// 1 an aggregation block at w; 2 patch merge (w → w, 1/4); 3 five
// aggregation blocks at w; 4 patch merge (→ 2w, 1/8); 5 five blocks at
// 2w; 6 patch merge (→ 4w, 1/16); 7 eighteen blocks at 4w with dilations
// 1, 1, 2 repeated; 8 a 1×1 convolution 4w → 8w (no bias), 9 NormLayer,
// 10 ReLU; 11 four blocks at 8w with dilations 1, 2, 4, 8. Then "head", the
// external attention on 8w channels with w memory units; "split.0", a patch
// split (1×1 8w → 32w, ConvTranspose 2×2 → 4w, at 1/8) and Dropout 0.1;
// "fc", a 2×2 stride-2 transposed convolution with bias to the classes at
// 1/4; a bilinear resize (align_corners=False, as Jittor's) to the input.
// Keys: "backbone.net.7.17.block.3.weight", "backbone.net.9.norm.bias",
// "head.linear_0.weight", "split.0.block.3.weight", "fc.bias".
//
// w is the width (64 in the reference: 64, 128, 256, 512 channels and the
// reference's 64 memory units). Input sides must be multiples of 16; the
// smallest input is 16×16.
type LRFEANet struct {
	nn.Base
	backbone *nn.Path
	head     *externalAttention
	split    *nn.Sequential
	fc       *nn.ConvTranspose2d
}

// NewLRFEANet builds LRF-EANet of width c.Width (64 in the reference;
// 51,193,770 parameters with 3 input channels and 2 classes).
func NewLRFEANet(c Config) *LRFEANet {
	w := c.Width
	m := &LRFEANet{}
	b := &m.Base
	net := nn.Seq(
		lrfeaPatchMerge(c.InChannels, w, 2),
		newLRFEAAggregation(w, 1),
		lrfeaPatchMerge(w, w, 2),
		lrfeaLayer(w, 1, 1, 1, 1, 1),
		lrfeaPatchMerge(w, 2*w, 2),
		lrfeaLayer(2*w, 1, 1, 1, 1, 1),
		lrfeaPatchMerge(2*w, 4*w, 2),
		lrfeaLayer(4*w, 1, 1, 2, 1, 1, 2, 1, 1, 2, 1, 1, 2, 1, 1, 2, 1, 1, 2),
		nn.NewConv2d(4*w, 8*w, 1, nn.NoBias()), block.NormLayer(8*w), nn.ReLUInPlace(),
		lrfeaLayer(8*w, 1, 2, 4, 8))
	m.backbone = nn.Register(b, "backbone", nn.NewPath("net", net))
	m.head = nn.Register(b, "head", newExternalAttention(8*w, w))
	m.split = nn.Register(b, "split", nn.Seq(lrfeaPatchSplit(8*w, 4*w, 2), nn.NewDropout(0.1)))
	m.fc = nn.Register(b, "fc", nn.NewConvTranspose2d(4*w, c.Classes, 2, nn.Stride(2)))
	return m
}

// Forward implements nn.Module: logits [N, classes, H, W].
func (m *LRFEANet) Forward(x *torch.Tensor) *torch.Tensor {
	if err := checkInputSides("lrfea", x, 16, 16); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		y := m.fc.Forward(m.split.Forward(m.head.Forward(m.backbone.Forward(x))))
		return torch.Resize(y, [2]int64{x.Size(2), x.Size(3)}, torch.Bilinear, false)
	})
}
