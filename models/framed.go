package models

import (
	"fmt"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// SASEncoder is a model whose encoder SAS pretraining can train: Encode
// maps an input batch to the encoder's deepest feature map.
type SASEncoder interface {
	nn.Module
	Encode(x *torch.Tensor) *torch.Tensor
}

// framed runs a registered model's Forward in a frame, so that an unscoped
// call leaves only its result, whatever a model's code forgot, after
// checking the input against the model's spec and configuration.
type framed struct {
	nn.Module
	spec Spec
	in   int64
}

// Forward implements nn.Module.
func (f framed) Forward(x *torch.Tensor) *torch.Tensor {
	if err := f.check(x); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, f.Module.Forward)
}

// check rejects an input that is not [N, InChannels, H, W] with sides the
// model takes, naming the model and what it takes.
func (f framed) check(x *torch.Tensor) error {
	if err := x.Err(); err != nil {
		return err
	}
	s := x.Shape()
	if len(s) != 4 {
		return fmt.Errorf("models: %s: want an input [N, C, H, W], got shape %v", f.spec.Name, s)
	}
	if s[1] != f.in {
		return fmt.Errorf("models: %s: input has %d channels, the model was built for %d", f.spec.Name, s[1], f.in)
	}
	return f.spec.CheckSize(s[2], s[3])
}

// Unwrap returns the model itself.
func (f framed) Unwrap() nn.Module { return f.Module }

// framedEncoder is framed for a model with an encoder.
type framedEncoder struct {
	framed
	enc SASEncoder
}

// Encode implements SASEncoder.
func (f framedEncoder) Encode(x *torch.Tensor) *torch.Tensor {
	if err := f.check(x); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, f.enc.Encode)
}

func frame(m nn.Module, s Spec, cfg Config) nn.Module {
	// Pointers: a framed value holds its Spec (slices, funcs), which cannot
	// be a map key, and module-tree passes (nn.Uses) key maps by node.
	fr := framed{m, s, cfg.InChannels}
	if e, ok := m.(SASEncoder); ok {
		return &framedEncoder{fr, e}
	}
	return &fr
}

// Unwrap returns the architecture's own type inside what New returns (a
// *UNet, say), for callers that need its methods; other modules come back
// as they are.
func Unwrap(m nn.Module) nn.Module {
	if u, ok := m.(interface{ Unwrap() nn.Module }); ok {
		return u.Unwrap()
	}
	return m
}
