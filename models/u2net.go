package models

import (
	"fmt"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "u2net", Description: "U²-Net (RSU7..RSU4F, six side outputs fused by 1×1; fused logits)", DefaultWidth: 64, RefParams: 44_023_718, Multiple: 1,
		TestWidth: 8, TestSizes: [][2]int64{{1, 1}, {37, 53}, {128, 128}, {512, 512}}, Twin: "u2net.U2Net",
		Build: func(c Config) (nn.Module, error) { return u2netBuild(NewU2Net(c)) }})
}

// u2netBuild returns a built U2Net as an nn.Module, or a nil interface
// (not a nil *U2Net) with the error.
func u2netBuild(m *U2Net, err error) (nn.Module, error) {
	if err != nil {
		return nil, err
	}
	return m, nil
}

// u2netRebnconv is the reference's REBNCONV: conv3 of dilation d (padding
// d, with bias) + BatchNorm + ReLU, keys "conv_s1", "bn_s1".
func u2netRebnconv(in, out, d int64) *block.ConvNormAct {
	return block.NewConvNormAct(in, out, 3, block.Names("conv_s1", "bn_s1"), block.Dilation(d))
}

// u2netUpLike resizes x bilinearly (align_corners False) to ref's height and
// width: the reference's _upsample_like.
func u2netUpLike(x, ref *torch.Tensor) *torch.Tensor {
	return torch.Resize(x, [2]int64{ref.Size(2), ref.Size(3)}, torch.Bilinear, false)
}

// u2netRSU is a residual U-block. RSU-L (L = 7, 6, 5, 4): "rebnconvin"
// in → out; an encoder "rebnconv1" .. "rebnconv{L-1}" (mid channels) with
// a ceil-mode 2×2 max pooling ("pool1" .. "pool{L-2}") between them; a
// dilation-2 "rebnconv{L}" on top; a decoder "rebnconv{L-1}d" ..
// "rebnconv1d" on [up-path, skip] concatenations, up-sampled bilinearly to
// each skip's size; the output is rebnconv1d's plus rebnconvin's. The flat
// RSU-4F has no pooling: its encoder has dilations 1, 2, 4, the top 8, the
// decoder 4, 2, 1. Shared by u2net and u2netp.
type u2netRSU struct {
	nn.Base
	flat bool
	in   *block.ConvNormAct
	enc  []*block.ConvNormAct // rebnconv1 .. rebnconv{L-1}
	top  *block.ConvNormAct   // rebnconv{L}
	dec  []*block.ConvNormAct // rebnconv{L-1}d .. rebnconv1d
	pool *nn.MaxPool2d
}

func newU2netRSU(levels int, flat bool, in, mid, out int64) *u2netRSU {
	r := &u2netRSU{flat: flat}
	b := &r.Base
	r.in = nn.Register(b, "rebnconvin", u2netRebnconv(in, out, 1))
	encDil := func(i int) int64 { return 1 }
	decDil := func(i int) int64 { return 1 }
	topDil := int64(2)
	if flat { // RSU-4F
		encDil = func(i int) int64 { return 1 << i }                // 1, 2, 4
		decDil = func(i int) int64 { return 1 << (levels - 2 - i) } // 4, 2, 1
		topDil = 1 << (levels - 1)                                  // 8
	}
	r.pool = nn.NewMaxPool2d(2, nn.Stride(2), nn.CeilMode())
	c := out
	for i := 0; i < levels-1; i++ {
		r.enc = append(r.enc, nn.Register(b, fmt.Sprintf("rebnconv%d", i+1), u2netRebnconv(c, mid, encDil(i))))
		c = mid
		if !flat && i < levels-2 {
			nn.Register(b, fmt.Sprintf("pool%d", i+1), nn.NewMaxPool2d(2, nn.Stride(2), nn.CeilMode()))
		}
	}
	r.top = nn.Register(b, fmt.Sprintf("rebnconv%d", levels), u2netRebnconv(mid, mid, topDil))
	for i := 0; i < levels-1; i++ {
		lvl := levels - 1 - i
		o := mid
		if lvl == 1 {
			o = out
		}
		r.dec = append(r.dec, nn.Register(b, fmt.Sprintf("rebnconv%dd", lvl), u2netRebnconv(2*mid, o, decDil(i))))
	}
	return r
}

func (r *u2netRSU) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		hxin := r.in.Forward(x)
		skips := make([]*torch.Tensor, len(r.enc))
		h := hxin
		for i, e := range r.enc {
			if i > 0 && !r.flat {
				h = r.pool.Forward(h)
			}
			h = e.Forward(h)
			skips[i] = h
		}
		d := r.top.Forward(h)
		for i, m := range r.dec {
			skip := skips[len(skips)-1-i]
			if i > 0 && !r.flat {
				d = u2netUpLike(d, skip)
			}
			d = m.Forward(torch.Cat([]*torch.Tensor{d, skip}, 1))
		}
		return d.Add(hxin)
	})
}

// u2netStage is one RSU's shape: levels (7..4), flat (RSU-4F), and its
// input, middle and output channels.
type u2netStage struct {
	levels       int
	flat         bool
	in, mid, out int64
}

