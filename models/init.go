package models

import (
	"fmt"

	"github.com/jmedseg/jmedseg/torch/nn"
)

// heInit gives every convolution of m Kaiming-normal weights (gain √2 for
// ReLU, fan as given) and zero biases. A failure is recorded on b, for Err,
// naming the model and the module.
func heInit(model string, b *nn.Base, mode nn.FanMode) {
	for _, nm := range b.NamedModules() {
		conv, ok := nm.Node.(*nn.Conv2d)
		if !ok {
			continue
		}
		err := nn.KaimingNormal(conv.Weight, 0, mode, nn.GainLeakyReLU)
		if err == nil && conv.Bias != nil {
			err = nn.Zeros(conv.Bias)
		}
		if err != nil {
			b.Fail(fmt.Errorf("%s: initialising %s: %w", model, nm.Name, err))
			return
		}
	}
}
