package models

import (
	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/models/encoder"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "hrnet", Description: "HRNet-W16, simplified (full-resolution stem, 4 parallel branches, branch-0 head)", DefaultWidth: 16, RefParams: 7_445_634, Multiple: 8,
		TestWidth: 4, TestSizes: [][2]int64{{8, 8}, {64, 96}, {128, 128}, {512, 512}}, Twin: "hrnet.HRNet",
		Build: func(c Config) (nn.Module, error) { return NewHRNet(c), nil }})
}

// hrnetStage is the reference's StageModule: "branches.i", branch i of
// c·2^i channels, an nn.Sequential of 4 BasicBlocks; then "fuse_layers.i.j"
// bringing branch j to output branch i: an empty Sequential (identity) for
// i = j; for j > i a 1×1 convolution to branch i's width, BatchNorm and
// nearest up-sampling by 2^(j-i) ("fuse_layers.i.j.0.weight"); for j < i,
// i-j stride-2 conv3 steps, each "fuse_layers.i.j.k" a Sequential of conv,
// BatchNorm and (except the last) ReLU ("fuse_layers.i.j.k.1.running_mean").
// Output branch i is the ReLU of the sum over j.
type hrnetStage struct {
	nn.Base
	branches []*nn.Sequential
	fuse     [][]*nn.Sequential // fuse[i][i] is empty, never called
}

func newHRNetStage(stage, outputs int, c int64) *hrnetStage {
	s := &hrnetStage{}
	branches := nn.Register(&s.Base, "branches", nn.NewList())
	for i := 0; i < stage; i++ {
		w := c << i
		seq := nn.Seq()
		for k := 0; k < 4; k++ {
			seq.Append(encoder.NewBasicBlock(w, w, 1, 1, nil))
		}
		branches.Append(seq)
		s.branches = append(s.branches, seq)
	}
	fuse := nn.Register(&s.Base, "fuse_layers", nn.NewList())
	for i := 0; i < outputs; i++ {
		row := nn.NewList()
		fuse.Append(row)
		var mods []*nn.Sequential
		for j := 0; j < stage; j++ {
			var f *nn.Sequential
			switch {
			case i == j:
				f = nn.Seq()
			case i < j:
				f = nn.Seq(nn.NewConv2d(c<<j, c<<i, 1, nn.NoBias()), nn.NewBatchNorm2d(c<<i),
					nn.NewUpsample(float64(int64(1)<<(j-i)), torch.Nearest))
			default:
				f = nn.Seq()
				for k := 0; k < i-j-1; k++ {
					f.Append(nn.Seq(block.CBR(c<<j, c<<j, 3, block.Stride(2), block.Padding(1), block.NoBias())...))
				}
				f.Append(nn.Seq(nn.NewConv2d(c<<j, c<<i, 3, nn.Stride(2), nn.Padding(1), nn.NoBias()), nn.NewBatchNorm2d(c<<i)))
			}
			row.Append(f)
			mods = append(mods, f)
		}
		s.fuse = append(s.fuse, mods)
	}
	return s
}

// forward maps the branches' inputs, highest resolution first, to the
// fused outputs.
func (s *hrnetStage) forward(xs []*torch.Tensor) []*torch.Tensor {
	return nn.FrameN(xs, func(xs []*torch.Tensor) []*torch.Tensor {
		ys := make([]*torch.Tensor, len(xs))
		for i, b := range s.branches {
			ys[i] = b.Forward(xs[i])
		}
		out := make([]*torch.Tensor, len(s.fuse))
		for i, row := range s.fuse {
			sum := ys[i]
			if i != 0 {
				sum = row[0].Forward(ys[0])
			}
			for j := 1; j < len(ys); j++ {
				if j == i {
					sum = sum.Add(ys[j])
				} else {
					sum = sum.Add(row[j].Forward(ys[j]))
				}
			}
			out[i] = nn.ReluInPlace(sum) // a sum the stage made
		}
		return out
	})
}

