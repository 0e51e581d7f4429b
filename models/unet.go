package models

import (
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "unet", Description: "U-Net (milesial layout, bilinear up-sampling)", DefaultWidth: 64, RefParams: 17_267_458, Multiple: 16,
		TestWidth: 4, TestSizes: [][2]int64{{16, 16}, {64, 96}, {128, 128}, {512, 512}}, Twin: "unet.UNet",
		Build: func(c Config) (nn.Module, error) { return NewUNet(c), nil }})
}

// DoubleConv is (conv3 + BN + ReLU) × 2, as module "double_conv".
type DoubleConv struct {
	nn.Base
	seq *nn.Sequential
}

// NewDoubleConv maps in → mid → out channels.
func NewDoubleConv(in, out, mid int64) *DoubleConv {
	d := &DoubleConv{}
	d.seq = nn.Register(&d.Base, "double_conv", doubleCBR(in, mid, out))
	return d
}

// Forward implements nn.Module.
func (d *DoubleConv) Forward(x *torch.Tensor) *torch.Tensor { return d.seq.Forward(x) }

// down is max-pooling then DoubleConv, as "maxpool_conv".
type down struct {
	nn.Base
	seq *nn.Sequential
}

func newDown(in, out int64) *down {
	d := &down{}
	d.seq = nn.Register(&d.Base, "maxpool_conv", nn.Seq(nn.NewMaxPool2d(2), NewDoubleConv(in, out, out)))
	return d
}

func (d *down) Forward(x *torch.Tensor) *torch.Tensor { return d.seq.Forward(x) }

// up doubles the size bilinearly, pads to the skip's size, concatenates
// [skip, up] and applies DoubleConv(in, out, in/2).
type up struct {
	nn.Base
	up   *nn.Upsample
	conv *DoubleConv
}

func newUp(in, out int64) *up {
	u := &up{}
	u.up = nn.Register(&u.Base, "up", nn.NewUpsample(2, torch.Bilinear, nn.AlignCorners()))
	u.conv = nn.Register(&u.Base, "conv", NewDoubleConv(in, out, in/2))
	return u
}

// Merge implements nn.Merger: the up-path x, then the skip.
func (u *up) Merge(xs ...*torch.Tensor) *torch.Tensor {
	return nn.Frame2(xs[0], xs[1], func(x, skip *torch.Tensor) *torch.Tensor {
		return u.conv.Forward(torch.Cat([]*torch.Tensor{skip, padTo(u.up.Forward(x), skip)}, 1))
	})
}

// padTo zero-pads x's last two dimensions to ref's, centred as milesial's UNet does.
func padTo(x, ref *torch.Tensor) *torch.Tensor {
	dy, dx := ref.Size(2)-x.Size(2), ref.Size(3)-x.Size(3)
	if dy == 0 && dx == 0 {
		return x.Alias()
	}
	return x.Pad([]int64{dx / 2, dx - dx/2, dy / 2, dy - dy/2}, torch.PadConstant, 0)
}

// UNet is milesial's U-Net with bilinear up-sampling: inc, down1..4,
// up1..4, outc.
type UNet struct {
	nn.Base
	inc                        *DoubleConv
	down1, down2, down3, down4 *down
	up1, up2, up3, up4         *up
	outc                       *nn.Path // the 1×1 classifier, as "outc.conv"
}

// NewUNet builds a U-Net of base width c.Width (64 in the reference).
func NewUNet(c Config) *UNet {
	w := c.Width
	m := &UNet{}
	b := &m.Base
	m.inc = nn.Register(b, "inc", NewDoubleConv(c.InChannels, w, w))
	m.down1 = nn.Register(b, "down1", newDown(w, 2*w))
	m.down2 = nn.Register(b, "down2", newDown(2*w, 4*w))
	m.down3 = nn.Register(b, "down3", newDown(4*w, 8*w))
	m.down4 = nn.Register(b, "down4", newDown(8*w, 8*w))
	m.up1 = nn.Register(b, "up1", newUp(16*w, 4*w))
	m.up2 = nn.Register(b, "up2", newUp(8*w, 2*w))
	m.up3 = nn.Register(b, "up3", newUp(4*w, w))
	m.up4 = nn.Register(b, "up4", newUp(2*w, w))
	m.outc = nn.Register(b, "outc", nn.NewPath("conv", nn.NewConv2d(w, c.Classes, 1)))
	return m
}

// Encode runs the encoder to down4 (512 channels at the reference width),
// the feature map SAS pretraining uses.
func (m *UNet) Encode(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		return m.down4.Forward(m.down3.Forward(m.down2.Forward(m.down1.Forward(m.inc.Forward(x)))))
	})
}

// Forward implements nn.Module: logits [N, classes, H, W].
func (m *UNet) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		x1 := m.inc.Forward(x)
		x2 := m.down1.Forward(x1)
		x3 := m.down2.Forward(x2)
		x4 := m.down3.Forward(x3)
		x5 := m.down4.Forward(x4)
		y := m.up1.Merge(x5, x4)
		y = m.up2.Merge(y, x3)
		y = m.up3.Merge(y, x2)
		y = m.up4.Merge(y, x1)
		return m.outc.Forward(y)
	})
}
