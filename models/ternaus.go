package models

import (
	"fmt"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/models/encoder"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// ternausMultiple is TernausNet's input multiple: five poolings before the
// centre block, which doubles back to 1/16.
const ternausMultiple = 32

func init() {
	Register(Spec{Name: "ternaus", Description: "TernausNet UNet16 (VGG16 encoder, bilinear decoder)", DefaultWidth: 64, RefParams: 29_306_498,
		Multiple:  ternausMultiple,
		TestWidth: 4, TestSizes: [][2]int64{{32, 32}, {64, 96}, {128, 128}, {512, 512}}, Twin: "ternaus.TernausNet",
		Build: func(c Config) (nn.Module, error) {
			if c.Width%2 != 0 {
				return nil, fmt.Errorf("width %d is not even (TernausNet's num_filters is width/2)", c.Width)
			}
			return NewTernausNet(c), nil
		}})
}

// ternausDecoder is the reference's DecoderBlockV2 with is_deconv=False
// (its default): "block", a Sequential of a bilinear ×2 (index 0,
// align_corners False as Jittor's interpolate) and two ConvRelu (1 and 2:
// conv3 with bias, ReLU; keys "block.1.conv.weight").
type ternausDecoder struct {
	nn.Base
	block *nn.Sequential
}

func newTernausDecoder(in, mid, out int64) *ternausDecoder {
	d := &ternausDecoder{}
	d.block = nn.Register(&d.Base, "block", nn.Seq(nn.NewUpsample(2, torch.Bilinear), ternausConvRelu(in, mid), ternausConvRelu(mid, out)))
	return d
}

func (d *ternausDecoder) Forward(x *torch.Tensor) *torch.Tensor { return d.block.Forward(x) }

// ternausConvRelu is the reference's ConvRelu: "conv" (conv3 with bias)
// and its ReLU ("activation" in the reference; no keys either way). The
// ReLU works in place on the convolution's output, which the convolution's
// backward does not need.
func ternausConvRelu(in, out int64) *block.ConvNormAct {
	return block.NewConvNormAct(in, out, 3, block.Padding(1), block.Norm(nil))
}

// TernausNet is TernausNet's UNet16 (the reference's model/TernausNet.py,
// bilinear decoder): VGG16's convolutional part without BatchNorm as
// "encoder" (encoder.NewVGG16, torchvision's features.N layout, keys
// "encoder.0.weight" ... "encoder.28.bias"); "pool", 2×2 max-pooling;
// "relu"; conv1..conv5, the encoder's five stages viewed as Sequentials of
// its convolutions and the one shared ReLU (conv1 = [encoder.0, relu,
// encoder.2, relu], ..., conv5 = [encoder.24, relu, encoder.26, relu,
// encoder.28, relu]); "center" and "dec5".."dec2", each a bilinear ×2 then
// two conv3 + ReLU (ternausDecoder); "dec1", conv3 + ReLU; "final", a 1×1
// conv to the classes. Each decoder level takes [up-path, skip]
// concatenated.
//
// Shared modules: conv1..conv5 hold the same convolutions as "encoder".
// The state dict lists every alias, as PyTorch's state_dict() does for the
// reference's layout: "encoder.0.weight" and "conv1.0.weight" are the same
// tensor under two keys (encoder.5 is conv2.0, encoder.10 is conv3.0, ...,
// encoder.28 is conv5.4), in PyTorch's order (encoder.*, conv1.* ...
// conv5.*, center.*, dec5.* ... final.*). So a checkpoint loads strictly,
// with no key mapping, into a PyTorch port that keeps the reference's
// attributes (internal/oracle/py/twins/ternaus.py), and one written by its
// state_dict() loads strictly here; on loading, the later alias is copied
// last (equal values in any file a shared tensor was saved from).
// Parameters are counted and trained once, under their first name
// ("encoder.N", as PyTorch's named_parameters()): 29,306,498 at the
// reference width with 3 input channels and 2 classes. A file that names
// each tensor once (safetensors' save_model drops the conv1..conv5 keys)
// loads here non-strictly (models.LoadPretrained).
//
// w is the width, VGG16's first stage (64 in the reference: stages 64,
// 128, 256, 512, 512); the decoder's num_filters is w/2 (32), so w is
// even. Input sides are multiples of 32, from 32.
//
// Initialisation: every convolution Kaiming-normal (fan out, gain √2) with
// zero biases, as torchvision initialises VGG. The reference starts from
// its framework's default (or ImageNet weights); with PyTorch's default
// (variance 1/(3·fan in)) the signal shrinks about sixfold in variance per
// layer through the 24 unnormalised convolutions, the logits barely depend
// on the input, and training collapses to all-background (Dice 0 after 8
// epochs of the porting protocol).
type TernausNet struct {
	nn.Base
	pool                              *nn.MaxPool2d
	encoder                           *encoder.VGG
	relu                              nn.Module
	conv1, conv2, conv3, conv4, conv5 *nn.Sequential
	center, dec5, dec4, dec3, dec2    *ternausDecoder
	dec1                              *block.ConvNormAct
	final                             *nn.Conv2d
}

// NewTernausNet builds TernausNet UNet16 of width c.Width (64 in the
// reference; an odd width gives num_filters w/2 rounded down, New refuses
// it).
func NewTernausNet(c Config) *TernausNet {
	w, nf := c.Width, c.Width/2
	m := &TernausNet{}
	b := &m.Base
	m.pool = nn.Register(b, "pool", nn.NewMaxPool2d(2))
	vgg := encoder.NewVGG16(encoder.InChannels(c.InChannels), encoder.Width(w))
	if err := vgg.Err(); err != nil {
		b.RegisterModule("encoder", vgg)
		return m
	}
	m.encoder = vgg
	features := vgg.Features()
	b.RegisterModule("encoder", features)
	m.relu = nn.Register(b, "relu", nn.ReLUInPlace())
	view := func(idx ...int) *nn.Sequential {
		s := nn.Seq()
		for _, i := range idx {
			s.Append(features.At(i)).Append(m.relu)
		}
		return s
	}
	m.conv1 = nn.Register(b, "conv1", view(0, 2))
	m.conv2 = nn.Register(b, "conv2", view(5, 7))
	m.conv3 = nn.Register(b, "conv3", view(10, 12, 14))
	m.conv4 = nn.Register(b, "conv4", view(17, 19, 21))
	m.conv5 = nn.Register(b, "conv5", view(24, 26, 28))
	m.center = nn.Register(b, "center", newTernausDecoder(8*w, 16*nf, 8*nf))
	m.dec5 = nn.Register(b, "dec5", newTernausDecoder(8*w+8*nf, 16*nf, 8*nf))
	m.dec4 = nn.Register(b, "dec4", newTernausDecoder(8*w+8*nf, 16*nf, 8*nf))
	m.dec3 = nn.Register(b, "dec3", newTernausDecoder(4*w+8*nf, 8*nf, 2*nf))
	m.dec2 = nn.Register(b, "dec2", newTernausDecoder(2*w+2*nf, 4*nf, nf))
	m.dec1 = nn.Register(b, "dec1", ternausConvRelu(w+nf, nf))
	m.final = nn.Register(b, "final", nn.NewConv2d(nf, c.Classes, 1))
	if m.Err() == nil {
		heInit("ternaus", b, nn.FanOut)
	}
	return m
}

// Forward implements nn.Module: logits [N, classes, H, W] for an input
// whose sides are multiples of 32.
func (m *TernausNet) Forward(x *torch.Tensor) *torch.Tensor {
	if m.encoder == nil {
		return torch.FromError(fmt.Errorf("models: ternaus: %w", m.Err()))
	}
	if err := checkInputSides("ternaus", x, ternausMultiple, ternausMultiple); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		cat := func(a, b *torch.Tensor) *torch.Tensor { return torch.Cat([]*torch.Tensor{a, b}, 1) }
		conv1 := m.conv1.Forward(x)
		conv2 := m.conv2.Forward(m.pool.Forward(conv1))
		conv3 := m.conv3.Forward(m.pool.Forward(conv2))
		conv4 := m.conv4.Forward(m.pool.Forward(conv3))
		conv5 := m.conv5.Forward(m.pool.Forward(conv4))
		center := m.center.Forward(m.pool.Forward(conv5))
		dec5 := m.dec5.Forward(cat(center, conv5))
		dec4 := m.dec4.Forward(cat(dec5, conv4))
		dec3 := m.dec3.Forward(cat(dec4, conv3))
		dec2 := m.dec2.Forward(cat(dec3, conv2))
		return m.final.Forward(m.dec1.Forward(cat(dec2, conv1)))
	})
}
