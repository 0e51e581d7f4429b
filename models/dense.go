package models

import (
	"fmt"
	"strconv"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "dense", Description: "DenseUNet (additive dense levels of constant width)", DefaultWidth: 64, RefParams: 1_778_306, Multiple: 16,
		TestWidth: 8, TestSizes: [][2]int64{{16, 16}, {64, 96}, {128, 128}, {512, 512}}, Twin: "dense.DenseUNet",
		Build: func(c Config) (nn.Module, error) { return NewDenseUNet(c), nil }})
}

// denseConvs is the number of convolutions of each dense level (the
// reference's num_conv).
const denseConvs = 4

// checkInputSides rejects an input that is not [N, C, H, W] with sides
// that are multiples of multiple and at least min, with an error naming the
// model and the sizes it takes. Shared by dense, multires, scseunet, csnet
// and simple: a candidate for the registry once Spec has a MinSize.
func checkInputSides(name string, x *torch.Tensor, multiple, min int64) error {
	if err := x.Err(); err != nil {
		return err
	}
	if x.Dim() != 4 {
		return fmt.Errorf("models: %s: want a 4-D input [N, C, H, W], got %v", name, x.Shape())
	}
	if h, w := x.Size(2), x.Size(3); h < min || w < min || h%multiple != 0 || w%multiple != 0 {
		if min > multiple {
			return fmt.Errorf("models: %s takes a height and width that are multiples of %d and at least %d, got %dx%d", name, multiple, min, h, w)
		}
		return fmt.Errorf("models: %s takes a height and width that are multiples of %d, got %dx%d", name, multiple, h, w)
	}
	return nil
}

// denseLevel is the reference's Single_level_densenet: convolution i
// (conv3 with bias, "conv_list.i") takes the previous level output, adds
// the sum of every earlier output, the level's input included (additive
// rather than concatenated density), and goes through BatchNorm
// ("bn_list.i") and ReLU.
type denseLevel struct {
	nn.Base
	convs [denseConvs]*nn.Conv2d
	bns   [denseConvs]nn.Module // BatchNorms (bns[0] a FoldedBatchNorm once fused)
}

func newDenseLevel(f int64) *denseLevel {
	d := &denseLevel{}
	convs, bns := nn.NewList(), nn.NewList()
	for i := range d.convs {
		d.convs[i] = nn.NewConv2d(f, f, 3, nn.Padding(1))
		bn := nn.NewBatchNorm2d(f)
		d.bns[i] = bn
		convs.Append(d.convs[i])
		bns.Append(bn)
	}
	nn.Register(&d.Base, "conv_list", convs)
	nn.Register(&d.Base, "bn_list", bns)
	return d
}

// FoldPairs implements nn.PairFolder: conv_list.0→bn_list.0, the one pair
// whose convolution's output goes to its norm alone (the later
// convolutions' outputs are summed with the earlier outputs first).
func (d *denseLevel) FoldPairs(fold func(*nn.Conv2d, nn.Module) nn.Module) error {
	d.bns[0] = fold(d.convs[0], d.bns[0])
	return nil
}

func (d *denseLevel) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		outs := []*torch.Tensor{x}
		for i := range d.convs {
			t := d.convs[i].Forward(outs[i])
			for j := 0; j < i; j++ {
				t = t.Add(outs[j])
			}
			outs = append(outs, nn.ReluInPlace(d.bns[i].Forward(t)))
		}
		return outs[len(outs)-1]
	})
}

// DenseUNet is the reference's DenseUNet (after Merofine's DenseUnet_BraTs):
// a 1×1 convolution "conv1" to the base width, then a constant width at
// five levels: dense levels "d1".."d4" each followed by 2×2 max-pooling,
// "bottom", and on the way up "up4".."up1" (bilinear ×2 with
// align_corners False, concatenation [skip, up], DoubleConv 2·width →
// width, keys "up4.conv.double_conv.0.weight") each followed by a dense
// level "u4".."u1"; "outconv", 1×1, gives the logits.
//
// The reference builds four pooling modules, down1..down4, and calls down1
// at every level; pooling holds no state, so the layout is the same either
// way (no keys).
//
// Input sides must be multiples of 16 (16 is the smallest).
type DenseUNet struct {
	nn.Base
	conv1   *nn.Conv2d
	enc     [4]*denseLevel // d1..d4
	pool    *nn.Path       // down1, the one the reference calls
	bottom  *denseLevel
	ups     [4]*block.Up   // up4..up1
	dec     [4]*denseLevel // u4..u1
	outconv *nn.Conv2d
}

// NewDenseUNet builds a DenseUNet of width c.Width (64 in the reference;
// 1,778,306 parameters with 3 input channels and 2 classes).
func NewDenseUNet(c Config) *DenseUNet {
	f := c.Width
	m := &DenseUNet{}
	b := &m.Base
	m.conv1 = nn.Register(b, "conv1", nn.NewConv2d(c.InChannels, f, 1))
	for i := range m.enc {
		n := strconv.Itoa(i + 1)
		m.enc[i] = nn.Register(b, "d"+n, newDenseLevel(f))
		down := nn.Register(b, "down"+n, nn.NewPath("down_sample_layer", nn.NewMaxPool2d(2)))
		if i == 0 {
			m.pool = down
		}
	}
	m.bottom = nn.Register(b, "bottom", newDenseLevel(f))
	for k := range m.ups { // k=0 is up4, the deepest
		n := strconv.Itoa(4 - k)
		m.ups[k] = nn.Register(b, "up"+n, block.NewUp(2*f, f, f))
		m.dec[k] = nn.Register(b, "u"+n, newDenseLevel(f))
	}
	m.outconv = nn.Register(b, "outconv", nn.NewConv2d(f, c.Classes, 1))
	return m
}

// Forward implements nn.Module: logits [N, classes, H, W].
func (m *DenseUNet) Forward(x *torch.Tensor) *torch.Tensor {
	if err := checkInputSides("dense", x, 16, 16); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		var skips [4]*torch.Tensor
		h := m.conv1.Forward(x)
		for i, d := range m.enc {
			skips[i] = d.Forward(h)
			h = m.pool.Forward(skips[i])
		}
		h = m.bottom.Forward(h)
		for k := range m.ups {
			h = m.dec[k].Forward(m.ups[k].Merge(h, skips[3-k]))
		}
		return m.outconv.Forward(h)
	})
}
