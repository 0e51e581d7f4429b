package models

import (
	"fmt"

	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "u2netp", Description: "U²-Net small (every stage mid 16, out 64; fused logits)", DefaultWidth: 64, RefParams: 1_134_662, Multiple: 1,
		TestWidth: 8, TestSizes: [][2]int64{{1, 1}, {37, 53}, {128, 128}, {512, 512}}, Twin: "u2net.U2NetP",
		Build: func(c Config) (nn.Module, error) { return u2netBuild(NewU2NetP(c)) }})
}

// NewU2NetP builds the reference's U2NETP, U²-Net with every RSU at mid
// c.Width/4 and out c.Width channels (16 and 64 in the reference; c.Width
// must be a multiple of 4): the layout, keys and any-size input of U2Net,
// with the decoder stages taking 2·c.Width channels.
func NewU2NetP(c Config) (*U2Net, error) {
	w, q := c.Width, c.Width/4
	if w%4 != 0 {
		return nil, fmt.Errorf("width %d is not a multiple of 4", w)
	}
	enc := [6]u2netStage{{7, false, c.InChannels, q, w}, {6, false, w, q, w}, {5, false, w, q, w},
		{4, false, w, q, w}, {4, true, w, q, w}, {4, true, w, q, w}}
	dec := [5]u2netStage{{4, true, 2 * w, q, w}, {4, false, 2 * w, q, w}, {5, false, 2 * w, q, w},
		{6, false, 2 * w, q, w}, {7, false, 2 * w, q, w}}
	return newU2Net(c, enc, dec), nil
}
