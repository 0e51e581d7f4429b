package models

import (
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// STN is the SAS recipe's spatial transformer: it predicts a per-image
// affine transform with a localisation network of four conv3 + BN + ReLU
// stages (in → 8 → 16 → 32 → 64 channels), adaptive average pooling to
// 2×2, then Linear(256, 32) + ReLU + Linear(32, 6), initialised to the
// identity (weight 0, bias [1 0 0 0 1 0]). State-dict keys are
// "localization.*" and "fc_loc.*", as the reference's.
type STN struct {
	nn.Base
	loc *nn.Sequential
	fc  *nn.Sequential
}

// NewSTN builds a spatial transformer for in-channel images.
func NewSTN(in int64) *STN {
	s := &STN{}
	var mods []nn.Module
	c := in
	for _, out := range []int64{8, 16, 32, 64} {
		mods = append(mods, nn.NewConv2d(c, out, 3, nn.Padding(1)), nn.NewBatchNorm2d(out), nn.ReLU())
		c = out
	}
	mods = append(mods, nn.NewAdaptiveAvgPool2d(2, 2))
	s.loc = nn.Register(&s.Base, "localization", nn.Seq(mods...))
	last := nn.NewLinear(32, 6)
	s.fc = nn.Register(&s.Base, "fc_loc", nn.Seq(nn.NewLinear(256, 32), nn.ReLU(), last))
	// A failed initialisation is recorded as a failed buffer, which makes
	// Err report it like any construction error.
	torch.NoGrad(func() {
		if err := last.Weight.Zero(); err != nil {
			s.RegisterBuffer("init_failed", torch.FromError(err))
			return
		}
		sc := torch.NewScope()
		defer sc.Close()
		if err := last.Bias.CopyFrom(torch.FromSlice([]float32{1, 0, 0, 0, 1, 0}, nil, sc)); err != nil {
			s.RegisterBuffer("init_failed", torch.FromError(err))
		}
	})
	return s
}

// Theta returns the affine matrices [N, 2, 3] for images x.
func (s *STN) Theta(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		return s.fc.Forward(s.loc.Forward(x).Flatten(1, -1)).View(-1, 2, 3)
	})
}

// InvertAffine returns the inverse affine transforms of theta [N, 2, 3].
func InvertAffine(theta *torch.Tensor) *torch.Tensor {
	return nn.Frame(theta, func(theta *torch.Tensor) *torch.Tensor {
		el := func(r, c int64) *torch.Tensor { return theta.Select(1, r).Select(1, c) }
		a, b, tx := el(0, 0), el(0, 1), el(0, 2)
		c, d, ty := el(1, 0), el(1, 1), el(1, 2)
		det := a.Mul(d).Sub(b.Mul(c))
		ia, ib, ic, id := d.Div(det), b.Neg().Div(det), c.Neg().Div(det), a.Div(det)
		itx := ia.Mul(tx).Add(ib.Mul(ty)).Neg()
		ity := ic.Mul(tx).Add(id.Mul(ty)).Neg()
		row0 := torch.Stack([]*torch.Tensor{ia, ib, itx}, 1)
		row1 := torch.Stack([]*torch.Tensor{ic, id, ity}, 1)
		return torch.Stack([]*torch.Tensor{row0, row1}, 1)
	})
}

// WarpAffine samples x through the affine transforms theta (bilinear;
// points outside x take its border values).
func WarpAffine(x, theta *torch.Tensor) *torch.Tensor {
	return nn.Frame2(x, theta, func(x, theta *torch.Tensor) *torch.Tensor {
		grid := torch.AffineGrid(theta, x.Shape(), false)
		return torch.GridSample(x, grid, torch.Bilinear, torch.GridBorder, false)
	})
}

// WithSTN puts a spatial transformer in front of a segmentation network:
// the input is warped by the predicted transform, segmented, and the logits
// are warped back by the inverse transform, so that they stay aligned with
// the unwarped mask the loss compares them to. (The reference left the
// prediction warped, which misaligns it as soon as θ leaves the identity.)
type WithSTN struct {
	nn.Base
	STN *STN
	Net nn.Module
}

// NewWithSTN wraps net, which takes in-channel images; state-dict keys are
// "stn.*" and "net.*".
func NewWithSTN(in int64, net nn.Module) *WithSTN {
	w := &WithSTN{}
	w.STN = nn.Register(&w.Base, "stn", NewSTN(in))
	w.Net = nn.Register(&w.Base, "net", net)
	return w
}

// Forward implements nn.Module.
func (w *WithSTN) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		theta := w.STN.Theta(x)
		logits := w.Net.Forward(WarpAffine(x, theta))
		return WarpAffine(logits, InvertAffine(theta))
	})
}
