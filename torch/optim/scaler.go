package optim

import (
	"fmt"
	"math"

	"github.com/jmedseg/jmedseg/torch"
)

// GradScaler is torch.cuda.amp.GradScaler's dynamic loss scaling for
// float16 training: gradients are computed scaled by Scale (so that small
// ones do not underflow in float16), unscaled before the optimizer step,
// and a step whose gradients hold an infinity or NaN is skipped and the
// scale halved; after Interval good steps in a row the scale doubles.
// models.Autocast's GradScale applies the scale; Wrap unscales.
type GradScaler struct {
	scale            float64
	Growth, Backoff  float64
	Interval         int
	good             int
	Skipped, Stepped int // steps skipped for non-finite gradients, and taken
}

// NewGradScaler starts at PyTorch's defaults: scale 65536, growth 2,
// backoff 0.5, interval 2000.
func NewGradScaler() *GradScaler {
	return &GradScaler{scale: 65536, Growth: 2, Backoff: 0.5, Interval: 2000}
}

// Scale is the current scale.
func (g *GradScaler) Scale() float64 { return g.scale }

// Wrap returns o with Step unscaling the gradients first and skipping the
// update when they are not finite. The other methods are o's.
func (g *GradScaler) Wrap(o Optimizer) Optimizer { return &scaled{Optimizer: o, g: g} }

type scaled struct {
	Optimizer
	g *GradScaler
}

func (s *scaled) Step() error {
	var params []*torch.Tensor
	for _, gr := range s.Groups() {
		params = append(params, gr.Params...)
	}
	finite := true
	err := torch.WithScope(func(sc *torch.Scope) error {
		all, err := torch.Grads(params)
		if err != nil {
			return err
		}
		var grads, sums []*torch.Tensor
		for _, gr := range all {
			if gr != nil {
				grads = append(grads, sc.Track(gr))
			}
		}
		if len(grads) == 0 {
			return nil
		}
		var e error
		torch.NoGrad(func() {
			if e = torch.ForeachScalar(torch.ForeachMulScalar, grads, 1/s.g.scale); e != nil {
				return
			}
			// An infinity or NaN anywhere makes the total non-finite: one
			// host synchronisation per step, as GradScaler's found_inf.
			for _, gr := range grads {
				sums = append(sums, gr.Sum().ToDType(torch.Float32))
			}
			var tot float64
			if tot, e = sc.Track(torch.Stack(sums, 0)).Sum().Item(); e == nil {
				finite = !math.IsNaN(tot) && !math.IsInf(tot, 0)
			}
		})
		return e
	})
	if err != nil {
		return fmt.Errorf("optim: grad scaler: %w", err)
	}
	if !finite {
		s.g.scale *= s.g.Backoff
		s.g.good = 0
		s.g.Skipped++
		return nil
	}
	if err := s.Optimizer.Step(); err != nil {
		return err
	}
	s.g.Stepped++
	if s.g.good++; s.g.good >= s.g.Interval {
		s.g.scale *= s.g.Growth
		s.g.good = 0
	}
	return nil
}
