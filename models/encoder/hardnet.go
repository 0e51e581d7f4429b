package encoder

import (
	"fmt"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// hardnet68 is HarDNet-68's layout (the reference's arch=68): stem widths,
// each harmonic block's growth rate and layer count, the 1×1 transition
// width after it, and whether a 2×2 max-pooling follows.
var hardnet68 = struct {
	first   [2]int64
	growth  [5]int64
	layers  [5]int
	widths  [5]int64
	pool    [5]bool
	grmul   float64
	tapsAt  [4]int // indices in base after which the taps are taken
	reduces [4]int64
}{
	first:   [2]int64{32, 64},
	growth:  [5]int64{14, 16, 20, 40, 160},
	layers:  [5]int{8, 16, 16, 16, 4},
	widths:  [5]int64{128, 256, 320, 640, 1024},
	pool:    [5]bool{true, false, true, true, false},
	grmul:   1.7,
	tapsAt:  [4]int{4, 9, 12, 15},
	reduces: [4]int64{4, 8, 16, 32},
}

// hardnetScale scales a HarDNet-68 channel count or growth rate v to base
// width w (64 is the reference): max(1, round(v·w/64)), halves rounded up.
func hardnetScale(v, w int64) int64 { return max(1, (v*w+32)/64) }

// hardnetConvLayer is HarDNet's ConvLayer: "conv" (k×k, padding k/2, no
// bias), "norm" (BatchNorm), ReLU6.
func hardnetConvLayer(in, out, k, stride int64) *block.ConvNormAct {
	return block.NewConvNormAct(in, out, k, block.Stride(stride), block.Padding(k/2), block.NoBias(),
		block.Names("conv", "norm"), block.Act(block.ReLU6))
}

// HarDBlock is HarDNet's harmonic dense block: layer i (1-based, "layers.(i-1)",
// a ConvLayer conv3 + BatchNorm + ReLU6) takes the concatenation of the
// outputs of layers i-2^k for every 2^k dividing i (the block's input is
// layer 0), and has growth·grmul^(links-1) channels rounded to an even
// count; the block returns the concatenation of the odd layers and the
// last one.
type HarDBlock struct {
	nn.Base
	layers []*block.ConvNormAct
	links  [][]int
	out    int64
}

// hardBlockLink is the reference's get_link: layer's output channels, input
// channels and the layers it reads.
func hardBlockLink(layer int, base, growth int64, grmul float64) (out, in int64, link []int) {
	if layer == 0 {
		return base, 0, nil
	}
	ch := float64(growth)
	for i := 0; i < 10; i++ {
		dv := 1 << i
		if layer%dv == 0 {
			link = append(link, layer-dv)
			if i > 0 {
				ch *= grmul
			}
		}
	}
	out = int64(float64(int64(ch+1))/2) * 2
	for _, k := range link {
		c, _, _ := hardBlockLink(k, base, growth, grmul)
		in += c
	}
	return out, in, link
}

// NewHarDBlock makes a harmonic block of n layers on in channels.
func NewHarDBlock(in, growth int64, grmul float64, n int) *HarDBlock {
	h := &HarDBlock{}
	if in < 1 || growth < 1 || n < 1 || grmul <= 0 {
		failOn(&h.Base, fmt.Errorf("encoder: HarDBlock(%d, growth %d, grmul %g, %d layers): sizes must be positive", in, growth, grmul, n))
		return h
	}
	list := nn.Register(&h.Base, "layers", nn.NewList())
	for i := 0; i < n; i++ {
		out, inch, link := hardBlockLink(i+1, in, growth, grmul)
		h.links = append(h.links, link)
		l := hardnetConvLayer(inch, out, 3, 1)
		list.Append(l)
		h.layers = append(h.layers, l)
		if i%2 == 0 || i == n-1 {
			h.out += out
		}
	}
	return h
}

// OutChannels is the width of the block's output.
func (h *HarDBlock) OutChannels() int64 { return h.out }

// Forward implements nn.Module.
func (h *HarDBlock) Forward(x *torch.Tensor) *torch.Tensor {
	if len(h.layers) == 0 {
		return torch.FromError(h.Err())
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		outs := []*torch.Tensor{x}
		for i, l := range h.layers {
			in := outs[h.links[i][0]]
			if len(h.links[i]) > 1 {
				tin := make([]*torch.Tensor, len(h.links[i]))
				for j, k := range h.links[i] {
					tin[j] = outs[k]
				}
				in = torch.Cat(tin, 1)
			}
			outs = append(outs, l.Forward(in))
		}
		var sel []*torch.Tensor
		for i, o := range outs {
			if i == len(outs)-1 || i%2 == 1 {
				sel = append(sel, o)
			}
		}
		return torch.Cat(sel, 1)
	})
}