// U2Net is U²-Net (Qin et al.), as the reference's U2NET and U2NETP:
// encoder "stage1" .. "stage6" (RSU7, RSU6, RSU5, RSU4, RSU4F, RSU4F) with
// ceil-mode 2×2 max pooling "pool12" .. "pool56" between them; decoder
// "stage5d" .. "stage1d" on [up-path, skip] concatenations, the up-path
// resized bilinearly (align_corners False, Jittor's default) to the skip's
// size; "side1" .. "side6" conv3 heads (with bias) on stage1d .. stage5d
// and stage6, resized to the input size; "outconv", a 1×1 fusing the six
// side logits. Forward returns the fused logits only, as the reference's
// forward does (its training loss on the side outputs is not part of the
// model). Keys such as "stage1.rebnconv1.conv_s1.weight",
// "stage1.rebnconv1.bn_s1.running_mean", "stage5d.rebnconv3d.conv_s1.bias",
// "side6.weight", "outconv.bias".
//
// Ceil-mode pooling and resizing to the skip's size make the model take any
// input size (Multiple 1; 1×1 runs, at batch 2 in training mode where
// BatchNorm needs two values per channel).
type U2Net struct {
	nn.Base
	enc   [6]*u2netRSU
	dec   [5]*u2netRSU // stage5d .. stage1d
	sides [6]*nn.Conv2d
	out   *nn.Conv2d
	pool  *nn.MaxPool2d
}

// NewU2Net builds U²-Net at base width c.Width (64: stage1's output;
// every channel count scales with it, so it must be a multiple of 4).
func NewU2Net(c Config) (*U2Net, error) {
	q := c.Width / 4
	if c.Width%4 != 0 {
		return nil, fmt.Errorf("width %d is not a multiple of 4", c.Width)
	}
	enc := [6]u2netStage{{7, false, c.InChannels, 2 * q, 4 * q}, {6, false, 4 * q, 2 * q, 8 * q}, {5, false, 8 * q, 4 * q, 16 * q},
		{4, false, 16 * q, 8 * q, 32 * q}, {4, true, 32 * q, 16 * q, 32 * q}, {4, true, 32 * q, 16 * q, 32 * q}}
	dec := [5]u2netStage{{4, true, 64 * q, 16 * q, 32 * q}, {4, false, 64 * q, 8 * q, 16 * q}, {5, false, 32 * q, 4 * q, 8 * q},
		{6, false, 16 * q, 2 * q, 4 * q}, {7, false, 8 * q, q, 4 * q}}
	return newU2Net(c, enc, dec), nil
}

func newU2Net(c Config, enc [6]u2netStage, dec [5]u2netStage) *U2Net {
	m := &U2Net{}
	b := &m.Base
	m.pool = nn.NewMaxPool2d(2, nn.Stride(2), nn.CeilMode())
	for i, s := range enc {
		m.enc[i] = nn.Register(b, fmt.Sprintf("stage%d", i+1), newU2netRSU(s.levels, s.flat, s.in, s.mid, s.out))
		if i < 5 {
			nn.Register(b, fmt.Sprintf("pool%d%d", i+1, i+2), nn.NewMaxPool2d(2, nn.Stride(2), nn.CeilMode()))
		}
	}
	for i, s := range dec {
		m.dec[i] = nn.Register(b, fmt.Sprintf("stage%dd", 5-i), newU2netRSU(s.levels, s.flat, s.in, s.mid, s.out))
	}
	// side1 .. side5 read stage1d .. stage5d, side6 stage6.
	sideIn := [6]int64{dec[4].out, dec[3].out, dec[2].out, dec[1].out, dec[0].out, enc[5].out}
	for i, in := range sideIn {
		m.sides[i] = nn.Register(b, fmt.Sprintf("side%d", i+1), nn.NewConv2d(in, c.Classes, 3, nn.Padding(1)))
	}
	m.out = nn.Register(b, "outconv", nn.NewConv2d(6*c.Classes, c.Classes, 1))
	return m
}

// Forward implements nn.Module: the fused logits [N, classes, H, W].
func (m *U2Net) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		var hx [6]*torch.Tensor
		h := x
		for i, e := range m.enc {
			if i > 0 {
				h = m.pool.Forward(h)
			}
			h = e.Forward(h)
			hx[i] = h
		}
		// hd[k] is stage{k+1}'s output on the decoder side (hd[5] = stage6).
		var hd [6]*torch.Tensor
		hd[5] = hx[5]
		d := hx[5]
		for i, s := range m.dec {
			lvl := 4 - i // 0-based level of the skip
			d = s.Forward(torch.Cat([]*torch.Tensor{u2netUpLike(d, hx[lvl]), hx[lvl]}, 1))
			hd[lvl] = d
		}
		sides := make([]*torch.Tensor, 6)
		for i, side := range m.sides {
			sides[i] = side.Forward(hd[i])
			if i > 0 {
				sides[i] = u2netUpLike(sides[i], sides[0])
			}
		}
		return m.out.Forward(torch.Cat(sides, 1))
	})
}
