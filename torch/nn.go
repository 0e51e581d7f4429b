package torch

/*
#include "jmedseg.h"
*/
import "C"

// Softmax normalises exp(t) along dim.
func (t *Tensor) Softmax(dim int64) *Tensor {
	if err := argErr("softmax", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_softmax(t.h, C.int64_t(dim), 0), "softmax", t)
}

// LogSoftmax is log(Softmax(dim)), computed stably.
func (t *Tensor) LogSoftmax(dim int64) *Tensor {
	if err := argErr("log_softmax", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_softmax(t.h, C.int64_t(dim), 1), "log_softmax", t)
}

// Conv2d is a 2-D convolution of x [N,C,H,W] with w [O,C/groups,kh,kw] and
// optional bias b.
func Conv2d(x, w, b *Tensor, stride, padding, dilation [2]int64, groups int64) *Tensor {
	if err := argErr("conv2d", x, w); err != nil {
		return errTensor(err)
	}
	if err := optArgErr("conv2d", b); err != nil {
		return errTensor(err)
	}
	return result(C.jt_conv(x.h, w.h, optH(b), pair(&stride), pair(&padding), pair(&dilation), 2, C.int64_t(groups)), "conv2d", x, w, b)
}

// Conv1d is a 1-D convolution of x [N,C,L] with w [O,C/groups,k].
func Conv1d(x, w, b *Tensor, stride, padding, dilation, groups int64) *Tensor {
	if err := argErr("conv1d", x, w); err != nil {
		return errTensor(err)
	}
	if err := optArgErr("conv1d", b); err != nil {
		return errTensor(err)
	}
	s, p, d := [2]int64{stride}, [2]int64{padding}, [2]int64{dilation}
	return result(C.jt_conv(x.h, w.h, optH(b), pair(&s), pair(&p), pair(&d), 1, C.int64_t(groups)), "conv1d", x, w, b)
}

// ConvTranspose2d is the transposed 2-D convolution, w [C,O/groups,kh,kw].
func ConvTranspose2d(x, w, b *Tensor, stride, padding, outputPadding, dilation [2]int64, groups int64) *Tensor {
	if err := argErr("conv_transpose2d", x, w); err != nil {
		return errTensor(err)
	}
	if err := optArgErr("conv_transpose2d", b); err != nil {
		return errTensor(err)
	}
	return result(C.jt_conv_transpose2d(x.h, w.h, optH(b), pair(&stride), pair(&padding), pair(&outputPadding), pair(&dilation), C.int64_t(groups)), "conv_transpose2d", x, w, b)
}

// BatchNorm normalises over all but the channel dimension. In training it
// uses batch statistics and updates runningMean/runningVar in place (when
// given) with momentum; in evaluation it uses the running statistics.
func BatchNorm(x, weight, bias, runningMean, runningVar *Tensor, training bool, momentum, eps float64) *Tensor {
	if err := argErr("batch_norm", x); err != nil {
		return errTensor(err)
	}
	if err := optArgErr("batch_norm", weight, bias, runningMean, runningVar); err != nil {
		return errTensor(err)
	}
	return result(C.jt_batch_norm(x.h, optH(weight), optH(bias), optH(runningMean), optH(runningVar), cbool(training), C.double(momentum), C.double(eps)), "batch_norm", x, weight, bias)
}

// InstanceNorm normalises each sample and channel over its spatial extent.
func InstanceNorm(x, weight, bias, runningMean, runningVar *Tensor, useInputStats bool, momentum, eps float64) *Tensor {
	if err := argErr("instance_norm", x); err != nil {
		return errTensor(err)
	}
	if err := optArgErr("instance_norm", weight, bias, runningMean, runningVar); err != nil {
		return errTensor(err)
	}
	return result(C.jt_instance_norm(x.h, optH(weight), optH(bias), optH(runningMean), optH(runningVar), cbool(useInputStats), C.double(momentum), C.double(eps)), "instance_norm", x, weight, bias)
}

