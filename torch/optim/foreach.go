package optim

import (
	"fmt"
	"math"

	"github.com/jmedseg/jmedseg/torch"
)

// Impl chooses how a step updates its parameters.
type Impl int

// Implementations of a step. Both compute the same arithmetic (the tests
// check them equal to float32 round-off, and to torch.optim).
const (
	// ImplAuto is ImplForeach where every parameter is on CUDA (PyTorch's
	// default, foreach=None), else ImplPerTensor.
	ImplAuto Impl = iota
	// ImplForeach updates each group with libtorch's multi-tensor
	// _foreach_ ops: a handful of calls per group instead of a handful per
	// parameter (on CUDA, a few kernel launches for all parameters).
	ImplForeach
	// ImplPerTensor updates one parameter at a time.
	ImplPerTensor
)

// foreach resolves impl for c's parameters.
func (c *core) foreach(impl Impl) bool {
	switch impl {
	case ImplForeach:
		return true
	case ImplPerTensor:
		return false
	}
	for _, g := range c.groups {
		for _, p := range g.Params {
			if !p.Device().IsCUDA() {
				return false
			}
		}
	}
	return true
}

// bucket is the parameters of one group that share a step count, with
// their gradients and state, as the multi-tensor calls take them.
type bucket struct {
	step                    float64
	ps, grads, bufs1, bufs2 []*torch.Tensor
	bufs3                   []*torch.Tensor
}

// groupStep runs update on each group's parameters that have gradients,
// fetched in one call, inside NoGrad and a scope per group that owns the
// gradient handles and every temporary.
func (c *core) groupStep(update func(g *ParamGroup, ps, grads []*torch.Tensor, sts []*paramState, s *torch.Scope) error) error {
	var err error
	torch.NoGrad(func() {
		i := 0
		for gi, g := range c.groups {
			base := i
			i += len(g.Params)
			s := torch.NewScope()
			grads, e := torch.Grads(g.Params)
			if e != nil {
				s.Close()
				err = fmt.Errorf("optim: %s: group %d: %w", c.name, gi, e)
				return
			}
			var ps, gs []*torch.Tensor
			var sts []*paramState
			for j, gr := range grads {
				if gr == nil {
					continue
				}
				s.Track(gr)
				ps, gs, sts = append(ps, g.Params[j]), append(gs, gr), append(sts, c.state[base+j])
			}
			if len(ps) > 0 {
				e = update(g, ps, gs, sts, s)
			}
			s.Close()
			if e != nil {
				err = fmt.Errorf("optim: %s: group %d: %w", c.name, gi, e)
				return
			}
		}
	})
	return err
}

// track puts ts into s.
func track(s *torch.Scope, ts []*torch.Tensor) []*torch.Tensor {
	for _, t := range ts {
		s.Track(t)
	}
	return ts
}

// stepForeach is Adam's Step with multi-tensor ops, parameters bucketed by
// their step count (equal unless some went without gradients).
func (o *Adam) stepForeach() error {
	b1, b2, eps := o.cfg.Betas[0], o.cfg.Betas[1], o.cfg.Eps
	return o.groupStep(func(g *ParamGroup, ps, grads []*torch.Tensor, sts []*paramState, s *torch.Scope) error {
		var order []*bucket
		byStep := map[float64]*bucket{}
		for j, p := range ps {
			st := sts[j]
			expAvg, err := st.buffer("exp_avg", p)
			if err != nil {
				return err
			}
			expAvgSq, err := st.buffer("exp_avg_sq", p)
			if err != nil {
				return err
			}
			var mx *torch.Tensor
			if o.cfg.AMSGrad {
				if mx, err = st.buffer("max_exp_avg_sq", p); err != nil {
					return err
				}
			}
			st.step++
			b := byStep[st.step]
			if b == nil {
				b = &bucket{step: st.step}
				byStep[st.step] = b
				order = append(order, b)
			}
			b.ps, b.grads, b.bufs1, b.bufs2 = append(b.ps, p), append(b.grads, grads[j]), append(b.bufs1, expAvg), append(b.bufs2, expAvgSq)
			if mx != nil {
				b.bufs3 = append(b.bufs3, mx)
			}
		}
		for _, b := range order {
			if err := o.bucketStep(g, b, b1, b2, eps, s); err != nil {
				return err
			}
		}
		return nil
	})
}

