package block

import (
	"strconv"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// ASPP is DeepLab's atrous spatial pyramid pooling, in the layout of this
// project's deeplab: branches "aspp1" (1×1) and "aspp2".."aspp4" (3×3 at
// the three rates), each an nn.Sequential of conv (no bias), BatchNorm,
// ReLU; "global_avg_pool" (adaptive average pooling to 1×1, then the same
// 1×1 CBR, broadcast back by bilinear resizing); the concatenation of the
// five fused by "conv1" (1×1, no bias), "bn1", ReLU and "dropout" (0.5).
type ASPP struct {
	nn.Base
	branches [4]*nn.Sequential
	pool     *nn.Sequential
	conv1    *nn.Conv2d
	bn1      nn.Module
	dropout  *nn.Dropout
}

// NewASPP maps in channels to out with dilation rates (6, 12, 18 at output
// stride 16; 12, 24, 36 at 8).
func NewASPP(in, out int64, rates [3]int64) *ASPP {
	a := &ASPP{}
	err := positive("ASPP", dim{"in", in}, dim{"out", out}, dim{"rate 1", rates[0]}, dim{"rate 2", rates[1]}, dim{"rate 3", rates[2]})
	if err != nil {
		failOn(&a.Base, err)
		return a
	}
	b := &a.Base
	a.branches[0] = nn.Register(b, "aspp1", nn.Seq(CBR(in, out, 1, NoBias())...))
	for i, d := range rates {
		a.branches[i+1] = nn.Register(b, "aspp"+strconv.Itoa(i+2), nn.Seq(CBR(in, out, 3, Dilation(d), NoBias())...))
	}
	a.pool = nn.Register(b, "global_avg_pool", nn.Seq(append([]nn.Module{nn.NewAdaptiveAvgPool2d(1, 1)}, CBR(in, out, 1, NoBias())...)...))
	a.conv1 = nn.Register(b, "conv1", nn.NewConv2d(5*out, out, 1, nn.NoBias()))
	a.bn1 = nn.Register(b, "bn1", BatchNorm(out))
	a.dropout = nn.Register(b, "dropout", nn.NewDropout(0.5))
	return a
}

// FoldPairs implements nn.PairFolder: conv1→bn1 (the branches are
// nn.Sequentials, which the tree pass folds).
func (a *ASPP) FoldPairs(fold func(*nn.Conv2d, nn.Module) nn.Module) error {
	if a.conv1 == nil {
		return a.Err()
	}
	a.bn1 = fold(a.conv1, a.bn1)
	return nil
}

// Forward implements nn.Module.
func (a *ASPP) Forward(x *torch.Tensor) *torch.Tensor {
	if a.conv1 == nil {
		return torch.FromError(a.Err())
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		// The branches die once concatenated.
		cat := nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
			// From 1×1 any resize is a broadcast; bilinear keeps the twin's op.
			g := torch.Resize(a.pool.Forward(x), [2]int64{x.Size(2), x.Size(3)}, torch.Bilinear, true)
			return torch.Cat([]*torch.Tensor{a.branches[0].Forward(x), a.branches[1].Forward(x), a.branches[2].Forward(x), a.branches[3].Forward(x), g}, 1)
		})
		y := nn.ReluInPlace(a.bn1.Forward(a.conv1.Forward(cat)))
		return a.dropout.Forward(y)
	})
}

// PyramidPool is one bin of PSPNet's pyramid pooling module, the
// reference's PyramidPool: "conv", an nn.Sequential of adaptive average
// pooling to bin×bin (libtorch's windows, which differ from Jittor's where
// the map is not a multiple of bin), 1×1 conv (no bias), BatchNorm, ReLU;
// then a bilinear resize (align_corners False) back to the input's size.
type PyramidPool struct {
	nn.Base
	conv *nn.Sequential
}

// NewPyramidPool maps in channels to out at one bin size.
func NewPyramidPool(in, out, bin int64) *PyramidPool {
	p := &PyramidPool{}
	if err := positive("PyramidPool", dim{"in", in}, dim{"out", out}, dim{"bin", bin}); err != nil {
		failOn(&p.Base, err)
		return p
	}
	p.conv = nn.Register(&p.Base, "conv", nn.Seq(append([]nn.Module{nn.NewAdaptiveAvgPool2d(bin, bin)}, CBR(in, out, 1, NoBias())...)...))
	return p
}

// Forward implements nn.Module.
func (p *PyramidPool) Forward(x *torch.Tensor) *torch.Tensor {
	if p.conv == nil {
		return torch.FromError(p.Err())
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		return torch.Resize(p.conv.Forward(x), [2]int64{x.Size(2), x.Size(3)}, torch.Bilinear, false)
	})
}

// Pyramid is PSPNet's pyramid pooling: the concatenation of x and each
// pool's output along channels (the reference registers its pools as
// layer5a..layer5d of the model, so they stay the model's children).
func Pyramid(x *torch.Tensor, pools ...*PyramidPool) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		parts := []*torch.Tensor{x}
		for _, p := range pools {
			parts = append(parts, p.Forward(x))
		}
		return torch.Cat(parts, 1)
	})
}
