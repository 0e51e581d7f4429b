package nn

import (
	"github.com/jmedseg/jmedseg/torch"
)

// BatchNorm is torch.nn.BatchNorm1d and BatchNorm2d: parameters weight and
// bias, buffers running_mean, running_var and num_batches_tracked.
type BatchNorm struct {
	Base
	Weight, Bias            *torch.Tensor // nil with Affine(false)
	RunningMean, RunningVar *torch.Tensor // nil with TrackRunningStats(false)
	NumBatchesTracked       *torch.Tensor // int64 scalar
	Eps, Momentum           float64       // Momentum < 0: cumulative average
	NumFeatures             int64
	// Sync, when set, normalises in training mode with the statistics of
	// a whole process group's batch (jmedseg train --sync-bn sets it to
	// torch/dist's SyncBatchNorm); it updates the running statistics.
	Sync func(x, weight, bias, runningMean, runningVar *torch.Tensor, momentum, eps float64) *torch.Tensor
	dims []int
}

func newBatchNorm(n int64, dims []int, opts []Option) *BatchNorm {
	c, cerr := configure("BatchNorm", optEps|optMomentum|optAffine|optTrackStats, opts)
	m := &BatchNorm{NumFeatures: n, Eps: orF(c.eps, 1e-5), Momentum: orF(c.momentum, 0.1), dims: dims}
	m.fail(cerr)
	if orB(c.affine, true) {
		m.Weight = m.RegisterParameter("weight", torch.Ones([]int64{n}))
		m.Bias = m.RegisterParameter("bias", torch.Zeros([]int64{n}))
	}
	if orB(c.trackStats, true) {
		m.RunningMean = m.RegisterBuffer("running_mean", torch.Zeros([]int64{n}))
		m.RunningVar = m.RegisterBuffer("running_var", torch.Ones([]int64{n}))
		m.NumBatchesTracked = m.RegisterBuffer("num_batches_tracked", torch.Zeros([]int64{}, torch.Int64))
	}
	return m
}

// NewBatchNorm2d normalises [N, C, H, W] per channel. Options: Eps,
// Momentum, Affine, TrackRunningStats.
func NewBatchNorm2d(n int64, opts ...Option) *BatchNorm { return newBatchNorm(n, []int{4}, opts) }

// NewBatchNorm1d normalises [N, C] or [N, C, L] per channel.
func NewBatchNorm1d(n int64, opts ...Option) *BatchNorm { return newBatchNorm(n, []int{2, 3}, opts) }

// Forward normalises x with batch statistics in training mode (updating the
// running statistics in place and counting the batch) and with the running
// statistics in evaluation mode.
func (m *BatchNorm) Forward(x *torch.Tensor) *torch.Tensor {
	if err := x.Err(); err != nil {
		return x
	}
	if d := x.Dim(); !containsInt(m.dims, d) {
		return fail("BatchNorm: want a %v-D input, got %v", m.dims, x.Shape())
	}
	momentum := m.Momentum
	training := m.Training()
	if training && m.Sync == nil && valuesPerChannel(x) == 1 {
		// PyTorch refuses this too: the batch variance of one value is 0
		// and its unbiased running variance NaN, which would poison eval.
		return fail("BatchNorm: expected more than 1 value per channel when training, got input size %v (train with a batch of 2 or more)", x.Shape())
	}
	if training && m.NumBatchesTracked != nil {
		if err := m.NumBatchesTracked.AddIntInPlace(1); err != nil {
			return torch.FromError(err)
		}
		if momentum < 0 {
			n, err := m.NumBatchesTracked.Item()
			if err != nil {
				return torch.FromError(err)
			}
			momentum = 1 / n
		}
	}
	if training && m.Sync != nil {
		return m.Sync(x, m.Weight, m.Bias, m.RunningMean, m.RunningVar, momentum, m.Eps)
	}
	useBatch := training || m.RunningMean == nil
	return torch.BatchNorm(x, m.Weight, m.Bias, m.RunningMean, m.RunningVar, useBatch, momentum, m.Eps)
}

