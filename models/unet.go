package models

import (
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "unet", Description: "U-Net (milesial layout, bilinear up-sampling)", DefaultWidth: 64, RefParams: 17_267_458, Multiple: 16,
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

func (u *up) forward(x, skip *torch.Tensor) *torch.Tensor {
	up := u.up.Forward(x)
	padded := padTo(up, skip)
	cat := torch.Cat([]*torch.Tensor{skip, padded}, 1)
	if padded != up {
		padded.Free()
	}
	up.Free() // handles only: autograd keeps what backward needs
	out := u.conv.Forward(cat)
	cat.Free()
	return out
}

// padTo zero-pads x's last two dimensions to ref's, centred as milesial's UNet does.
func padTo(x, ref *torch.Tensor) *torch.Tensor {
	dy, dx := ref.Size(2)-x.Size(2), ref.Size(3)-x.Size(3)
	if dy == 0 && dx == 0 {
		return x
	}
	return x.Pad([]int64{dx / 2, dx - dx/2, dy / 2, dy - dy/2}, torch.PadConstant, 0)
}

// outConv is the 1×1 classifier, as "conv".
type outConv struct {
	nn.Base
	conv *nn.Conv2d
}

func newOutConv(in, classes int64) *outConv {
	o := &outConv{}
	o.conv = nn.Register(&o.Base, "conv", nn.NewConv2d(in, classes, 1))
	return o
}

func (o *outConv) Forward(x *torch.Tensor) *torch.Tensor { return o.conv.Forward(x) }

// UNet is milesial's U-Net with bilinear up-sampling: inc, down1..4,
// up1..4, outc.
type UNet struct {
	nn.Base
	inc                        *DoubleConv
	down1, down2, down3, down4 *down
	up1, up2, up3, up4         *up
	outc                       *outConv
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
	m.outc = nn.Register(b, "outc", newOutConv(w, c.Classes))
	return m
}

// Encode runs the encoder to down4 (512 channels at the reference width),
// the feature map SAS pretraining uses.
func (m *UNet) Encode(x *torch.Tensor) *torch.Tensor {
	return m.down4.Forward(m.down3.Forward(m.down2.Forward(m.down1.Forward(m.inc.Forward(x)))))
}

// Forward implements nn.Module: logits [N, classes, H, W].
func (m *UNet) Forward(x *torch.Tensor) *torch.Tensor {
	x1 := m.inc.Forward(x)
	x2 := m.down1.Forward(x1)
	x3 := m.down2.Forward(x2)
	x4 := m.down3.Forward(x3)
	x5 := m.down4.Forward(x4)
	// Free each feature map's handle after its last use, as PyTorch would.
	y := m.up1.forward(x5, x4)
	x5.Free()
	x4.Free()
	y2 := m.up2.forward(y, x3)
	y.Free()
	x3.Free()
	y3 := m.up3.forward(y2, x2)
	y2.Free()
	x2.Free()
	y4 := m.up4.forward(y3, x1)
	y3.Free()
	x1.Free()
	out := m.outc.Forward(y4)
	y4.Free()
	return out
}