// GroupNorm normalises groups of channels.
func GroupNorm(x *Tensor, groups int64, weight, bias *Tensor, eps float64) *Tensor {
	if err := argErr("group_norm", x); err != nil {
		return errTensor(err)
	}
	if err := optArgErr("group_norm", weight, bias); err != nil {
		return errTensor(err)
	}
	return result(C.jt_group_norm(x.h, C.int64_t(groups), optH(weight), optH(bias), C.double(eps)), "group_norm", x, weight, bias)
}

// LayerNorm normalises over the trailing dimensions given by shape.
func LayerNorm(x *Tensor, shape []int64, weight, bias *Tensor, eps float64) *Tensor {
	if err := argErr("layer_norm", x); err != nil {
		return errTensor(err)
	}
	if err := optArgErr("layer_norm", weight, bias); err != nil {
		return errTensor(err)
	}
	p, n := ints(shape)
	return result(C.jt_layer_norm(x.h, p, n, optH(weight), optH(bias), C.double(eps)), "layer_norm", x, weight, bias)
}

// LeakyRelu returns max(t,0) + slope*min(t,0).
func (t *Tensor) LeakyRelu(slope float64) *Tensor {
	if err := argErr("leaky_relu", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_leaky_relu(t.h, C.double(slope)), "leaky_relu", t)
}

// Hardtanh clamps to [lo, hi] with the hardtanh gradient.
func (t *Tensor) Hardtanh(lo, hi float64) *Tensor {
	if err := argErr("hardtanh", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_hardtanh(t.h, C.double(lo), C.double(hi)), "hardtanh", t)
}

// Relu6 returns min(max(t,0),6).
func (t *Tensor) Relu6() *Tensor { return t.Hardtanh(0, 6) }

// Gelu is the Gaussian error linear unit (tanh approximation when approx).
func (t *Tensor) Gelu(approx bool) *Tensor {
	if err := argErr("gelu", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_gelu(t.h, cbool(approx)), "gelu", t)
}

// Elu is the exponential linear unit.
func (t *Tensor) Elu(alpha float64) *Tensor {
	if err := argErr("elu", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_elu(t.h, C.double(alpha)), "elu", t)
}

func dropout(name string, x *Tensor, p float64, train, feature bool) *Tensor {
	if err := argErr(name, x); err != nil {
		return errTensor(err)
	}
	return result(C.jt_dropout(x.h, C.double(p), cbool(train), cbool(feature)), name, x)
}

// Dropout zeroes elements with probability p in training and scales the rest by 1/(1-p).
func Dropout(x *Tensor, p float64, train bool) *Tensor { return dropout("dropout", x, p, train, false) }

// Dropout2d zeroes whole channels with probability p in training.
func Dropout2d(x *Tensor, p float64, train bool) *Tensor {
	return dropout("dropout2d", x, p, train, true)
}

// MaxPool2d is 2-D max pooling.
func MaxPool2d(x *Tensor, kernel, stride, padding, dilation [2]int64, ceilMode bool) *Tensor {
	if err := argErr("max_pool2d", x); err != nil {
		return errTensor(err)
	}
	var out, idx C.jt_result
	e := C.jt_max_pool2d(x.h, pair(&kernel), pair(&stride), pair(&padding), pair(&dilation), cbool(ceilMode), 0, &out, &idx)
	if err := takeErr(e, "max_pool2d", x); err != nil {
		return errTensor(err)
	}
	return newTensor(out.t, x.scope)
}

// MaxPool2dWithIndices is MaxPool2d that also returns the flat int64 indices
// MaxUnpool2d needs.
func MaxPool2dWithIndices(x *Tensor, kernel, stride, padding, dilation [2]int64, ceilMode bool) (out, indices *Tensor) {
	if err := argErr("max_pool2d_with_indices", x); err != nil {
		return errTensor(err), errTensor(err)
	}
	var o, i C.jt_result
	e := C.jt_max_pool2d(x.h, pair(&kernel), pair(&stride), pair(&padding), pair(&dilation), cbool(ceilMode), 1, &o, &i)
	if err := takeErr(e, "max_pool2d_with_indices", x); err != nil {
		return errTensor(err), errTensor(err)
	}
	return newTensor(o.t, x.scope), newTensor(i.t, x.scope)
}