// valuesPerChannel is N times the spatial size: the values each channel's
// batch statistics are taken over.
func valuesPerChannel(x *torch.Tensor) int64 {
	s := x.Shape()
	n := int64(1)
	for i, v := range s {
		if i != 1 {
			n *= v
		}
	}
	return n
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// InstanceNorm2d is torch.nn.InstanceNorm2d (by default without affine
// parameters or running statistics).
type InstanceNorm2d struct {
	Base
	Weight, Bias            *torch.Tensor
	RunningMean, RunningVar *torch.Tensor
	NumBatchesTracked       *torch.Tensor
	Eps, Momentum           float64
}

// NewInstanceNorm2d normalises each sample and channel of [N, C, H, W].
// Options: Eps, Momentum, Affine, TrackRunningStats.
func NewInstanceNorm2d(n int64, opts ...Option) *InstanceNorm2d {
	c, cerr := configure("InstanceNorm2d", optEps|optMomentum|optAffine|optTrackStats, opts)
	m := &InstanceNorm2d{Eps: orF(c.eps, 1e-5), Momentum: orF(c.momentum, 0.1)}
	m.fail(cerr)
	if orB(c.affine, false) {
		m.Weight = m.RegisterParameter("weight", torch.Ones([]int64{n}))
		m.Bias = m.RegisterParameter("bias", torch.Zeros([]int64{n}))
	}
	if orB(c.trackStats, false) {
		m.RunningMean = m.RegisterBuffer("running_mean", torch.Zeros([]int64{n}))
		m.RunningVar = m.RegisterBuffer("running_var", torch.Ones([]int64{n}))
		m.NumBatchesTracked = m.RegisterBuffer("num_batches_tracked", torch.Zeros([]int64{}, torch.Int64))
	}
	return m
}

// Forward normalises x [N, C, H, W].
func (m *InstanceNorm2d) Forward(x *torch.Tensor) *torch.Tensor {
	if err := x.Err(); err != nil {
		return x
	}
	if x.Dim() != 4 {
		return fail("InstanceNorm2d: want a 4-D input, got %v", x.Shape())
	}
	useInput := m.Training() || m.RunningMean == nil
	return torch.InstanceNorm(x, m.Weight, m.Bias, m.RunningMean, m.RunningVar, useInput, m.Momentum, m.Eps)
}

// GroupNorm is torch.nn.GroupNorm.
type GroupNorm struct {
	Base
	Weight, Bias *torch.Tensor
	Groups       int64
	Eps          float64
}

// NewGroupNorm normalises groups of channels. Options: Eps, Affine.
func NewGroupNorm(groups, channels int64, opts ...Option) *GroupNorm {
	c, cerr := configure("GroupNorm", optEps|optAffine, opts)
	m := &GroupNorm{Groups: groups, Eps: orF(c.eps, 1e-5)}
	m.fail(cerr)
	if groups < 1 || channels%groups != 0 {
		m.fail(fail("GroupNorm: %d channels are not divisible into %d groups", channels, groups).Err())
		return m
	}
	if orB(c.affine, true) {
		m.Weight = m.RegisterParameter("weight", torch.Ones([]int64{channels}))
		m.Bias = m.RegisterParameter("bias", torch.Zeros([]int64{channels}))
	}
	return m
}

// Forward normalises x [N, C, ...].
func (m *GroupNorm) Forward(x *torch.Tensor) *torch.Tensor {
	return torch.GroupNorm(x, m.Groups, m.Weight, m.Bias, m.Eps)
}

// LayerNorm is torch.nn.LayerNorm over the trailing dimensions Shape.
type LayerNorm struct {
	Base
	Weight, Bias *torch.Tensor
	Shape        []int64
	Eps          float64
}

// NewLayerNorm normalises over the trailing dimensions shape. Options: Eps,
// Affine (elementwise_affine).
func NewLayerNorm(shape []int64, opts ...Option) *LayerNorm {
	c, cerr := configure("LayerNorm", optEps|optAffine, opts)
	m := &LayerNorm{Shape: append([]int64(nil), shape...), Eps: orF(c.eps, 1e-5)}
	m.fail(cerr)
	if orB(c.affine, true) {
		m.Weight = m.RegisterParameter("weight", torch.Ones(shape))
		m.Bias = m.RegisterParameter("bias", torch.Zeros(shape))
	}
	return m
}

// Forward normalises x [..., Shape...].
func (m *LayerNorm) Forward(x *torch.Tensor) *torch.Tensor {
	return torch.LayerNorm(x, m.Shape, m.Weight, m.Bias, m.Eps)
}
