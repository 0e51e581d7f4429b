package models

import (
	"fmt"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/models/encoder"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// cenetMinSize is CE-Net's smallest input side: RMP's 6×6 max-pooling
// needs a map of at least 6×6 at 1/32.
const cenetMinSize = 192

func init() {
	Register(Spec{Name: "cenet", Description: "CE-Net (ResNet-34 encoder, DAC and RMP blocks, LinkNet decoders)", DefaultWidth: 64, RefParams: 29_003_382,
		Multiple: 32, MinSize: cenetMinSize,
		TestWidth: 4, TestSizes: [][2]int64{{192, 192}, {256, 192}, {512, 512}}, Twin: "cenet.CENet",
		Build: func(c Config) (nn.Module, error) {
			if c.Width%4 != 0 {
				return nil, fmt.Errorf("width %d is not a multiple of 4 (the last LinkNet decoder reduces w channels by 4)", c.Width)
			}
			return NewCENet(c), nil
		}})
}

// Shared by cenet and dlink (candidate for models/block): CE-Net and
// D-LinkNet take a torchvision-layout ResNet apart under their own names and
// end in the same three convolutions.

// linknetPartNames are CE-Net's and D-LinkNet's names for a standard-stem
// ResNet's parts (the ReLU between firstbn and firstmaxpool has no state).
var linknetPartNames = map[string]string{
	"conv1": "firstconv", "bn1": "firstbn", "maxpool": "firstmaxpool",
	"layer1": "encoder1", "layer2": "encoder2", "layer3": "encoder3", "layer4": "encoder4",
}

// linknetEncoder registers r's parts on b under linknetPartNames
// ("firstconv.weight", "encoder3.5.bn2.running_mean"); r.Split then gives
// encoder1..encoder4.
func linknetEncoder(b *nn.Base, r *encoder.ResNet) *encoder.ResNet {
	for _, p := range r.Parts() {
		name, ok := linknetPartNames[p.Name]
		if !ok {
			name = p.Name // a failed construction's carrier
		}
		b.RegisterModule(name, p.Node)
	}
	return r
}

// linknetHead is the models' last stage: "finaldeconv1", a 4×4 transposed
// convolution of stride 2 (padding 1) in → c that doubles the size, ReLU;
// "finalconv2", conv3 c → c, ReLU; "finalconv3", conv3 c → classes. All
// with biases.
type linknetHead struct {
	deconv1      *nn.ConvTranspose2d
	conv2, conv3 *nn.Conv2d
}

func newLinknetHead(b *nn.Base, in, c, classes int64) linknetHead {
	return linknetHead{
		deconv1: nn.Register(b, "finaldeconv1", nn.NewConvTranspose2d(in, c, 4, nn.Stride(2), nn.Padding(1))),
		conv2:   nn.Register(b, "finalconv2", nn.NewConv2d(c, c, 3, nn.Padding(1))),
		conv3:   nn.Register(b, "finalconv3", nn.NewConv2d(c, classes, 3, nn.Padding(1))),
	}
}

func (h linknetHead) forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		return h.conv3.Forward(h.conv2.Forward(h.deconv1.Forward(x).Relu()).Relu())
	})
}

// linknetHeadWidth is the head's width: the reference's 32 at every width
// (a literal in the reference, not tied to its filters). Scaled with the
// width instead (w/2), D-LinkNet at width 8 had a head of 4 channels and
// collapsed to background on the brain data (8 epochs, CE + Dice); with 32
// it trains (held-out Dice 0.96).
func linknetHeadWidth(int64) int64 { return 32 }

// zeroBiases zeroes the biases of convs, as the reference's D-block and
// DAC block initialise theirs; a failure is recorded on b.
func zeroBiases(b *nn.Base, who string, convs ...*nn.Conv2d) {
	for _, c := range convs {
		if c.Bias == nil {
			continue
		}
		if err := nn.Zeros(c.Bias); err != nil {
			b.RegisterParameter("(init)", torch.FromError(fmt.Errorf("%s: zero-initialising a bias: %w", who, err)))
			return
		}
	}
}

// cenetDAC is CE-Net's dense atrous convolution block on c channels:
// "dilate1", "dilate2", "dilate3", conv3 of dilation 1, 3, 5, and
// "conv1x1", one 1×1 convolution shared by three branches (all with biases,
// zero at first). The output is x + relu(dilate1 x) + relu(conv1x1 dilate2
// x) + relu(conv1x1 dilate2 dilate1 x) + relu(conv1x1 dilate3 dilate2
// dilate1 x).
type cenetDAC struct {
	nn.Base
	dilate1, dilate2, dilate3, conv1x1 *nn.Conv2d
}

func newCENetDAC(c int64) *cenetDAC {
	d := &cenetDAC{}
	b := &d.Base
	d.dilate1 = nn.Register(b, "dilate1", nn.NewConv2d(c, c, 3, nn.Padding(1)))
	d.dilate2 = nn.Register(b, "dilate2", nn.NewConv2d(c, c, 3, nn.Padding(3), nn.Dilation(3)))
	d.dilate3 = nn.Register(b, "dilate3", nn.NewConv2d(c, c, 3, nn.Padding(5), nn.Dilation(5)))
	d.conv1x1 = nn.Register(b, "conv1x1", nn.NewConv2d(c, c, 1))
	zeroBiases(b, "cenet", d.dilate1, d.dilate2, d.dilate3, d.conv1x1)
	return d
}

