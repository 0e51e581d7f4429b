package infer

import (
	"fmt"
	"strings"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// LoadOptions make a Predictor faster without changing what it computes
// beyond float32 round-off (Fuse, ChannelsLast, Layout) or, with AMP,
// within reduced precision. The zero value fuses and picks the memory
// layout per input shape (LayoutAuto).
type LoadOptions struct {
	// NoFuse keeps the BatchNorms as they are; by default each one that
	// directly follows a convolution is folded into it once at load
	// (models.Fuse).
	NoFuse bool
	// ChannelsLast runs the model in channels-last (NHWC) memory format,
	// weights included, whatever Layout says. Measured on this project's
	// CPU (README, Performance) it helps some models and shapes and slows
	// others.
	ChannelsLast bool
	// Layout is LayoutAuto ("" too: on the CPU, the faster layout per input
	// shape, timed on its first input), LayoutContiguous or
	// LayoutChannelsLast.
	Layout string
	// AMP is "" (float32), "bf16" (CPU or CUDA) or "fp16" (CUDA): the
	// forward runs under autocast, the outputs are float32.
	AMP string
	// Engine is EngineEager ("" too) or EngineJIT: the network traced,
	// frozen and optimised for inference per input shape (see JIT).
	Engine string
	// JITBatches, with EngineJIT, are the only batch sizes the engine
	// builds modules for (at most MaxJITShapes, each 1 to MaxBatch): a
	// batch is padded with zero images up to the next of them and its
	// outputs sliced back, a longer one run in pieces of the largest, so
	// that a server's varying batches cost a bounded set of builds
	// (Predictor.Warm builds them ahead). Empty: a module per batch size.
	JITBatches []int
}

// AutoLayout reports whether a model loaded with o on dev times both
// memory layouts on each new input shape (LayoutAuto): on the CPU, with
// no fixed layout, and not with the jit engine (it traces the model once:
// a layout chosen by timing has no place in a trace).
func (o LoadOptions) AutoLayout(dev torch.Device) bool {
	return !o.ChannelsLast && o.Layout != LayoutChannelsLast && o.Layout != LayoutContiguous &&
		dev.Type == torch.DeviceCPU && strings.ToLower(o.Engine) != EngineJIT
}

// apply prepares the evaluation-mode model m for inference on dev and
// returns the module to run (m itself, or a wrapper around it whose Free
// frees m).
func (o LoadOptions) apply(m nn.Module, dev torch.Device) (nn.Module, error) {
	amp, useAMP, err := torch.ParseAMP(o.AMP, dev)
	if err != nil {
		return nil, err
	}
	if !o.NoFuse {
		if _, err := models.Fuse(m); err != nil {
			return nil, err
		}
	}
	if err := checkLayout(o.Layout); err != nil {
		return nil, err
	}
	switch {
	case o.ChannelsLast || o.Layout == LayoutChannelsLast:
		if err := nn.ToMemoryFormat(m, torch.ChannelsLastFormat); err != nil {
			return nil, err
		}
		m = &channelsLast{m}
	case o.AutoLayout(dev):
		m = newAutoLayout(m)
	}
	if useAMP {
		m = models.WithAutocast(m, dev, amp)
	}
	return m, nil
}

// channelsLast lays its 4-D input out channels-last before the model, so
// that the convolutions run NHWC kernels throughout.
type channelsLast struct{ nn.Module }

func (c *channelsLast) Forward(x *torch.Tensor) *torch.Tensor {
	if x.Dim() != 4 {
		return c.Module.Forward(x)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		return c.Module.Forward(x.ContiguousAs(torch.ChannelsLastFormat))
	})
}

// String describes the options, for logs.
func (o LoadOptions) String() string {
	return fmt.Sprintf("fuse=%v channels_last=%v layout=%q amp=%q engine=%q", !o.NoFuse, o.ChannelsLast, o.Layout, o.AMP, o.Engine)
}
