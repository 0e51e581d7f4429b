package models

import (
	"fmt"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "unetppbig", Description: "UNet++ with a bilinear + DoubleConv Up block for every up-sampling", DefaultWidth: 64, RefParams: 53_159_746, Multiple: 16,
		TestWidth: 4, TestSizes: [][2]int64{{16, 16}, {64, 96}, {128, 128}, {512, 512}}, Twin: "unetppbig.UNetPPBig",
		Build: func(c Config) (nn.Module, error) { return NewUNetPPBig(c), nil }})
}

// unetppbigUp is the reference's Up block as NestedUNet_Big uses it, with
// no skip: "up" doubles x bilinearly (align_corners=False) and "conv", a
// DoubleConv(c, c, mid c/2), refines it.
type unetppbigUp struct {
	nn.Base
	up   *nn.Upsample
	conv *block.DoubleConv
}

func newUnetppbigUp(c int64) *unetppbigUp {
	u := &unetppbigUp{}
	u.up = nn.Register(&u.Base, "up", nn.NewUpsample(2, torch.Bilinear))
	u.conv = nn.Register(&u.Base, "conv", block.NewDoubleConv(c, c, c/2))
	return u
}

func (u *unetppbigUp) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor { return u.conv.Forward(u.up.Forward(x)) })
}

// NewUNetPPBig builds the reference's NestedUNet_Big: UNet++ (see UNetPP)
// whose every up-sampling is its own Up block, "up{i}_{j}" up-sampling node
// x{i}_{j} (bilinear ×2, then DoubleConv(c, c, mid c/2) at that level's
// width c). Base width c.Width (64 in the reference; 53,159,746 parameters
// with 3 input channels and 2 classes).
//
// State-dict keys: the ten Up blocks first, as the reference registers
// them ("up1_0.conv.double_conv.0.weight", up1_0..up1_3, up2_0..up2_2,
// up3_0, up3_1, up4_0), then UNetPP's nodes and "final".
func NewUNetPPBig(c Config) *UNetPP {
	m := &UNetPP{}
	m.pool = nn.Register(&m.Base, "pool", nn.NewMaxPool2d(2))
	f := unetppWidths(c.Width)
	for i := 1; i < unetppLevels; i++ {
		for j := 0; i+j < unetppLevels; j++ {
			m.up[i][j] = nn.Register(&m.Base, fmt.Sprintf("up%d_%d", i, j), newUnetppbigUp(f[i]))
		}
	}
	m.registerNest(c)
	return m
}
