package models_test

import (
	"testing"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// The reference's gating (softmax over the whole tensor, batch included)
// equals its twin too.
func TestSCSEUNetSoftmaxGatingMatchesPyTorch(t *testing.T) {
	runTwinParity(t, []twinParityCase{{name: "scseunet-softmax", twin: "scseunet.SCSEUNetSoftmaxAll", width: 16,
		build: func(c models.Config) nn.Module {
			return models.NewSCSEUNet(c, models.SCSEOptions{Gate: block.SoftmaxAll})
		}}},
		[][2]int64{{16, 16}, {32, 48}})
}