func (d *cenetDAC) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		// The reference evaluates dilate1(x) three times and
		// dilate2(dilate1(x)) twice; once each gives the same values.
		a := d.dilate1.Forward(x)
		ab := d.dilate2.Forward(a)
		out := x.Add(a.Relu())
		out = out.Add(d.conv1x1.Forward(d.dilate2.Forward(x)).Relu())
		out = out.Add(d.conv1x1.Forward(ab).Relu())
		return out.Add(d.conv1x1.Forward(d.dilate3.Forward(ab)).Relu())
	})
}

// cenetRMP is CE-Net's residual multi-kernel pooling (the reference's
// SPPblock) on c channels: max-pooling of kernel and stride 2, 3, 5 and 6,
// "conv", one 1×1 convolution c → 1 (with bias) shared by the four, each
// resized back bilinearly (align_corners=False, Jittor's upsample), then
// concatenated with the input: c + 4 channels.
type cenetRMP struct {
	nn.Base
	pools [4]*nn.MaxPool2d
	conv  *nn.Conv2d
}

func newCENetRMP(c int64) *cenetRMP {
	r := &cenetRMP{}
	for i, k := range []int64{2, 3, 5, 6} {
		r.pools[i] = nn.Register(&r.Base, fmt.Sprintf("pool%d", i+1), nn.NewMaxPool2d(k))
	}
	r.conv = nn.Register(&r.Base, "conv", nn.NewConv2d(c, 1, 1))
	return r
}

func (r *cenetRMP) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		size := [2]int64{x.Size(2), x.Size(3)}
		var ls []*torch.Tensor
		for _, p := range r.pools {
			ls = append(ls, torch.Resize(r.conv.Forward(p.Forward(x)), size, torch.Bilinear, false))
		}
		return torch.Cat(append(ls, x), 1)
	})
}

// CENet is the reference's CE-Net (model/CENet.py, CE_Net_): a ResNet-34
// encoder (models/encoder, torchvision's layout) whose parts are
// registered under the reference's names "firstconv", "firstbn",
// "firstmaxpool", "encoder1".."encoder4" ("encoder2.0.downsample.1.weight");
// "dblock", the DAC block at 8w; "spp", the RMP block (8w + 4 channels);
// "decoder4".."decoder1", LinkNet decoder blocks (block.LinkNetDecoder)
// 8w+4 → 4w → 2w → w → w, each doubling the size, with encoder3..1 added
// after decoder4..2; then "finaldeconv1" (4×4 stride-2 transposed
// convolution w → 32, ReLU), "finalconv2" (conv3 32 → 32, ReLU) and
// "finalconv3" (conv3 to the classes): logits at the input's size.
//
// w is the width (64 in the reference; it must be a multiple of 4); the
// head keeps the reference's 32 channels at every width. Input sides must be multiples of
// 32 and at least 192: RMP's 6×6 pooling needs a 6×6 map at 1/32.
type CENet struct {
	nn.Base
	enc      *encoder.ResNet
	dblock   *cenetDAC
	spp      *cenetRMP
	decoders [4]*block.LinkNetDecoder // decoder4 .. decoder1
	head     linknetHead
}

// NewCENet builds CE-Net of width c.Width (64 in the reference; 29,003,382
// parameters with 3 input channels and 2 classes).
func NewCENet(c Config) *CENet {
	w := c.Width
	m := &CENet{}
	b := &m.Base
	m.enc = linknetEncoder(b, encoder.NewResNet(34, encoder.InChannels(c.InChannels), encoder.Width(w)))
	m.dblock = nn.Register(b, "dblock", newCENetDAC(8*w))
	m.spp = nn.Register(b, "spp", newCENetRMP(8*w))
	for i, io := range [][2]int64{{8*w + 4, 4 * w}, {4 * w, 2 * w}, {2 * w, w}, {w, w}} {
		m.decoders[i] = nn.Register(b, fmt.Sprintf("decoder%d", 4-i), block.NewLinkNetDecoder(io[0], io[1]))
	}
	m.head = newLinknetHead(b, w, linknetHeadWidth(w), c.Classes)
	return m
}

// FoldPairs implements nn.PairFolder for the encoder's stem,
// firstconv→firstbn: the ResNet's parts are registered here, not the
// ResNet, so the fusion pass does not visit its own FoldPairs (the blocks
// of encoder1..4 it does).
func (m *CENet) FoldPairs(fold func(*nn.Conv2d, nn.Module) nn.Module) error {
	return m.enc.FoldPairs(fold)
}

// Forward implements nn.Module: logits [N, classes, H, W] for an input
// whose sides are multiples of 32 and at least 192.
func (m *CENet) Forward(x *torch.Tensor) *torch.Tensor {
	if err := checkInputSides("cenet", x, 32, cenetMinSize); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		e := m.enc.Split(x)
		if len(e) != 4 {
			return e[0]
		}
		d := m.decoders[0].Forward(m.spp.Forward(m.dblock.Forward(e[3]))).Add(e[2])
		d = m.decoders[1].Forward(d).Add(e[1])
		d = m.decoders[2].Forward(d).Add(e[0])
		return m.head.forward(m.decoders[3].Forward(d))
	})
}
