// Package train trains and evaluates segmentation models.
//
// Fit runs a Job made of values the caller built (a model, an optimizer, a
// loss, data loaders): the epoch loop with validation, NaN and interrupt
// handling, and callbacks where checkpoints go. New builds a run from
// Options (names, flags and a data set directory, as jmedseg train takes
// them) on top of it: best and last checkpoints in the run directory,
// exact resumption, evaluation of the test splits and the run report.
// Model files are package models' (models.Save, models.Load).
package train

import (
	"fmt"
	"strings"

	"github.com/jmedseg/jmedseg/models"
)

// Options configure a training run. Zero values select the defaults noted.
type Options struct {
	Model string        `json:"model"`        // registered model name (unet)
	Net   models.Config `json:"model_config"` // in_channels from the data when 0
	Data  string        `json:"data"`         // data set directory
	Out   string        `json:"out"`          // run directory

	Epochs    int     `json:"epochs"`    // 20
	Batch     int     `json:"batch"`     // 8
	LR        float64 `json:"lr"`        // 1e-4 (Adam) or 1e-2 (SGD)
	Optimizer string  `json:"optimizer"` // adam | adamw | sgd
	Momentum  float64 `json:"momentum"`  // SGD: 0.9
	Decay     float64 `json:"weight_decay"`
	Poly      bool    `json:"poly"` // lr·(1−it/total)^0.9 per iteration
	Loss      string  `json:"loss"` // spec (ce)
	Aug       bool    `json:"aug"`  // the SAS colour/blur augmentation
	Geometric bool    `json:"geometric"`
	// STN puts a spatial transformer in front of the model (models.WithSTN).
	STN     bool   `json:"stn"`
	Size    [2]int `json:"size"` // H, W; 0: the data's own size
	Workers int    `json:"workers"`
	Seed    uint64 `json:"seed"`
	Device  string `json:"device"`  // cpu | cuda | cuda:N | auto
	Threads int    `json:"threads"` // libtorch intra-op threads; 0 leaves the default
	Resume  bool   `json:"resume"`  // continue from Out/last.safetensors
	// Pretrained initialises the model from a checkpoint of the same layout
	// (non-strict: missing and unexpected keys are reported, not fatal).
	Pretrained string `json:"pretrained,omitempty"`
	// ValSplit and TrainSplit name the splits (val, train). Every other
	// split with masks is a test split, evaluated with the best model.
	TrainSplit string `json:"train_split"`
	ValSplit   string `json:"val_split"`
	// Overlays is the number of best and of worst test images drawn (3).
	Overlays int `json:"overlays"`
	// SkipBad skips training samples that cannot be read (reported by file
	// name and counted) instead of stopping.
	SkipBad bool `json:"skip_bad,omitempty"`
	// Normalize, when set, normalises inputs after their [0, 1] scaling
	// with per-channel Mean and Std (one per input channel), in training,
	// evaluation and (recorded in the model file) prediction. Nil: none.
	Normalize *models.Normalization `json:"normalize,omitempty"`
	// LimitBatches, when positive, caps the batches per epoch (smoke tests).
	LimitBatches int `json:"limit_batches,omitempty"`
}

func (o *Options) defaults() {
	if o.Model == "" {
		o.Model = "unet"
	}
	if o.Epochs == 0 {
		o.Epochs = 20
	}
	if o.Batch == 0 {
		o.Batch = 8
	}
	o.Optimizer = strings.ToLower(o.Optimizer)
	if o.Optimizer == "" {
		o.Optimizer = "adam"
	}
	if o.LR == 0 {
		o.LR = 1e-4
		if o.Optimizer == "sgd" {
			o.LR = 1e-2
		}
	}
	if o.Momentum == 0 && o.Optimizer == "sgd" {
		o.Momentum = 0.9
	}
	if o.Loss == "" {
		o.Loss = "ce"
	}
	if o.TrainSplit == "" {
		o.TrainSplit = "train"
	}
	if o.ValSplit == "" {
		o.ValSplit = "val"
	}
	if o.Overlays == 0 {
		o.Overlays = 3
	}
	if o.Device == "" {
		o.Device = "cpu"
	}
}

func (o *Options) validate() error {
	switch {
	case o.Data == "":
		return fmt.Errorf("train: no data set directory given")
	case o.Out == "":
		return fmt.Errorf("train: no run directory given")
	case o.Epochs < 1 || o.Batch < 1:
		return fmt.Errorf("train: epochs (%d) and batch (%d) must be positive", o.Epochs, o.Batch)
	case o.LR <= 0:
		return fmt.Errorf("train: learning rate %g must be positive", o.LR)
	case o.Optimizer != "adam" && o.Optimizer != "adamw" && o.Optimizer != "sgd":
		return fmt.Errorf("train: unknown optimizer %q (want adam, adamw or sgd)", o.Optimizer)
	case o.Size[0] < 0 || o.Size[1] < 0:
		return fmt.Errorf("train: bad size %dx%d", o.Size[0], o.Size[1])
	}
	return nil
}
