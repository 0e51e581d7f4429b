package models

import (
	"fmt"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/models/encoder"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "dlink", Description: "D-LinkNet50 (ResNet-50 encoder, dilated D-block, LinkNet decoders)", DefaultWidth: 64, RefParams: 217_645_378, Multiple: 32,
		TestWidth: 4, TestSizes: [][2]int64{{32, 32}, {64, 96}, {128, 128}, {512, 512}}, Twin: "dlink.DLinkNet50",
		Build: func(c Config) (nn.Module, error) { return NewDLinkNet(c, DLinkOptions{}), nil }})
}

// DLinkOptions are D-LinkNet's own constructor arguments.
type DLinkOptions struct {
	// Sigmoid ends the model in a sigmoid, as the reference's DinkNet50
	// does, though it is trained with cross-entropy on its output (one
	// cause of its collapse to background in the reference's comparison).
	// Off by default: the model returns logits.
	Sigmoid bool
}

// dlinkDBlock is D-LinkNet's D-block (the reference's Dblock_more_dilate)
// on c channels: "dilate1".."dilate5", cascaded conv3 of dilation 1, 2, 4,
// 8, 16 (with biases, zero at first), each followed by ReLU; the output is
// the input plus the five ReLU outputs.
type dlinkDBlock struct {
	nn.Base
	dilate [5]*nn.Conv2d
}

func newDLinkDBlock(c int64) *dlinkDBlock {
	d := &dlinkDBlock{}
	for i := range d.dilate {
		r := int64(1) << i
		d.dilate[i] = nn.Register(&d.Base, fmt.Sprintf("dilate%d", i+1), nn.NewConv2d(c, c, 3, nn.Padding(r), nn.Dilation(r)))
	}
	zeroBiases(&d.Base, "dlink", d.dilate[:]...)
	return d
}

func (d *dlinkDBlock) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		out, h := x, x
		for _, c := range d.dilate {
			h = c.Forward(h).Relu()
			out = out.Add(h)
		}
		return out
	})
}

// DLinkNet is the reference's D-LinkNet50 (model/dlink_jittor.py,
// DinkNet50): a ResNet-50 encoder (models/encoder, torchvision's layout)
// whose parts are registered under the reference's names "firstconv",
// "firstbn", "firstmaxpool", "encoder1".."encoder4"
// ("encoder3.5.conv3.weight"); "dblock", the D-block at 32w channels;
// "decoder4".."decoder1", LinkNet decoder blocks (block.LinkNetDecoder)
// 32w → 16w → 8w → 4w → 4w, each doubling the size, with encoder3..1 added
// after decoder4..2; then "finaldeconv1" (4×4 stride-2 transposed
// convolution 4w → 32, ReLU), "finalconv2" (conv3 32 → 32, ReLU) and
// "finalconv3" (conv3 to the classes). It returns logits at the input's
// size; the reference's sigmoid is DLinkOptions.Sigmoid.
//
// w is the width (64 in the reference: 256..2048 channels in the encoder);
// the head keeps the reference's 32 channels at every width (with w/2 it
// collapsed to background at width 8). Input sides must be multiples of 32; the smallest input
// is 32×32 (the D-block's larger dilations then reach only padding, as in
// the reference).
type DLinkNet struct {
	nn.Base
	enc      *encoder.ResNet
	dblock   *dlinkDBlock
	decoders [4]*block.LinkNetDecoder // decoder4 .. decoder1
	head     linknetHead
	sigmoid  bool
}

// NewDLinkNet builds D-LinkNet50 of width c.Width (64 in the reference;
// 217,645,378 parameters with 3 input channels and 2 classes).
func NewDLinkNet(c Config, o DLinkOptions) *DLinkNet {
	w := c.Width
	m := &DLinkNet{sigmoid: o.Sigmoid}
	b := &m.Base
	m.enc = linknetEncoder(b, encoder.NewResNet(50, encoder.InChannels(c.InChannels), encoder.Width(w)))
	m.dblock = nn.Register(b, "dblock", newDLinkDBlock(32*w))
	for i, io := range [][2]int64{{32 * w, 16 * w}, {16 * w, 8 * w}, {8 * w, 4 * w}, {4 * w, 4 * w}} {
		m.decoders[i] = nn.Register(b, fmt.Sprintf("decoder%d", 4-i), block.NewLinkNetDecoder(io[0], io[1]))
	}
	m.head = newLinknetHead(b, 4*w, linknetHeadWidth(w), c.Classes)
	return m
}

// FoldPairs implements nn.PairFolder for the encoder's stem,
// firstconv→firstbn, as CENet's.
func (m *DLinkNet) FoldPairs(fold func(*nn.Conv2d, nn.Module) nn.Module) error {
	return m.enc.FoldPairs(fold)
}

// Forward implements nn.Module: logits [N, classes, H, W] (probabilities
// with DLinkOptions.Sigmoid) for an input whose sides are multiples of 32.
func (m *DLinkNet) Forward(x *torch.Tensor) *torch.Tensor {
	if err := checkInputSides("dlink", x, 32, 32); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		e := m.enc.Split(x)
		if len(e) != 4 {
			return e[0]
		}
		d := m.decoders[0].Forward(m.dblock.Forward(e[3])).Add(e[2])
		d = m.decoders[1].Forward(d).Add(e[1])
		d = m.decoders[2].Forward(d).Add(e[0])
		y := m.head.forward(m.decoders[3].Forward(d))
		if m.sigmoid {
			y = y.Sigmoid()
		}
		return y
	})
}
