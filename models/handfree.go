package models

import "github.com/jmedseg/jmedseg/torch"

// relu and free serve deeplab.go and resnet.go only until they move onto
// models/encoder and models/block (issue 9); new code uses nn.Frame.
func relu(t *torch.Tensor) *torch.Tensor {
	if err := t.ReluInPlace(); err != nil {
		return torch.FromError(err)
	}
	return t
}

func free(ts ...*torch.Tensor) {
	for _, t := range ts {
		t.Free()
	}
}
