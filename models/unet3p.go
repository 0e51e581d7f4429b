package models

import (
	"fmt"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "unet3p", Description: "UNet 3+ (full-scale skip connections, no deep supervision)", DefaultWidth: 64, RefParams: 26_969_538, Multiple: 16,
		TestWidth: 4, TestSizes: [][2]int64{{16, 16}, {64, 96}, {128, 128}, {512, 512}}, Twin: "unet3p.UNet3Plus",
		Build: func(c Config) (nn.Module, error) { return NewUNet3Plus(c), nil }})
}

// unet3pBranch is one of a decoder stage's five inputs: an optional
// resampling (max-pooling down or bilinear up to the stage's size), then
// conv3 + BatchNorm + ReLU to the stage's CatChannels. Its modules are the
// model's own children, under the reference's flat names ("h1_PT_hd4",
// "h1_PT_hd4_conv", "h1_PT_hd4_bn"), so the branch adds no name level.
type unet3pBranch struct {
	resample nn.Module // nil for the same-level "_Cat_" branch
	conv     *nn.Conv2d
	bn       nn.Module // a BatchNorm (a FoldedBatchNorm once fused)
}

func (b unet3pBranch) forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		if b.resample != nil {
			x = b.resample.Forward(x)
		}
		return nn.ReluInPlace(b.bn.Forward(b.conv.Forward(x)))
	})
}

// unet3pStage is decoder stage hd{d}: five branches, concatenated, fused by
// "conv{d}d_1" + "bn{d}d_1" + ReLU.
type unet3pStage struct {
	branches [5]unet3pBranch
	conv     *nn.Conv2d
	bn       nn.Module
}

// UNet3Plus is UNet 3+ (Huang et al.) as the reference's UNet3Plus builds
// it, without deep supervision. The encoder is DoubleConv conv1..conv5 at
// widths w, 2w, 4w, 8w, 16w with 2×2 max-pooling (maxpool1..4) between.
// Decoder stage hd{d}, d = 4, 3, 2, 1, has five full-scale branches of w
// channels each (conv3 + BN + ReLU): the encoder maps h1..h{d-1} max-pooled
// (ceil mode) down to its size ("h{e}_PT_hd{d}"), h{d} as it is
// ("h{d}_Cat_hd{d}"), and the decoder maps hd{d+1}..hd5 up-sampled
// bilinearly (align_corners=False, Jittor's default; "hd{k}_UT_hd{d}").
// Their concatenation, 5w channels, is fused by conv3 + BN + ReLU
// ("conv{d}d_1", "bn{d}d_1"); hd5 is conv5's output. The 1×1 head
// "outc.conv" maps hd1 to the logits.
//
// State-dict keys are the reference's flat attribute names:
// "conv1.double_conv.0.weight", "h1_PT_hd4_conv.weight",
// "h1_PT_hd4_bn.running_mean", "conv4d_1.weight", "bn4d_1.weight", ...,
// "outc.conv.bias", stage by stage (4d first) and branch by branch.
type UNet3Plus struct {
	nn.Base
	pools  [4]*nn.MaxPool2d
	enc    [5]*block.DoubleConv
	stages [4]unet3pStage // stages[0] is hd4, stages[3] hd1
	outc   *nn.Path
}

// NewUNet3Plus builds UNet 3+ of base width c.Width (64 in the reference;
// 26,969,538 parameters with 3 input channels and 2 classes).
func NewUNet3Plus(c Config) *UNet3Plus {
	m := &UNet3Plus{}
	b := &m.Base
	f := [5]int64{c.Width, 2 * c.Width, 4 * c.Width, 8 * c.Width, 16 * c.Width}
	in := c.InChannels
	for i := range m.enc {
		m.enc[i] = nn.Register(b, fmt.Sprintf("conv%d", i+1), block.NewDoubleConv(in, f[i], 0))
		if i < 4 {
			m.pools[i] = nn.Register(b, fmt.Sprintf("maxpool%d", i+1), nn.NewMaxPool2d(2))
		}
		in = f[i]
	}
	cat, up := f[0], 5*f[0] // CatChannels, UpChannels
	for s := range m.stages {
		d := 4 - s
		st := &m.stages[s]
		for e := 1; e <= 5; e++ {
			var name string
			var br unet3pBranch
			cin := f[e-1]
			switch {
			case e < d:
				name = fmt.Sprintf("h%d_PT_hd%d", e, d)
				k := int64(1) << (d - e)
				br.resample = nn.Register(b, name, nn.NewMaxPool2d(k, nn.CeilMode()))
			case e == d:
				name = fmt.Sprintf("h%d_Cat_hd%d", e, d)
			default:
				name = fmt.Sprintf("hd%d_UT_hd%d", e, d)
				br.resample = nn.Register(b, name, nn.NewUpsample(float64(int64(1)<<(e-d)), torch.Bilinear))
				if e < 5 {
					cin = up
				}
			}
			br.conv = nn.Register(b, name+"_conv", nn.NewConv2d(cin, cat, 3, nn.Padding(1)))
			br.bn = nn.Register(b, name+"_bn", nn.NewBatchNorm2d(cat))
			st.branches[e-1] = br
		}
		st.conv = nn.Register(b, fmt.Sprintf("conv%dd_1", d), nn.NewConv2d(up, up, 3, nn.Padding(1)))
		st.bn = nn.Register(b, fmt.Sprintf("bn%dd_1", d), nn.NewBatchNorm2d(up))
	}
	m.outc = nn.Register(b, "outc", nn.NewPath("conv", nn.NewConv2d(up, c.Classes, 1)))
	return m
}

// FoldPairs implements nn.PairFolder: each branch's conv→bn and each
// stage's fusing conv{d}d_1→bn{d}d_1.
func (m *UNet3Plus) FoldPairs(fold func(*nn.Conv2d, nn.Module) nn.Module) error {
	for s := range m.stages {
		st := &m.stages[s]
		for i := range st.branches {
			br := &st.branches[i]
			br.bn = fold(br.conv, br.bn)
		}
		st.bn = fold(st.conv, st.bn)
	}
	return nil
}

// stage computes hd{d} from its five inputs (h1..h{d}, hd{d+1}..hd5) in a
// frame, so the branches' outputs and their concatenation die with it.
func (m *UNet3Plus) stage(st *unet3pStage, in []*torch.Tensor) *torch.Tensor {
	return nn.FrameN(in, func(xs []*torch.Tensor) []*torch.Tensor {
		ys := make([]*torch.Tensor, len(xs))
		for i, x := range xs {
			ys[i] = st.branches[i].forward(x)
		}
		return []*torch.Tensor{nn.ReluInPlace(st.bn.Forward(st.conv.Forward(torch.Cat(ys, 1))))}
	})[0]
}

// Forward implements nn.Module: logits [N, classes, H, W].
func (m *UNet3Plus) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		var maps [5]*torch.Tensor // h1..h4, hd5; each hd{d} replaces h{d} once its stage has run
		h := x
		for i, e := range m.enc {
			if i > 0 {
				h = m.pools[i-1].Forward(h)
			}
			h = e.Forward(h)
			maps[i] = h
		}
		for s := range m.stages {
			d := 4 - s
			maps[d-1] = m.stage(&m.stages[s], maps[:])
		}
		return m.outc.Forward(maps[0])
	})
}