// HarDNet is HarDNet-68 without its classifier, as the reference builds it
// (model/HarDNet.py, arch=68, no depth-wise convolutions): "base", a
// ModuleList of 0 ConvLayer conv3 stride 2 to 32 channels, 1 ConvLayer
// conv3 to 64, 2 max-pooling 3×3 stride 2, then per stage a HarDBlock
// (growth 14, 16, 20, 40, 160; 8, 16, 16, 16, 4 layers; grmul 1.7), a 1×1
// ConvLayer to 128, 256, 320, 640, 1024 channels and, after stages 1, 3
// and 4, a 2×2 max-pooling: 16 entries. ConvLayer is conv (no bias) +
// BatchNorm + ReLU6 ("base.0.conv.weight", "base.3.layers.7.norm.running_mean",
// "base.4.conv.weight").
//
// The taps are the outputs of base.4, base.9, base.12 and base.15: 128
// channels at 1/4, 320 at 1/8, 640 at 1/16, 1024 at 1/32 (at the reference
// width). Width w scales every channel count and growth rate v to
// max(1, round(v·w/64)).
type HarDNet struct {
	nn.Base
	base       *nn.List
	mods       []nn.Module
	want       []bool
	channels   []int64
	reductions []int64
	parts      []nn.NamedModule
}

// NewHarDNet68 builds HarDNet-68 up to its deepest tap. Options:
// InChannels (3), Width (64, the second stem convolution's), Taps (0..3:
// 1/4, 1/8, 1/16, 1/32; default all).
func NewHarDNet68(opts ...Option) *HarDNet {
	h := &HarDNet{}
	const who = "HarDNet-68"
	c, err := configure(who, optInChannels|optWidth|optTaps, opts)
	if err == nil && c.set&optTaps == 0 {
		c.taps = []int{0, 1, 2, 3}
	}
	var last int
	if err == nil {
		h.want, last, err = checkTaps(who, c.taps, 4)
	}
	if err != nil {
		failOn(&h.Base, err)
		h.parts = failedParts(err)
		return h
	}
	a := hardnet68
	s := func(v int64) int64 { return hardnetScale(v, c.width) }
	h.reductions = a.reduces[:]
	for _, i := range []int{0, 2, 3, 4} {
		h.channels = append(h.channels, s(a.widths[i]))
	}
	h.base = nn.Register(&h.Base, "base", nn.NewList())
	h.parts = []nn.NamedModule{{Name: "base", Node: h.base}}
	add := func(m nn.Module) {
		h.base.Append(m)
		h.mods = append(h.mods, m)
	}
	add(hardnetConvLayer(c.in, s(a.first[0]), 3, 2))
	add(hardnetConvLayer(s(a.first[0]), s(a.first[1]), 3, 1))
	add(nn.NewMaxPool2d(3, nn.Stride(2), nn.Padding(1)))
	ch := s(a.first[1])
	for i := range a.layers {
		if len(h.mods) > a.tapsAt[last] {
			break
		}
		blk := NewHarDBlock(ch, s(a.growth[i]), a.grmul, a.layers[i])
		add(blk)
		add(hardnetConvLayer(blk.OutChannels(), s(a.widths[i]), 1, 1))
		ch = s(a.widths[i])
		if a.pool[i] && len(h.mods) <= a.tapsAt[last] {
			add(nn.NewMaxPool2d(2, nn.Stride(2)))
		}
	}
	return h
}

// Split returns the selected taps, shallow to deep.
func (h *HarDNet) Split(x *torch.Tensor) []*torch.Tensor {
	if h.base == nil {
		return []*torch.Tensor{torch.FromError(h.Err())}
	}
	return nn.FrameN([]*torch.Tensor{x}, func(xs []*torch.Tensor) []*torch.Tensor {
		var out []*torch.Tensor
		x, start := xs[0], 0
		for t, end := range hardnet68.tapsAt {
			if end >= len(h.mods) {
				break
			}
			// Each stretch between taps in its own frame: only its output
			// outlives it.
			x = nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
				for i := start; i <= end; i++ {
					x = h.mods[i].Forward(x)
				}
				return x
			})
			if h.want[t] {
				out = append(out, x)
			}
			start = end + 1
		}
		return out
	})
}

// Channels implements Encoder.
func (h *HarDNet) Channels() []int64 { return pick(h.channels, h.want) }

// Reductions implements Encoder.
func (h *HarDNet) Reductions() []int64 { return pick(h.reductions, h.want) }

// Parts implements Encoder: "base". After a failed construction it holds
// one module that carries the error.
func (h *HarDNet) Parts() []nn.NamedModule { return h.parts }
