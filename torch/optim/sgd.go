package optim

import (
	"fmt"

	"github.com/jmedseg/jmedseg/torch"
)

// SGDConfig holds torch.optim.SGD's hyperparameters.
type SGDConfig struct {
	LR          float64
	Momentum    float64
	Dampening   float64
	WeightDecay float64
	Nesterov    bool
	// Impl selects the per-tensor or multi-tensor step (ImplAuto:
	// multi-tensor on CUDA, as PyTorch's foreach=None).
	Impl Impl
}

// SGD is stochastic gradient descent with optional momentum (state
// "momentum_buffer"), dampening, Nesterov momentum and weight decay.
type SGD struct {
	*core
	cfg SGDConfig
}

// NewSGD makes an SGD optimizer over groups.
func NewSGD(cfg SGDConfig, groups ...Group) (*SGD, error) {
	if cfg.LR <= 0 || cfg.Momentum < 0 || cfg.WeightDecay < 0 {
		return nil, fmt.Errorf("optim: SGD: invalid lr %g, momentum %g or weight decay %g", cfg.LR, cfg.Momentum, cfg.WeightDecay)
	}
	if cfg.Nesterov && (cfg.Momentum <= 0 || cfg.Dampening != 0) {
		return nil, fmt.Errorf("optim: SGD: Nesterov momentum requires a momentum and zero dampening")
	}
	c, err := newCore("SGD", cfg.LR, cfg.WeightDecay, groups, "momentum_buffer")
	if err != nil {
		return nil, err
	}
	return &SGD{core: c, cfg: cfg}, nil
}

// Step applies one update.
func (o *SGD) Step() error {
	if o.foreach(o.cfg.Impl) {
		return o.stepForeach()
	}
	return o.step(func(g *ParamGroup, p, d *torch.Tensor, st *paramState, s *torch.Scope) error {
		if g.WeightDecay != 0 {
			d = d.AddScaled(p, g.WeightDecay)
		}
		if o.cfg.Momentum != 0 {
			buf, ok := st.tensors["momentum_buffer"]
			if !ok {
				buf = d.Clone().Keep()
				if err := buf.Err(); err != nil {
					return err
				}
				st.tensors["momentum_buffer"] = buf
			} else {
				if err := buf.MulScalarInPlace(o.cfg.Momentum); err != nil {
					return err
				}
				if err := buf.AddScaledInPlace(d, 1-o.cfg.Dampening); err != nil {
					return err
				}
			}
			if o.cfg.Nesterov {
				d = d.AddScaled(buf, o.cfg.Momentum)
			} else {
				d = buf
			}
		}
		st.step++
		return p.AddScaledInPlace(d, -g.LR)
	})
}

// Free releases the state tensors. It is safe on a nil SGD, as a failed
// constructor returns, also when held in an Optimizer interface.
func (o *SGD) Free() {
	if o != nil {
		o.core.Free()
	}
}
