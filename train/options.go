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
	"math"
	"runtime"
	"strings"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch/dist"
)

// Options configure a training run. Zero values select the defaults noted.
type Options struct {
	Model string        `json:"model"`        // registered model name (unet)
	Net   models.Config `json:"model_config"` // in_channels from the data when 0
	Data  string        `json:"data"`         // data set directory
	Out   string        `json:"out"`          // run directory

	// Fold and Folds choose the cross-validation fold held out as val, for
	// layouts without a val split of their own (nnU-Net raw, data lists);
	// see data.OpenOptions.
	Fold  int `json:"fold,omitempty"`
	Folds int `json:"folds,omitempty"`

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
	// Force lets a new run replace the trained model in Out (its
	// best.safetensors, last.safetensors and report are overwritten as the
	// new run reaches them). Without it New refuses a run directory that
	// holds one, unless Resume.
	Force bool `json:"force,omitempty"`
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

	// Group, when it has more than one rank, makes this run one rank of a
	// data-parallel job (see dist.go): Batch is then the batch of each
	// rank, the global batch Group.Size() times it. Every rank is started
	// with the same options; rank 0 alone writes into Out.
	Group *dist.Group `json:"-"`
	// World records the number of ranks in the report and checkpoints.
	World int `json:"world_size,omitempty"`
	// SyncBN normalises every BatchNorm with the statistics of all ranks'
	// batches (torch.nn.SyncBatchNorm); without it each rank uses its own.
	SyncBN bool `json:"sync_bn,omitempty"`
	// AMP is mixed precision for the forward: "" (float32), "bf16" (CPU or
	// CUDA) or "fp16" (CUDA, with dynamic gradient scaling); see useAMP.
	AMP string `json:"amp,omitempty"`
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
	if o.Group != nil && o.Group.Size() > 1 {
		o.World = o.Group.Size()
	}
}

// Limits on numeric options, checked by New and by the command line.
const (
	// MaxSize is the largest side --size takes.
	MaxSize = 16384
	// ThreadsPerCPU bounds --threads at this many per logical CPU.
	ThreadsPerCPU = 4
	// WorkersPerCPU bounds --workers (data loading goroutines) likewise.
	WorkersPerCPU = 16
)

// MaxThreads is the most libtorch intra-op threads a run may ask for:
// ThreadsPerCPU times runtime.NumCPU(). More only thrash the machine.
func MaxThreads() int { return ThreadsPerCPU * runtime.NumCPU() }

// MaxWorkers is the most data loading goroutines a run may ask for.
func MaxWorkers() int { return WorkersPerCPU * runtime.NumCPU() }

// CheckThreads checks a --threads value: 0 (libtorch's default) up to
// MaxThreads.
func CheckThreads(n int) error {
	switch {
	case n < 0:
		return fmt.Errorf("--threads %d: want 0 (libtorch's default) or more", n)
	case n > MaxThreads():
		return fmt.Errorf("--threads %d: more than %d (%d per CPU, %d CPUs)", n, MaxThreads(), ThreadsPerCPU, runtime.NumCPU())
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// validate checks every option after defaults, naming the flag of jmedseg
// train that sets it.
func (o *Options) validate() error {
	switch {
	case o.Data == "":
		return fmt.Errorf("train: no data set directory given (--data)")
	case o.Out == "":
		return fmt.Errorf("train: no run directory given (--out)")
	case o.Epochs < 1:
		return fmt.Errorf("train: --epochs %d: want at least 1", o.Epochs)
	case o.Batch < 1:
		return fmt.Errorf("train: --batch %d: want at least 1", o.Batch)
	case !(o.LR > 0) || !finite(o.LR):
		return fmt.Errorf("train: --lr %g: want a positive finite learning rate", o.LR)
	case o.Optimizer != "adam" && o.Optimizer != "adamw" && o.Optimizer != "sgd":
		return fmt.Errorf("train: unknown optimizer %q (--optimizer: want adam, adamw or sgd)", o.Optimizer)
	case !(o.Decay >= 0) || !finite(o.Decay):
		return fmt.Errorf("train: --weight-decay %g: want a finite number, 0 or more", o.Decay)
	case !(o.Momentum >= 0) || !finite(o.Momentum):
		return fmt.Errorf("train: momentum %g: want a finite number, 0 or more", o.Momentum)
	case o.Size[0] < 0 || o.Size[1] < 0 || o.Size[0] > MaxSize || o.Size[1] > MaxSize:
		return fmt.Errorf("train: --size %dx%d: want sides from 1 to %d", o.Size[0], o.Size[1], MaxSize)
	case o.Net.Width < 0:
		return fmt.Errorf("train: --width %d: want a positive width (0: the reference's)", o.Net.Width)
	case o.Net.InChannels < 0 || o.Net.InChannels > data.MaxChannels:
		return fmt.Errorf("train: --in-channels %d: want 1 to %d (0: from dataset.json)", o.Net.InChannels, data.MaxChannels)
	case o.Workers < 0 || o.Workers > MaxWorkers():
		return fmt.Errorf("train: --workers %d: want 0 (one per CPU) up to %d (%d per CPU)", o.Workers, MaxWorkers(), WorkersPerCPU)
	case o.Net.Classes < 0 || o.Net.Classes == 1 || o.Net.Classes > 65535:
		return fmt.Errorf("train: --classes %d: want 2 or more, background included (0: from dataset.json)", o.Net.Classes)
	case o.LimitBatches < 0:
		return fmt.Errorf("train: --limit-batches %d: want 0 (no limit) or more", o.LimitBatches)
	case o.Overlays < 0:
		return fmt.Errorf("train: overlays %d: want 0 or more", o.Overlays)
	case o.Resume && o.Force:
		return fmt.Errorf("train: --resume continues the run in --out, --force replaces it: give one")
	}
	if err := CheckThreads(o.Threads); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}
