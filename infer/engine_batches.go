package infer

import (
	"fmt"
	"slices"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// batchSizes checks LoadOptions.JITBatches and returns them sorted.
func batchSizes(sizes []int) ([]int64, error) {
	if len(sizes) > MaxJITShapes {
		return nil, fmt.Errorf("infer: JIT batch sizes %v: at most %d (the modules the engine keeps)", sizes, MaxJITShapes)
	}
	out := make([]int64, 0, len(sizes))
	for _, n := range sizes {
		if n < 1 || n > MaxBatch {
			return nil, fmt.Errorf("infer: JIT batch size %d: want 1 to %d", n, MaxBatch)
		}
		out = append(out, int64(n))
	}
	slices.Sort(out)
	if len(slices.Compact(slices.Clone(out))) != len(out) {
		return nil, fmt.Errorf("infer: JIT batch sizes %v: each once", sizes)
	}
	return out, nil
}

// paddedJIT runs its JIT on a fixed set of batch sizes only (see
// LoadOptions.JITBatches). In evaluation mode every image of a batch is
// computed on its own, so the zero images a batch is padded with change
// nothing in the others' outputs beyond float32 round-off of kernels
// chosen per batch size.
type paddedJIT struct {
	*JIT
	sizes []int64 // ascending
}

func (p *paddedJIT) Forward(x *torch.Tensor) *torch.Tensor {
	if x.Err() != nil || x.Dim() < 1 {
		return p.JIT.Forward(x)
	}
	n, largest := x.Size(0), p.sizes[len(p.sizes)-1]
	to := largest
	for _, b := range p.sizes {
		if b >= n {
			to = b
			break
		}
	}
	if n == to {
		return p.JIT.Forward(x)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		if n > largest { // pieces of the largest size, the last padded
			var ys []*torch.Tensor
			for start := int64(0); start < n; start += largest {
				ys = append(ys, p.Forward(x.Narrow(0, start, min(largest, n-start))))
			}
			return torch.Cat(ys, 0)
		}
		shape := x.Shape()
		shape[0] = to - n
		pad := torch.Zeros(shape, x.DType(), x.Device(), x.Scope())
		return p.JIT.Forward(torch.Cat([]*torch.Tensor{x, pad}, 0)).Narrow(0, 0, n)
	})
}

// Warm runs a batch of zero images of each of sizes (at the model's input
// size) through the model, so that the jit engine builds those shapes'
// modules now rather than on the first inputs of each (a server's first
// requests would wait out the build). With the eager engine it decides
// the memory layout of those shapes (LayoutAuto) instead.
func (p *Predictor) Warm(sizes []int) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	c, h, w := p.info.Config.InChannels, int64(p.info.Size[0]), int64(p.info.Size[1])
	for _, n := range sizes {
		if n < 1 || n > MaxBatch {
			return fmt.Errorf("infer: warming batch size %d: want 1 to %d", n, MaxBatch)
		}
		var err error
		torch.InferenceMode(func() {
			s := torch.NewScope()
			defer s.Close()
			x := torch.Zeros([]int64{int64(n), c, h, w}, p.dev, s)
			err = p.model.Forward(x).Err() // joins s
		})
		if err != nil {
			return fmt.Errorf("infer: %s: batch size %d: %w", p.info.Model, n, err)
		}
	}
	return nil
}

// JITBuilds is the number of modules the jit engine has built (see
// JIT.Builds); 0 with the eager engine.
func (p *Predictor) JITBuilds() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return 0
	}
	switch m := p.model.(type) {
	case *JIT:
		return m.Builds()
	case *paddedJIT:
		return m.Builds()
	}
	return 0
}