// HRNet is the reference's simplified HRNet-W16 (model/hrnet.py): "conv1",
// "bn1", "conv2", "bn2", two stride-1 conv3 + BatchNorm + ReLU at full
// resolution; "layer1", 4 Bottlenecks (the first with "downsample");
// "transition1" to branches of c at full resolution ("transition1.0.0") and
// 2c at 1/2 ("transition1.1.0.0", a Sequential inside a Sequential, as the
// reference nests it); "stage2" (1 module, 2 branches); "transition2" (two
// empty entries and a stride-2 step from branch 1 to 4c at 1/4,
// "transition2.2.0.0"); "stage3" (4 modules, 3 branches); "transition3"
// (to 8c at 1/8, "transition3.3.0.0"); "stage4" (3 modules, the last
// fusing to branch 0 only); "final_layer", a 1×1 convolution with bias on
// branch 0. Every module's keys: "stage3.1.branches.2.3.conv1.weight",
// "stage3.1.fuse_layers.2.0.1.0.weight".
//
// c is the width (16 in the reference). The stem and layer1 have 64
// channels (256 out of layer1) in the reference; here they scale as 4c, so
// a smaller width makes the full-resolution stem cheaper too. Input sides
// must be multiples of 8 (the deepest branch is at 1/8); the smallest
// input is 8×8.
type HRNet struct {
	nn.Base
	conv1, conv2 *nn.Conv2d
	bn1, bn2     nn.Module // BatchNorms (FoldedBatchNorms once fused: models/fuse.go)
	layer1       *nn.Sequential
	transition1  [2]*nn.Sequential
	transition2  *nn.Sequential // branch 1 → 2
	transition3  *nn.Sequential // branch 2 → 3
	stage2       []*hrnetStage
	stage3       []*hrnetStage
	stage4       []*hrnetStage
	finalLayer   *nn.Conv2d
}

// NewHRNet builds the simplified HRNet of width c.Width (16 in the
// reference; 7,445,634 parameters with 3 input channels and 2 classes).
func NewHRNet(c Config) *HRNet {
	w, s := c.Width, 4*c.Width
	m := &HRNet{}
	b := &m.Base
	m.conv1 = nn.Register(b, "conv1", nn.NewConv2d(c.InChannels, s, 3, nn.Padding(1), nn.NoBias()))
	m.bn1 = nn.Register(b, "bn1", nn.NewBatchNorm2d(s))
	m.conv2 = nn.Register(b, "conv2", nn.NewConv2d(s, s, 3, nn.Padding(1), nn.NoBias()))
	m.bn2 = nn.Register(b, "bn2", nn.NewBatchNorm2d(s))
	m.layer1 = nn.Register(b, "layer1", nn.Seq(encoder.NewBottleneck(s, s, 1, 1, nil)))
	for i := 0; i < 3; i++ {
		m.layer1.Append(encoder.NewBottleneck(4*s, s, 1, 1, nil))
	}
	step := func(in, out, stride int64) *nn.Sequential {
		return nn.Seq(block.CBR(in, out, 3, block.Stride(stride), block.Padding(1), block.NoBias())...)
	}
	m.transition1[0] = step(4*s, w, 1)
	m.transition1[1] = step(4*s, 2*w, 2)
	nn.Register(b, "transition1", nn.NewList(m.transition1[0], nn.Seq(m.transition1[1])))
	stage := func(name string, n, branches, last int) []*hrnetStage {
		list := nn.Register(b, name, nn.NewList())
		var out []*hrnetStage
		for i := 0; i < n; i++ {
			outputs := branches
			if i == n-1 {
				outputs = last
			}
			out = append(out, newHRNetStage(branches, outputs, w))
			list.Append(out[i])
		}
		return out
	}
	m.stage2 = stage("stage2", 1, 2, 2)
	m.transition2 = step(2*w, 4*w, 2)
	nn.Register(b, "transition2", nn.NewList(nn.Seq(), nn.Seq(), nn.Seq(m.transition2)))
	m.stage3 = stage("stage3", 4, 3, 3)
	m.transition3 = step(4*w, 8*w, 2)
	nn.Register(b, "transition3", nn.NewList(nn.Seq(), nn.Seq(), nn.Seq(), nn.Seq(m.transition3)))
	m.stage4 = stage("stage4", 3, 4, 1)
	m.finalLayer = nn.Register(b, "final_layer", nn.NewConv2d(w, c.Classes, 1))
	return m
}

// Forward implements nn.Module: logits [N, classes, H, W].
func (m *HRNet) Forward(x *torch.Tensor) *torch.Tensor {
	if err := checkInputSides("hrnet", x, 8, 8); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		x = nn.ReluInPlace(m.bn1.Forward(m.conv1.Forward(x)))
		x = nn.ReluInPlace(m.bn2.Forward(m.conv2.Forward(x)))
		x = m.layer1.Forward(x)
		xs := []*torch.Tensor{m.transition1[0].Forward(x), m.transition1[1].Forward(x)}
		for _, s := range m.stage2 {
			xs = s.forward(xs)
		}
		xs = append(xs, m.transition2.Forward(xs[1]))
		for _, s := range m.stage3 {
			xs = s.forward(xs)
		}
		xs = append(xs, m.transition3.Forward(xs[2]))
		for _, s := range m.stage4 {
			xs = s.forward(xs)
		}
		return m.finalLayer.Forward(xs[0])
	})
}
