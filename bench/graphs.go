package bench

import (
	"fmt"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
	"github.com/jmedseg/jmedseg/torch/optim"
)

// graphInferStep captures one inference forward on x and returns a step
// that replays it and reads the (static) output's sum. Warm-up runs on the
// graph's stream first.
func graphInferStep(g *torch.CUDAGraph, m nn.Module, x *torch.Tensor, warmup int) (func() error, error) {
	var out *torch.Tensor
	var ferr error
	fwd := func(keep bool) {
		torch.InferenceMode(func() {
			y := m.Forward(x)
			if ferr = y.Err(); ferr != nil {
				return
			}
			if keep {
				out = y
			} else {
				y.Free()
			}
		})
	}
	if err := g.Warmup(func() {
		for i := 0; i < max(warmup, 1) && ferr == nil; i++ {
			fwd(false)
		}
	}); err != nil || ferr != nil {
		return nil, fmt.Errorf("bench: CUDA graph warm-up: %w", firstNonNil(err, ferr))
	}
	if err := g.Capture(func() { fwd(true) }); err != nil || ferr != nil {
		return nil, fmt.Errorf("bench: CUDA graph capture: %w", firstNonNil(err, ferr))
	}
	return func() error {
		if err := g.Replay(); err != nil {
			return err
		}
		var err error
		torch.InferenceMode(func() {
			s := out.Sum()
			defer s.Free()
			_, err = s.Item()
		})
		return err
	}, nil
}

// graphTrainStep captures forward, loss and backward (into gradients that
// stay where the capture put them: no ZeroGrad between replays, each
// replay overwrites them) and returns a step that replays it, runs the
// optimizer eagerly and reads the loss.
func graphTrainStep(g *torch.CUDAGraph, opt optim.Optimizer, lossOf func(*torch.Scope) *torch.Tensor, warmup int) (func() error, error) {
	var ferr error
	eager := func() {
		s := torch.NewScope()
		defer s.Close()
		l := lossOf(s)
		if ferr = l.Backward(); ferr == nil {
			ferr = opt.ZeroGrad()
		}
	}
	if err := g.Warmup(func() {
		for i := 0; i < max(warmup, 1) && ferr == nil; i++ {
			eager()
		}
	}); err != nil || ferr != nil {
		return nil, fmt.Errorf("bench: CUDA graph warm-up: %w", firstNonNil(err, ferr))
	}
	if err := opt.ZeroGrad(); err != nil {
		return nil, err
	}
	s := torch.NewScope()
	var loss *torch.Tensor
	if err := g.Capture(func() {
		loss = lossOf(s).Keep()
		ferr = loss.Backward()
	}); err != nil || ferr != nil {
		s.Close()
		return nil, fmt.Errorf("bench: CUDA graph capture: %w", firstNonNil(err, ferr))
	}
	s.Close() // the graph's pool keeps what the captured kernels use
	return func() error {
		if err := g.Replay(); err != nil {
			return err
		}
		if err := opt.Step(); err != nil {
			return err
		}
		_, err := loss.Item()
		return err
	}, nil
}

func firstNonNil(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
