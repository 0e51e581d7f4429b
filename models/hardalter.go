package models

import "github.com/jmedseg/jmedseg/torch/nn"

func init() {
	Register(Spec{Name: "hardalter", Description: "HarD-MSEG with a fourth decoder level on the 1/4 tap (HarDNet_alter)", DefaultWidth: 32, RefParams: 17_836_094, Multiple: 32,
		TestWidth: 4, TestSizes: [][2]int64{{32, 32}, {64, 96}, {128, 128}, {512, 512}}, Twin: "hardalter.HarDMSEGAlter",
		Build: func(c Config) (nn.Module, error) { return NewHarDMSEGAlter(c), nil }})
}

// NewHarDMSEGAlter builds the reference's HarDMSEG_alter
// (model/HarDNet_alter.py) of width c.Width (32 in the reference;
// 17,836,094 parameters with 3 input channels and 2 classes): HarD-MSEG
// (see HarDMSEG) with "rfb1_1", a fourth RFB block on the backbone's 128
// channels at 1/4, and a four-level partial decoder ("agg1" gains
// "conv_upsample6", a conv3 3c → 3c on the up-sampled third level, and
// "conv_concat4", a conv3 4c → 4c on its concatenation with the 1/4 RFB
// features; "conv4" and "conv5" take 4c) whose logits at 1/4 are
// up-sampled bilinearly ×4. Keys list rfb1_1..rfb4_1, agg1, then hardnet.
// Input sides must be multiples of 32, the smallest input 32×32.
func NewHarDMSEGAlter(c Config) *HarDMSEG { return newHarDMSEG(c, 4) }
