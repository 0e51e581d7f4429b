package block

import (
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// CBR is a k×k convolution, its normalisation and its activation as
// consecutive modules, to splice into an nn.Sequential: in
// nn.Seq(block.CBR(...)...) their keys are "0.weight", "1.running_mean",
// as PyTorch's nn.Sequential(conv, bn, relu) names them. The convolution
// keeps the size at stride 1 unless Padding says otherwise, and has a bias
// unless NoBias.
//
// Options: Stride, Padding, Dilation, Groups, Kernel, NoBias, Norm (nil:
// none), Act (nil: none).
func CBR(in, out, k int64, opts ...Option) []nn.Module {
	c, err := configure("CBR", convOpts, opts)
	if err == nil {
		err = positive("CBR", dim{"in", in}, dim{"out", out}, dim{"kernel", k})
	}
	if err != nil {
		return []nn.Module{fail(err)}
	}
	return c.cbr(in, out, k)
}

func (c config) cbr(in, out, k int64) []nn.Module {
	mods := []nn.Module{nn.NewConv2d(in, out, k, c.convOptions(k)...)}
	if c.norm != nil {
		mods = append(mods, c.norm(out))
	}
	if c.act != nil {
		mods = append(mods, c.act())
	}
	return mods
}

// ConvNormAct is CBR as named children rather than Sequential indices:
// "conv" and "bn" by default, set with Names (HarDNet's ConvLayer: "conv",
// "norm"; U²-Net's REBNCONV: "conv_s1", "bn_s1"), and the activation as
// "relu" (no keys). With Act(nil) it is RFB's BasicConv2d.
type ConvNormAct struct {
	nn.Base
	Conv *nn.Conv2d
	Norm nn.Module // nil with Norm(nil)
	Act  nn.Module // nil with Act(nil)
}

// NewConvNormAct makes the block. Options: those of CBR, and Names.
func NewConvNormAct(in, out, k int64, opts ...Option) *ConvNormAct {
	m := &ConvNormAct{}
	c, err := configure("ConvNormAct", convOpts|optNameSet, opts)
	if err == nil {
		err = positive("ConvNormAct", dim{"in", in}, dim{"out", out}, dim{"kernel", k})
	}
	if err != nil {
		failOn(&m.Base, err)
		return m
	}
	m.Conv = nn.Register(&m.Base, c.convName, nn.NewConv2d(in, out, k, c.convOptions(k)...))
	if c.norm != nil {
		m.Norm = nn.Register(&m.Base, c.normName, c.norm(out))
	}
	if c.act != nil {
		m.Act = nn.Register(&m.Base, "relu", c.act())
	}
	return m
}

// Forward implements nn.Module.
func (m *ConvNormAct) Forward(x *torch.Tensor) *torch.Tensor {
	if m.Conv == nil {
		return torch.FromError(m.Err())
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		y := m.Conv.Forward(x)
		if m.Norm != nil {
			y = m.Norm.Forward(y)
		}
		if m.Act != nil {
			y = m.Act.Forward(y)
		}
		return y
	})
}

// DoubleCBR is (conv3 + norm + activation) × 2, in → mid → out, as six
// consecutive modules for a Sequential (Attention U-Net's conv_block is
// nn.NewPath("conv", nn.Seq(DoubleCBR(...)...))). Options: NoBias, Norm,
// Act.
func DoubleCBR(in, mid, out int64, opts ...Option) []nn.Module {
	c, err := configure("DoubleCBR", optNoBias|optNorm|optAct, opts)
	if err == nil {
		err = positive("DoubleCBR", dim{"in", in}, dim{"mid", mid}, dim{"out", out})
	}
	if err != nil {
		return []nn.Module{fail(err)}
	}
	return append(c.cbr(in, mid, 3), c.cbr(mid, out, 3)...)
}

// DoubleConv is the U-Net family's DoubleConv: DoubleCBR as child
// "double_conv", keys "double_conv.0.weight" ... "double_conv.5.running_var"
// (convolutions with bias, as the reference).
type DoubleConv struct {
	nn.Base
	seq *nn.Sequential
}