// MaxUnpool2d scatters x back to a size [H,W] map at the pooling indices.
func MaxUnpool2d(x, indices *Tensor, size [2]int64) *Tensor {
	if err := argErr("max_unpool2d", x, indices); err != nil {
		return errTensor(err)
	}
	return result(C.jt_max_unpool2d(x.h, indices.h, pair(&size)), "max_unpool2d", x, indices)
}

// AvgPool2d is 2-D average pooling.
func AvgPool2d(x *Tensor, kernel, stride, padding [2]int64, ceilMode, countIncludePad bool) *Tensor {
	if err := argErr("avg_pool2d", x); err != nil {
		return errTensor(err)
	}
	return result(C.jt_avg_pool2d(x.h, pair(&kernel), pair(&stride), pair(&padding), cbool(ceilMode), cbool(countIncludePad)), "avg_pool2d", x)
}

// AdaptiveAvgPool2d averages into an output of size [H,W].
func AdaptiveAvgPool2d(x *Tensor, size [2]int64) *Tensor {
	if err := argErr("adaptive_avg_pool2d", x); err != nil {
		return errTensor(err)
	}
	return result(C.jt_adaptive_avg_pool2d(x.h, pair(&size)), "adaptive_avg_pool2d", x)
}

// AdaptiveMaxPool2d takes maxima into an output of size [H,W].
func AdaptiveMaxPool2d(x *Tensor, size [2]int64) (out, indices *Tensor) {
	if err := argErr("adaptive_max_pool2d", x); err != nil {
		return errTensor(err), errTensor(err)
	}
	var o, i C.jt_result
	if err := takeErr(C.jt_adaptive_max_pool2d(x.h, pair(&size), &o, &i), "adaptive_max_pool2d", x); err != nil {
		return errTensor(err), errTensor(err)
	}
	return newTensor(o.t, x.scope), newTensor(i.t, x.scope)
}

// InterpMode selects the interpolation of Resize and Upscale.
type InterpMode int

// Interpolation modes.
const (
	Nearest InterpMode = iota
	Bilinear
)

// Resize interpolates x [N,C,H,W] to size [H,W]
// (torch.nn.functional.interpolate with size=...).
func Resize(x *Tensor, size [2]int64, mode InterpMode, alignCorners bool) *Tensor {
	if err := argErr("interpolate", x); err != nil {
		return errTensor(err)
	}
	return result(C.jt_upsample2d(x.h, pair(&size), C.int(mode), cbool(alignCorners), 0, 0), "interpolate", x)
}

// Upscale interpolates x by a scale factor, as interpolate with
// scale_factor=...: the output size is floor(size·factor) and the kernel uses
// the factor itself, as PyTorch does.
func Upscale(x *Tensor, factor float64, mode InterpMode, alignCorners bool) *Tensor {
	if err := argErr("interpolate", x); err != nil {
		return errTensor(err)
	}
	s := x.Shape()
	if len(s) != 4 || factor <= 0 {
		return errTensor(&Error{Op: "interpolate", Inputs: describe([]*Tensor{x}), Msg: "want a 4-D input and a positive scale factor", Kind: KindValue})
	}
	size := [2]int64{int64(float64(s[2]) * factor), int64(float64(s[3]) * factor)}
	sc := C.double(factor)
	if alignCorners {
		sc = 0 // align_corners ignores the scale in PyTorch
	}
	return result(C.jt_upsample2d(x.h, pair(&size), C.int(mode), cbool(alignCorners), sc, sc), "interpolate", x)
}

// AffineGrid builds a sampling grid [N,H,W,2] from affine matrices theta
// [N,2,3] for an output of size [N,C,H,W].
func AffineGrid(theta *Tensor, size []int64, alignCorners bool) *Tensor {
	if err := argErr("affine_grid", theta); err != nil {
		return errTensor(err)
	}
	p, n := ints(size)
	return result(C.jt_affine_grid(theta.h, p, n, cbool(alignCorners)), "affine_grid", theta)
}

