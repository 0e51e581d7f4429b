package block

import (
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// LinkNetDecoder is LinkNet's decoder block, as D-LinkNet and CE-Net use
// it: "conv1" 1×1 in → in/4, "norm1", ReLU; "deconv2" a 3×3 transposed
// convolution of stride 2 (padding 1, output padding 1) that doubles the
// size, "norm2", ReLU; "conv3" 1×1 → filters, "norm3", ReLU. Convolutions
// have biases; the norms are BatchNorm.
type LinkNetDecoder struct {
	nn.Base
	conv1, conv3        *nn.Conv2d
	deconv2             *nn.ConvTranspose2d
	norm1, norm2, norm3 nn.Module
}

// NewLinkNetDecoder maps in channels (a multiple of 4) to filters at twice
// the size.
func NewLinkNetDecoder(in, filters int64) *LinkNetDecoder {
	d := &LinkNetDecoder{}
	err := positive("LinkNetDecoder", dim{"in", in}, dim{"filters", filters})
	if err == nil && in%4 != 0 {
		err = errorf("LinkNetDecoder", "in channels %d are not a multiple of 4", in)
	}
	if err != nil {
		failOn(&d.Base, err)
		return d
	}
	mid := in / 4
	b := &d.Base
	d.conv1 = nn.Register(b, "conv1", nn.NewConv2d(in, mid, 1))
	d.norm1 = nn.Register(b, "norm1", BatchNorm(mid))
	d.deconv2 = nn.Register(b, "deconv2", nn.NewConvTranspose2d(mid, mid, 3, nn.Stride(2), nn.Padding(1), nn.OutputPadding(1)))
	d.norm2 = nn.Register(b, "norm2", BatchNorm(mid))
	d.conv3 = nn.Register(b, "conv3", nn.NewConv2d(mid, filters, 1))
	d.norm3 = nn.Register(b, "norm3", BatchNorm(filters))
	return d
}

// FoldPairs implements nn.PairFolder: conv1→norm1 and conv3→norm3 (norm2
// follows the transposed convolution: FoldTransposedPairs).
func (d *LinkNetDecoder) FoldPairs(fold func(*nn.Conv2d, nn.Module) nn.Module) error {
	if d.conv1 == nil {
		return d.Err()
	}
	d.norm1, d.norm3 = fold(d.conv1, d.norm1), fold(d.conv3, d.norm3)
	return nil
}

// FoldTransposedPairs implements nn.TransposedPairFolder: deconv2→norm2.
func (d *LinkNetDecoder) FoldTransposedPairs(fold func(*nn.ConvTranspose2d, nn.Module) nn.Module) error {
	if d.conv1 == nil {
		return d.Err()
	}
	d.norm2 = fold(d.deconv2, d.norm2)
	return nil
}

// Forward implements nn.Module.
func (d *LinkNetDecoder) Forward(x *torch.Tensor) *torch.Tensor {
	if d.conv1 == nil {
		return torch.FromError(d.Err())
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		x = nn.ReluInPlace(d.norm1.Forward(d.conv1.Forward(x)))
		x = nn.ReluInPlace(d.norm2.Forward(d.deconv2.Forward(x)))
		return nn.ReluInPlace(d.norm3.Forward(d.conv3.Forward(x)))
	})
}
