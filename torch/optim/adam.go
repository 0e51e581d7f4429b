package optim

import (
	"fmt"
	"math"

	"github.com/jmedseg/jmedseg/torch"
)

// AdamConfig holds the hyperparameters of torch.optim.Adam and AdamW. A
// zero Betas or Eps means PyTorch's default ((0.9, 0.999) and 1e-8).
type AdamConfig struct {
	LR          float64
	Betas       [2]float64
	Eps         float64
	WeightDecay float64
	AMSGrad     bool
	// Impl selects the per-tensor or multi-tensor step (ImplAuto:
	// multi-tensor on CUDA, as PyTorch's foreach=None).
	Impl Impl
}

// Adam is Adam (L2 weight decay added to the gradient) or AdamW (decoupled
// weight decay). State: "exp_avg", "exp_avg_sq", "max_exp_avg_sq" and the
// step count.
type Adam struct {
	*core
	cfg       AdamConfig
	decoupled bool
}

func newAdam(name string, cfg AdamConfig, decoupled bool, groups []Group) (*Adam, error) {
	if cfg.Betas == [2]float64{} {
		cfg.Betas = [2]float64{0.9, 0.999}
	}
	if cfg.Eps == 0 {
		cfg.Eps = 1e-8
	}
	if cfg.LR <= 0 || cfg.Eps < 0 || cfg.Betas[0] < 0 || cfg.Betas[0] >= 1 || cfg.Betas[1] < 0 || cfg.Betas[1] >= 1 {
		return nil, fmt.Errorf("optim: %s: invalid lr %g, betas %v or eps %g", name, cfg.LR, cfg.Betas, cfg.Eps)
	}
	c, err := newCore(name, cfg.LR, cfg.WeightDecay, groups, "exp_avg", "exp_avg_sq", "max_exp_avg_sq")
	if err != nil {
		return nil, err
	}
	return &Adam{core: c, cfg: cfg, decoupled: decoupled}, nil
}

// NewAdam makes torch.optim.Adam.
func NewAdam(cfg AdamConfig, groups ...Group) (*Adam, error) {
	return newAdam("Adam", cfg, false, groups)
}

// NewAdamW makes torch.optim.AdamW (PyTorch's default weight decay is 1e-2;
// set it explicitly).
func NewAdamW(cfg AdamConfig, groups ...Group) (*Adam, error) {
	return newAdam("AdamW", cfg, true, groups)
}

// Step applies one update.
func (o *Adam) Step() error {
	if o.foreach(o.cfg.Impl) {
		return o.stepForeach()
	}
	b1, b2, eps := o.cfg.Betas[0], o.cfg.Betas[1], o.cfg.Eps
	return o.step(func(g *ParamGroup, p, grad *torch.Tensor, st *paramState, s *torch.Scope) error {
		expAvg, err := st.buffer("exp_avg", p)
		if err != nil {
			return err
		}
		expAvgSq, err := st.buffer("exp_avg_sq", p)
		if err != nil {
			return err
		}
		st.step++
		if g.WeightDecay != 0 {
			if o.decoupled {
				if err := p.MulScalarInPlace(1 - g.LR*g.WeightDecay); err != nil {
					return err
				}
			} else {
				grad = grad.AddScaled(p, g.WeightDecay)
			}
		}
		if err := expAvg.MulScalarInPlace(b1); err != nil {
			return err
		}
		if err := expAvg.AddScaledInPlace(grad, 1-b1); err != nil {
			return err
		}
		if err := expAvgSq.MulScalarInPlace(b2); err != nil {
			return err
		}
		if err := expAvgSq.AddcmulInPlace(grad, grad, 1-b2); err != nil {
			return err
		}
		bc1 := 1 - math.Pow(b1, st.step)
		bc2 := 1 - math.Pow(b2, st.step)
		stepSize := g.LR / bc1
		bc2Sqrt := math.Sqrt(bc2)
		v := expAvgSq
		if o.cfg.AMSGrad {
			mx, err := st.buffer("max_exp_avg_sq", p)
			if err != nil {
				return err
			}
			if err := mx.MaximumInPlace(expAvgSq); err != nil {
				return err
			}
			v = mx
		}
		denom := s.Track(v.Sqrt()).DivScalar(bc2Sqrt)
		if err := denom.AddScalarInPlace(eps); err != nil {
			return err
		}
		return p.AddcdivInPlace(expAvg, denom, -stepSize)
	})
}

// Free releases the state tensors. It is safe on a nil Adam, as a failed
// constructor returns, also when held in an Optimizer interface.
func (o *Adam) Free() {
	if o != nil {
		o.core.Free()
	}
}
