package infer

import (
	"fmt"
	"sync"
	"time"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// Memory layouts for LoadOptions.Layout.
const (
	// LayoutAuto (also "") times the model once in each layout on every new
	// CPU input shape and keeps the faster one for that shape. Measured on
	// this project's 2-core CPU (README, Performance), channels-last cut
	// unet's and deeplab's batch-8 inference by 16–20 % and slowed
	// deeplab's batch 1 by 5–30 %: neither layout wins everywhere.
	LayoutAuto = "auto"
	// LayoutContiguous keeps PyTorch's default (NCHW) layout.
	LayoutContiguous = "contiguous"
	// LayoutChannelsLast runs channels-last (NHWC) throughout, as
	// ChannelsLast.
	LayoutChannelsLast = "channels_last"
)

// checkLayout validates a LoadOptions.Layout value.
func checkLayout(l string) error {
	switch l {
	case "", LayoutAuto, LayoutContiguous, LayoutChannelsLast:
		return nil
	}
	return fmt.Errorf("infer: layout %q: want %s, %s or %s", l, LayoutAuto, LayoutContiguous, LayoutChannelsLast)
}

// autoLayout runs its module in the memory layout that was faster for the
// input's shape, timed on the first input of each shape: two forwards per
// layout (the first builds oneDNN's primitives for the shape), the second
// timed. The weights stay contiguous: a channels-last input alone makes
// libtorch's convolutions run NHWC. Results are returned contiguous in
// either case, so callers see one layout.
type autoLayout struct {
	nn.Module
	mu     sync.Mutex
	choice map[[4]int64]bool // shape → channels-last
}

func newAutoLayout(m nn.Module) *autoLayout {
	return &autoLayout{Module: m, choice: map[[4]int64]bool{}}
}

// ChannelsLast reports the layout chosen for shape, and whether one was.
func (a *autoLayout) ChannelsLast(shape [4]int64) (cl, decided bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cl, decided = a.choice[shape]
	return cl, decided
}

func (a *autoLayout) Forward(x *torch.Tensor) *torch.Tensor {
	if x.Err() != nil || x.Dim() != 4 || x.Device().Type != torch.DeviceCPU {
		return a.Module.Forward(x)
	}
	var key [4]int64
	copy(key[:], x.Shape())
	cl, ok := a.ChannelsLast(key)
	if !ok {
		var err error
		if cl, err = a.decide(x); err != nil {
			return torch.FromError(err)
		}
		a.mu.Lock()
		a.choice[key] = cl
		a.mu.Unlock()
	}
	return a.run(x, cl)
}

// run is one forward in the given layout.
func (a *autoLayout) run(x *torch.Tensor, cl bool) *torch.Tensor {
	if !cl {
		return a.Module.Forward(x)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		return a.Module.Forward(x.ContiguousAs(torch.ChannelsLastFormat)).ContiguousAs(torch.ContiguousFormat)
	})
}

// decide times both layouts on x; the results are thrown away.
func (a *autoLayout) decide(x *torch.Tensor) (bool, error) {
	var best [2]time.Duration
	for i, cl := range []bool{false, true} {
		for rep := 0; rep < 2; rep++ {
			s := torch.NewScope()
			in := s.Track(x.Shallow())
			t0 := time.Now()
			y := a.run(in, cl) // CPU ops are done when they return
			d := time.Since(t0)
			err := y.Err()
			s.Track(y)
			s.Close()
			if err != nil {
				return false, fmt.Errorf("infer: timing the %s layout: %w", map[bool]string{false: LayoutContiguous, true: LayoutChannelsLast}[cl], err)
			}
			best[i] = d // the second run's, after the primitives were built
		}
	}
	return best[1] < best[0], nil
}
