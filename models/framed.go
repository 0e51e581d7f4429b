package models

import (
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
// call leaves only its result, whatever a model's code forgot.
type framed struct{ nn.Module }

// Forward implements nn.Module.
func (f framed) Forward(x *torch.Tensor) *torch.Tensor { return nn.Frame(x, f.Module.Forward) }

// Unwrap returns the model itself.
func (f framed) Unwrap() nn.Module { return f.Module }

// framedEncoder is framed for a model with an encoder.
type framedEncoder struct {
	framed
	enc SASEncoder
}

// Encode implements SASEncoder.
func (f framedEncoder) Encode(x *torch.Tensor) *torch.Tensor { return nn.Frame(x, f.enc.Encode) }

func frame(m nn.Module) nn.Module {
	if e, ok := m.(SASEncoder); ok {
		return framedEncoder{framed{m}, e}
	}
	return framed{m}
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