// NewDoubleConv maps in → mid → out channels; mid 0 means out, as the
// reference's DoubleConv(in, out, mid=None). Options: NoBias, Norm, Act.
func NewDoubleConv(in, out, mid int64, opts ...Option) *DoubleConv {
	if mid == 0 {
		mid = out
	}
	d := &DoubleConv{}
	mods := DoubleCBR(in, mid, out, opts...)
	if f, ok := mods[0].(*failed); ok {
		failOn(&d.Base, errorf("DoubleConv", "%v", f.err))
		return d
	}
	d.seq = nn.Register(&d.Base, "double_conv", nn.Seq(mods...))
	return d
}

// Forward implements nn.Module.
func (d *DoubleConv) Forward(x *torch.Tensor) *torch.Tensor {
	if d.seq == nil {
		return torch.FromError(d.Err())
	}
	return d.seq.Forward(x)
}

// Up is the reference U-Nets' bilinear up-sampling block: "up" doubles x
// (align_corners False, Jittor's default, unless AlignCorners), pads it to
// the skip's size where they differ, and "conv", a DoubleConv(in, out,
// mid), maps the concatenation [skip, up] of in channels to out.
type Up struct {
	nn.Base
	up   *nn.Upsample
	conv *DoubleConv
}

// NewUp makes the block; in is the concatenated channel count. Options:
// AlignCorners, and DoubleConv's (NoBias, Norm, Act).
func NewUp(in, out, mid int64, opts ...Option) *Up {
	u := &Up{}
	c, err := configure("Up", optAlignCorners|optNoBias|optNorm|optAct, opts)
	if err == nil {
		err = positive("Up", dim{"in", in}, dim{"out", out}, dim{"mid", mid})
	}
	if err != nil {
		failOn(&u.Base, err)
		return u
	}
	var up []nn.Option
	if c.alignCorners {
		up = append(up, nn.AlignCorners())
	}
	var rest []Option
	for _, o := range opts {
		if o.kind != optAlignCorners {
			rest = append(rest, o)
		}
	}
	u.up = nn.Register(&u.Base, "up", nn.NewUpsample(2, torch.Bilinear, up...))
	u.conv = nn.Register(&u.Base, "conv", NewDoubleConv(in, out, mid, rest...))
	return u
}

// Merge up-samples x, concatenates [skip, x] and applies the DoubleConv.
func (u *Up) Merge(xs ...*torch.Tensor) *torch.Tensor {
	if len(xs) != 2 {
		return torch.FromError(errorf("Up", "Merge takes (x, skip), got %d inputs", len(xs)))
	}
	if u.conv == nil {
		return torch.FromError(u.Err())
	}
	return nn.Frame2(xs[0], xs[1], func(x, skip *torch.Tensor) *torch.Tensor {
		// The concatenation in a frame of its own: the up-sampled map dies
		// before the convolutions run.
		cat := nn.Frame2(x, skip, func(x, skip *torch.Tensor) *torch.Tensor {
			return torch.Cat([]*torch.Tensor{skip, PadTo(u.up.Forward(x), skip)}, 1)
		})
		return u.conv.Forward(cat)
	})
}

// PadTo zero-pads x's last two dimensions to ref's, centred (the extra
// pixel at the end) as milesial's U-Net does. Where the sizes match the
// result is a new handle to x (an Alias).
func PadTo(x, ref *torch.Tensor) *torch.Tensor {
	if err := torch.FirstErr(x, ref); err != nil {
		return torch.FromError(err)
	}
	dy, dx := ref.Size(2)-x.Size(2), ref.Size(3)-x.Size(3)
	if dy == 0 && dx == 0 {
		return x.Alias()
	}
	return x.Pad([]int64{dx / 2, dx - dx/2, dy / 2, dy - dy/2}, torch.PadConstant, 0)
}
