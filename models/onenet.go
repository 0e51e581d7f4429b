package models

import (
	"fmt"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "onenet", Description: "OneNet (stride-4 patches, 16 dilated shifted group convs at 1/4, concat fusion)", DefaultWidth: 128, RefParams: 4_765_826, Multiple: onenetMultiple,
		TestWidth: 16, TestSizes: [][2]int64{{4, 4}, {36, 44}, {128, 128}, {512, 512}}, Twin: "onenet.OneNet",
		Build: NewOneNet})
}

// onenetMultiple is the stride of the 4×4 patch embedding and of the
// transposed convolution that undoes it.
const onenetMultiple = 4

// onenetDilations are the dilations of the 16 layers at 1/4, shared with
// LightNet.
var onenetDilations = [16]int64{1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 8, 16, 32}

// onenetTaps are the layers whose outputs OneNet concatenates and LightNet
// multiplies in, as the reference's x_list[2:3] + x_list[6:7] +
// x_list[11:13] + x_list[-4:]: layer 12 twice.
var onenetTaps = [8]int{2, 6, 11, 12, 12, 13, 14, 15}

// onenetShiftGroupConv is the reference's ShiftGroupConv: "conv", a
// grouped k×k convolution (no bias, dilation d, size-keeping padding) of
// inGroup·groups → outGroup·groups channels, "norm.norm" a GroupNorm of
// groups groups, ReLU, then the channels rolled by shift (torch.roll along
// dimension 1), which moves part of each group into the next.
// OneNet and LightNet share it. // candidate for models/block
type onenetShiftGroupConv struct {
	nn.Base
	conv  *nn.Conv2d
	norm  *nn.Path
	shift int64
}

func newOnenetShiftGroupConv(inGroup, outGroup, groups, shift, dilation, k int64) *onenetShiftGroupConv {
	s := &onenetShiftGroupConv{shift: shift}
	out := outGroup * groups
	s.conv = nn.Register(&s.Base, "conv", nn.NewConv2d(inGroup*groups, out, k,
		nn.Padding(dilation*(k/2)), nn.Dilation(dilation), nn.Groups(groups), nn.NoBias()))
	s.norm = nn.Register(&s.Base, "norm", nn.NewPath("norm", nn.NewGroupNorm(groups, out)))
	return s
}

func (s *onenetShiftGroupConv) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		return nn.ReluInPlace(s.norm.Forward(s.conv.Forward(x))).Roll([]int64{s.shift}, []int64{1})
	})
}

// onenetCheck rejects an input the stride-4 embedding cannot invert, naming
// the model.
func onenetCheck(name string, x *torch.Tensor) error {
	if err := x.Err(); err != nil {
		return err
	}
	if s := x.Shape(); len(s) != 4 || s[2] == 0 || s[3] == 0 || s[2]%onenetMultiple != 0 || s[3]%onenetMultiple != 0 {
		return fmt.Errorf("models: %s takes [N, C, H, W] with H and W multiples of %d (at least %d×%d), got %v",
			name, onenetMultiple, onenetMultiple, onenetMultiple, s)
	}
	return nil
}

// onenetLayers runs the 16 dilated layers in a chain and returns the
// outputs of each.
func onenetLayers(layers []*onenetShiftGroupConv, x *torch.Tensor) []*torch.Tensor {
	outs := make([]*torch.Tensor, len(layers))
	for i, l := range layers {
		x = l.Forward(x)
		outs[i] = x
	}
	return outs
}

func onenetWidth(name string, w, def int64) error {
	if w%16 != 0 {
		return fmt.Errorf("width %d is not a multiple of 16 (%s scales its group counts by width/%d)", w, name, def)
	}
	return nil
}

// OneNet is the reference's OneNet at base width w (128): "embed.conv", a
// 4×4 stride-4 convolution (with bias) to w channels; "map", three
// ShiftGroupConvs widening w → 2w → 4w → 8w (16 input and 32 output
// channels per group, shift 16); "layers", 16 ShiftGroupConvs at 8w (16
// channels per group, shift 8) with dilations 1,1,1,2,2,2,2,4,4,4,4,4,4,
// 8,16,32, chained; the outputs of layers 2, 6, 11, 12, 12, 13, 14, 15
// concatenated (64w channels); "fuse": "fuse.0" 1×1 (no bias) → 2w,
// "fuse.1.norm" GroupNorm (16 channels a group), ReLU, Dropout 0.1,
// "fuse.4.conv" a 4×4 stride-4 transposed convolution → classes.
//
// Width scales every channel count and keeps the channels per group, so
// the group counts scale with it (w/16, w/8, w/4 for map, w/2 for layers):
// w must be a multiple of 16. Input sides must be multiples of 4 (the
// smallest input is 4×4); others give an error naming the model.
type OneNet struct {
	nn.Base
	embed  *nn.Path
	mapper *nn.Sequential
	layers []*onenetShiftGroupConv // "layers.0" .. "layers.15"
	fuse   *nn.Sequential
}

// NewOneNet builds OneNet at base width c.Width.
func NewOneNet(c Config) (nn.Module, error) {
	w := c.Width
	if err := onenetWidth("onenet", w, 128); err != nil {
		return nil, err
	}
	m := &OneNet{}
	b := &m.Base
	m.embed = nn.Register(b, "embed", nn.NewPath("conv", nn.NewConv2d(c.InChannels, w, 4, nn.Stride(4))))
	m.mapper = nn.Register(b, "map", nn.Seq(
		newOnenetShiftGroupConv(16, 32, w/16, 16, 1, 3),
		newOnenetShiftGroupConv(16, 32, w/8, 16, 1, 3),
		newOnenetShiftGroupConv(16, 32, w/4, 16, 1, 3)))
	layers := nn.Register(b, "layers", nn.NewList())
	for _, d := range onenetDilations {
		m.layers = append(m.layers, newOnenetShiftGroupConv(16, 16, w/2, 8, d, 3))
		layers.Append(m.layers[len(m.layers)-1])
	}
	m.fuse = nn.Register(b, "fuse", nn.Seq(
		nn.NewConv2d(int64(len(onenetTaps))*8*w, 2*w, 1, nn.NoBias()),
		nn.NewPath("norm", nn.NewGroupNorm(w/8, 2*w)),
		nn.ReLUInPlace(),
		nn.NewDropout(0.1),
		nn.NewPath("conv", nn.NewConvTranspose2d(2*w, c.Classes, 4, nn.Stride(4)))))
	return m, nil
}

// Forward implements nn.Module: logits [N, classes, H, W].
func (m *OneNet) Forward(x *torch.Tensor) *torch.Tensor {
	if err := onenetCheck("onenet", x); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		outs := onenetLayers(m.layers, m.mapper.Forward(m.embed.Forward(x)))
		taps := make([]*torch.Tensor, len(onenetTaps))
		for i, k := range onenetTaps {
			taps[i] = outs[k]
		}
		return m.fuse.Forward(torch.Cat(taps, 1))
	})
}