func (o *Adam) bucketStep(g *ParamGroup, b *bucket, b1, b2, eps float64, s *torch.Scope) error {
	grads := b.grads
	var err error
	if g.WeightDecay != 0 {
		if o.decoupled {
			if err := torch.ForeachScalar(torch.ForeachMulScalar, b.ps, 1-g.LR*g.WeightDecay); err != nil {
				return err
			}
		} else if grads, err = torch.ForeachAdd(grads, b.ps, g.WeightDecay); err != nil {
			return err
		}
		track(s, grads)
	}
	if err := torch.ForeachScalar(torch.ForeachMulScalar, b.bufs1, b1); err != nil {
		return err
	}
	if err := torch.ForeachAddInPlace(b.bufs1, grads, 1-b1); err != nil {
		return err
	}
	if err := torch.ForeachScalar(torch.ForeachMulScalar, b.bufs2, b2); err != nil {
		return err
	}
	if err := torch.ForeachAddcmulInPlace(b.bufs2, grads, grads, 1-b2); err != nil {
		return err
	}
	stepSize := g.LR / (1 - math.Pow(b1, b.step))
	bc2Sqrt := math.Sqrt(1 - math.Pow(b2, b.step))
	v := b.bufs2
	if o.cfg.AMSGrad {
		if err := torch.ForeachMaximumInPlace(b.bufs3, b.bufs2); err != nil {
			return err
		}
		v = b.bufs3
	}
	denom, err := torch.ForeachSqrt(v)
	if err != nil {
		return err
	}
	track(s, denom)
	if err := torch.ForeachScalar(torch.ForeachDivScalar, denom, bc2Sqrt); err != nil {
		return err
	}
	if err := torch.ForeachScalar(torch.ForeachAddScalar, denom, eps); err != nil {
		return err
	}
	return torch.ForeachAddcdivInPlace(b.ps, b.bufs1, denom, -stepSize)
}

// stepForeach is SGD's Step with multi-tensor ops.
func (o *SGD) stepForeach() error {
	return o.groupStep(func(g *ParamGroup, ps, grads []*torch.Tensor, sts []*paramState, s *torch.Scope) error {
		d := grads
		var err error
		if g.WeightDecay != 0 {
			if d, err = torch.ForeachAdd(grads, ps, g.WeightDecay); err != nil {
				return err
			}
			track(s, d)
		}
		if o.cfg.Momentum != 0 {
			// Buffers start as a copy of the first step's direction, as
			// torch.optim.SGD's; the others are updated together.
			var old, oldD []*torch.Tensor
			bufs := make([]*torch.Tensor, len(ps))
			for j, st := range sts {
				buf, ok := st.tensors["momentum_buffer"]
				if !ok {
					buf = d[j].Clone().Keep()
					if err := buf.Err(); err != nil {
						return err
					}
					st.tensors["momentum_buffer"] = buf
				} else {
					old, oldD = append(old, buf), append(oldD, d[j])
				}
				bufs[j] = buf
			}
			if err := torch.ForeachScalar(torch.ForeachMulScalar, old, o.cfg.Momentum); err != nil {
				return err
			}
			if err := torch.ForeachAddInPlace(old, oldD, 1-o.cfg.Dampening); err != nil {
				return err
			}
			if o.cfg.Nesterov {
				if d, err = torch.ForeachAdd(d, bufs, o.cfg.Momentum); err != nil {
					return err
				}
				track(s, d)
			} else {
				d = bufs
			}
		}
		for _, st := range sts {
			st.step++
		}
		return torch.ForeachAddInPlace(ps, d, -g.LR)
	})
}
