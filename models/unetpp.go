package models

import (
	"fmt"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "unetpp", Description: "UNet++ (nested U-Net, bilinear up-sampling, no deep supervision)", DefaultWidth: 64, RefParams: 36_629_698, Multiple: 16,
		TestWidth: 4, TestSizes: [][2]int64{{16, 16}, {64, 96}, {128, 128}, {512, 512}}, Twin: "unetpp.UNetPP",
		Build: func(c Config) (nn.Module, error) { return NewUNetPP(c), nil }})
}

// unetppLevels is the depth of the nest: levels 0..4 at 1, 1/2 ... 1/16.
const unetppLevels = 5

// UNetPP is UNet++ (Zhou et al.), the reference's NestedUNet, and the
// frame of its "big" variant (NewUNetPPBig). Node x{i}_{j} of the nest (level
// i at 1/2^i, column j) is DoubleConv "conv{i}_{j}": column 0 is the encoder
// (conv{i}_0 on the max-pooled x{i-1}_0), and for j ≥ 1
//
//	x{i}_{j} = conv{i}_{j}([x{i}_0, ..., x{i}_{j-1}, up(x{i+1}_{j-1})])
//
// with widths w, 2w, 4w, 8w, 16w by level. The 1×1 head "final" maps x0_4
// to the logits (no deep supervision). In UNetPP the up-sampling is one
// bilinear ×2 without parameters (align_corners=False, Jittor's default).
//
// State-dict keys follow the reference: "conv0_0.double_conv.0.weight" ...
// "conv0_4.double_conv.5.num_batches_tracked", "final.weight", the nodes
// registered column by column (conv0_0..conv4_0, conv0_1..conv3_1, ...,
// conv0_4).
type UNetPP struct {
	nn.Base
	pool *nn.MaxPool2d
	// up[i][j] up-samples x{i}_{j} (i ≥ 1, i+j ≤ 3) for node x{i-1}_{j+1}.
	up    [unetppLevels][unetppLevels - 1]nn.Module
	conv  [unetppLevels][unetppLevels]*block.DoubleConv
	final *nn.Conv2d
}

// NewUNetPP builds UNet++ of base width c.Width (64 in the reference;
// 36,629,698 parameters with 3 input channels and 2 classes).
func NewUNetPP(c Config) *UNetPP {
	m := &UNetPP{}
	m.pool = nn.Register(&m.Base, "pool", nn.NewMaxPool2d(2))
	up := nn.Register(&m.Base, "Up", nn.NewUpsample(2, torch.Bilinear))
	for i := 1; i < unetppLevels; i++ {
		for j := 0; i+j < unetppLevels; j++ {
			m.up[i][j] = up
		}
	}
	m.registerNest(c)
	return m
}

// unetppWidths are the nest's widths by level.
func unetppWidths(w int64) [unetppLevels]int64 {
	return [unetppLevels]int64{w, 2 * w, 4 * w, 8 * w, 16 * w}
}

// registerNest adds the nodes conv{i}_{j}, column by column, and the head
// "final", in the reference's order.
func (m *UNetPP) registerNest(c Config) {
	f := unetppWidths(c.Width)
	for j := 0; j < unetppLevels; j++ {
		for i := 0; i+j < unetppLevels; i++ {
			in := c.InChannels
			switch {
			case j > 0:
				in = int64(j)*f[i] + f[i+1]
			case i > 0:
				in = f[i-1]
			}
			m.conv[i][j] = nn.Register(&m.Base, fmt.Sprintf("conv%d_%d", i, j), block.NewDoubleConv(in, f[i], f[i]))
		}
	}
	m.final = nn.Register(&m.Base, "final", nn.NewConv2d(f[0], c.Classes, 1))
}

// node computes x{i}_{j} (j ≥ 1) from the level's earlier columns and the
// node below, in a frame: the up-sampled map and the concatenation die with
// it (autograd keeps what the convolution's backward needs).
func (m *UNetPP) node(i, j int, same []*torch.Tensor, below *torch.Tensor) *torch.Tensor {
	in := append(append([]*torch.Tensor(nil), same...), below)
	return nn.FrameN(in, func(xs []*torch.Tensor) []*torch.Tensor {
		n := len(xs) - 1
		cat := append(append([]*torch.Tensor(nil), xs[:n]...), m.up[i+1][j-1].Forward(xs[n]))
		return []*torch.Tensor{m.conv[i][j].Forward(torch.Cat(cat, 1))}
	})[0]
}

// Forward implements nn.Module: logits [N, classes, H, W].
func (m *UNetPP) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		var n [unetppLevels][]*torch.Tensor // n[i][j] is x{i}_{j}
		h := x
		for i := 0; i < unetppLevels; i++ {
			if i > 0 {
				h = m.pool.Forward(h)
			}
			h = m.conv[i][0].Forward(h)
			n[i] = append(n[i], h)
		}
		for j := 1; j < unetppLevels; j++ {
			for i := 0; i+j < unetppLevels; i++ {
				n[i] = append(n[i], m.node(i, j, n[i][:j], n[i+1][j-1]))
			}
		}
		return m.final.Forward(n[0][unetppLevels-1])
	})
}
