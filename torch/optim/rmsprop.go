package optim

import (
	"fmt"

	"github.com/jmedseg/jmedseg/torch"
)

// RMSpropConfig holds torch.optim.RMSprop's hyperparameters. A zero Alpha
// or Eps means PyTorch's default (0.99 and 1e-8).
type RMSpropConfig struct {
	LR          float64
	Alpha       float64
	Eps         float64
	WeightDecay float64
	Momentum    float64
	Centered    bool
}

// RMSprop divides the gradient by a running root mean square. State:
// "square_avg", "grad_avg" (centered), "momentum_buffer" (with momentum).
type RMSprop struct {
	*core
	cfg RMSpropConfig
}

// NewRMSprop makes torch.optim.RMSprop.
func NewRMSprop(cfg RMSpropConfig, groups ...Group) (*RMSprop, error) {
	if cfg.Alpha == 0 {
		cfg.Alpha = 0.99
	}
	if cfg.Eps == 0 {
		cfg.Eps = 1e-8
	}
	if cfg.LR <= 0 || cfg.Alpha < 0 || cfg.Eps < 0 || cfg.Momentum < 0 {
		return nil, fmt.Errorf("optim: RMSprop: invalid lr %g, alpha %g, eps %g or momentum %g", cfg.LR, cfg.Alpha, cfg.Eps, cfg.Momentum)
	}
	c, err := newCore("RMSprop", cfg.LR, cfg.WeightDecay, groups, "square_avg", "grad_avg", "momentum_buffer")
	if err != nil {
		return nil, err
	}
	return &RMSprop{core: c, cfg: cfg}, nil
}

// Step applies one update.
func (o *RMSprop) Step() error {
	a := o.cfg.Alpha
	return o.step(func(g *ParamGroup, p, grad *torch.Tensor, st *paramState, s *torch.Scope) error {
		sq, err := st.buffer("square_avg", p)
		if err != nil {
			return err
		}
		st.step++
		if g.WeightDecay != 0 {
			grad = grad.AddScaled(p, g.WeightDecay)
		}
		if err := sq.MulScalarInPlace(a); err != nil {
			return err
		}
		if err := sq.AddcmulInPlace(grad, grad, 1-a); err != nil {
			return err
		}
		var avg *torch.Tensor
		if o.cfg.Centered {
			ga, err := st.buffer("grad_avg", p)
			if err != nil {
				return err
			}
			if err := ga.MulScalarInPlace(a); err != nil {
				return err
			}
			if err := ga.AddScaledInPlace(grad, 1-a); err != nil {
				return err
			}
			avg = s.Track(sq.Clone())
			if err := avg.AddcmulInPlace(ga, ga, -1); err != nil {
				return err
			}
			if err := avg.SqrtInPlace(); err != nil {
				return err
			}
		} else {
			avg = s.Track(sq.Sqrt())
		}
		if err := avg.AddScalarInPlace(o.cfg.Eps); err != nil {
			return err
		}
		if o.cfg.Momentum > 0 {
			buf, err := st.buffer("momentum_buffer", p)
			if err != nil {
				return err
			}
			if err := buf.MulScalarInPlace(o.cfg.Momentum); err != nil {
				return err
			}
			if err := buf.AddcdivInPlace(grad, avg, 1); err != nil {
				return err
			}
			return p.AddScaledInPlace(buf, -g.LR)
		}
		return p.AddcdivInPlace(grad, avg, -g.LR)
	})
}

// Free releases the state tensors. It is safe on a nil RMSprop, as a failed
// constructor returns, also when held in an Optimizer interface.
func (o *RMSprop) Free() {
	if o != nil {
		o.core.Free()
	}
}