// GridPadding selects how GridSample treats points outside the input.
type GridPadding int

// Grid padding modes.
const (
	GridZeros GridPadding = iota
	GridBorder
	GridReflection
)

// GridSample samples x at grid's normalised coordinates.
func GridSample(x, grid *Tensor, mode InterpMode, padding GridPadding, alignCorners bool) *Tensor {
	if err := argErr("grid_sample", x, grid); err != nil {
		return errTensor(err)
	}
	m := 0 // ATen: 0 bilinear, 1 nearest
	if mode == Nearest {
		m = 1
	}
	return result(C.jt_grid_sample(x.h, grid.h, C.int(m), C.int(padding), cbool(alignCorners)), "grid_sample", x, grid)
}

// Reduction says how a loss combines its per-element values.
type Reduction int

// Reductions, numbered as ATen's.
const (
	ReduceNone Reduction = 0
	ReduceMean Reduction = 1
	ReduceSum  Reduction = 2
)

// NoIgnoreIndex is PyTorch's default ignore_index, which no class uses.
const NoIgnoreIndex = -100

// CrossEntropy is the cross-entropy of logits x [N,C,...] and int64 class
// targets [N,...], with optional class weights, an ignored class and label
// smoothing.
func CrossEntropy(x, target, weight *Tensor, reduction Reduction, ignoreIndex int64, labelSmoothing float64) *Tensor {
	if err := argErr("cross_entropy", x, target); err != nil {
		return errTensor(err)
	}
	if err := optArgErr("cross_entropy", weight); err != nil {
		return errTensor(err)
	}
	return result(C.jt_cross_entropy(x.h, target.h, optH(weight), C.int(reduction), C.int64_t(ignoreIndex), C.double(labelSmoothing)), "cross_entropy", x, target, weight)
}

// NLLLoss is the negative log-likelihood of log-probabilities x.
func NLLLoss(x, target, weight *Tensor, reduction Reduction, ignoreIndex int64) *Tensor {
	if err := argErr("nll_loss", x, target); err != nil {
		return errTensor(err)
	}
	if err := optArgErr("nll_loss", weight); err != nil {
		return errTensor(err)
	}
	return result(C.jt_nll_loss(x.h, target.h, optH(weight), C.int(reduction), C.int64_t(ignoreIndex)), "nll_loss", x, target, weight)
}

// MSELoss is the mean squared error.
func MSELoss(x, target *Tensor, reduction Reduction) *Tensor {
	if err := argErr("mse_loss", x, target); err != nil {
		return errTensor(err)
	}
	return result(C.jt_mse_loss(x.h, target.h, C.int(reduction)), "mse_loss", x, target)
}

// BCEWithLogits is binary cross-entropy on logits.
func BCEWithLogits(x, target, weight, posWeight *Tensor, reduction Reduction) *Tensor {
	if err := argErr("binary_cross_entropy_with_logits", x, target); err != nil {
		return errTensor(err)
	}
	if err := optArgErr("binary_cross_entropy_with_logits", weight, posWeight); err != nil {
		return errTensor(err)
	}
	return result(C.jt_bce_with_logits(x.h, target.h, optH(weight), optH(posWeight), C.int(reduction)), "binary_cross_entropy_with_logits", x, target)
}

// OneHot encodes int64 class ids as int64 one-hot vectors in a new last dimension.
func OneHot(t *Tensor, classes int64) *Tensor {
	if err := argErr("one_hot", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_one_hot(t.h, C.int64_t(classes)), "one_hot", t)
}

// Embedding looks up rows of weight at int64 indices.
func Embedding(weight, indices *Tensor) *Tensor {
	if err := argErr("embedding", weight, indices); err != nil {
		return errTensor(err)
	}
	return result(C.jt_embedding(weight.h, indices.h), "embedding", weight, indices)
}
