package torch

/*
#include "jmedseg.h"
*/
import "C"

func (t *Tensor) reduce(op C.int, name string, dims []int64, keepdim bool, all bool) *Tensor {
	if err := argErr(name, t); err != nil {
		return errTensor(err)
	}
	p, n := ints(dims)
	if all {
		n = -1
	}
	return result(C.jt_reduce(op, t.h, p, n, cbool(keepdim)), name, t)
}

// Sum adds every element into a scalar.
func (t *Tensor) Sum() *Tensor { return t.reduce(C.JT_SUM, "sum", nil, false, true) }

// SumDims sums over dims.
func (t *Tensor) SumDims(dims []int64, keepdim bool) *Tensor {
	return t.reduce(C.JT_SUM, "sum", dims, keepdim, false)
}

// Mean averages every element into a scalar.
func (t *Tensor) Mean() *Tensor { return t.reduce(C.JT_MEAN, "mean", nil, false, true) }

// MeanDims averages over dims.
func (t *Tensor) MeanDims(dims []int64, keepdim bool) *Tensor {
	return t.reduce(C.JT_MEAN, "mean", dims, keepdim, false)
}

// Max is the largest element, as a scalar tensor.
func (t *Tensor) Max() *Tensor { return t.reduce(C.JT_AMAX, "max", nil, false, true) }

// Min is the smallest element, as a scalar tensor.
func (t *Tensor) Min() *Tensor { return t.reduce(C.JT_AMIN, "min", nil, false, true) }

// Amax is the maximum over dims.
func (t *Tensor) Amax(dims []int64, keepdim bool) *Tensor {
	return t.reduce(C.JT_AMAX, "amax", dims, keepdim, false)
}

// Amin is the minimum over dims.
func (t *Tensor) Amin(dims []int64, keepdim bool) *Tensor {
	return t.reduce(C.JT_AMIN, "amin", dims, keepdim, false)
}

// LogSumExp is log(sum(exp(t))) over dims, computed stably.
func (t *Tensor) LogSumExp(dims []int64, keepdim bool) *Tensor {
	return t.reduce(C.JT_LOGSUMEXP, "logsumexp", dims, keepdim, false)
}

// Prod multiplies every element.
func (t *Tensor) Prod() *Tensor { return t.reduce(C.JT_PROD, "prod", nil, false, true) }

// Any reports whether any element is true (a bool scalar).
func (t *Tensor) Any() *Tensor { return t.reduce(C.JT_ANY, "any", nil, false, true) }

// All reports whether every element is true (a bool scalar).
func (t *Tensor) All() *Tensor { return t.reduce(C.JT_ALL, "all", nil, false, true) }

func (t *Tensor) maxDim(name string, dim int64, keepdim, isMin bool) (values, indices *Tensor) {
	if err := argErr(name, t); err != nil {
		return errTensor(err), errTensor(err)
	}
	var v, i C.jt_result
	if err := takeErr(C.jt_max_dim(t.h, C.int64_t(dim), cbool(keepdim), cbool(isMin), &v, &i), name, t); err != nil {
		return errTensor(err), errTensor(err)
	}
	return newTensor(v.t, t.scope), newTensor(i.t, t.scope)
}

// MaxDim returns the maxima along dim and their int64 indices.
func (t *Tensor) MaxDim(dim int64, keepdim bool) (values, indices *Tensor) {
	return t.maxDim("max", dim, keepdim, false)
}

// MinDim returns the minima along dim and their int64 indices.
func (t *Tensor) MinDim(dim int64, keepdim bool) (values, indices *Tensor) {
	return t.maxDim("min", dim, keepdim, true)
}

// Argmax returns the int64 index of the maximum along dim.
func (t *Tensor) Argmax(dim int64, keepdim bool) *Tensor {
	if err := argErr("argmax", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_argmax(t.h, C.int64_t(dim), cbool(keepdim), 1, 0), "argmax", t)
}

// Argmin returns the int64 index of the minimum along dim.
func (t *Tensor) Argmin(dim int64, keepdim bool) *Tensor {
	if err := argErr("argmin", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_argmax(t.h, C.int64_t(dim), cbool(keepdim), 1, 1), "argmin", t)
}

// ArgmaxAll returns the flat index of the largest element.
func (t *Tensor) ArgmaxAll() *Tensor {
	if err := argErr("argmax", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_argmax(t.h, 0, 0, 0, 0), "argmax", t)
}

// Norm is the vector p-norm over dims (nil dims: every element).
func (t *Tensor) Norm(p float64, dims []int64, keepdim bool) *Tensor {
	if err := argErr("norm", t); err != nil {
		return errTensor(err)
	}
	q, n := ints(dims)
	if dims == nil {
		n = -1
	}
	return result(C.jt_norm(t.h, C.double(p), q, n, cbool(keepdim)), "norm", t)
}

func (t *Tensor) variance(name string, dims []int64, unbiased, keepdim, std bool) *Tensor {
	if err := argErr(name, t); err != nil {
		return errTensor(err)
	}
	q, n := ints(dims)
	if dims == nil {
		n = -1
	}
	return result(C.jt_var(t.h, q, n, cbool(unbiased), cbool(keepdim), cbool(std)), name, t)
}

// Var is the variance over dims (nil: every element).
func (t *Tensor) Var(dims []int64, unbiased, keepdim bool) *Tensor {
	return t.variance("var", dims, unbiased, keepdim, false)
}

// Std is the standard deviation over dims (nil: every element).
func (t *Tensor) Std(dims []int64, unbiased, keepdim bool) *Tensor {
	return t.variance("std", dims, unbiased, keepdim, true)
}

// Cumsum is the running sum along dim.
func (t *Tensor) Cumsum(dim int64) *Tensor {
	if err := argErr("cumsum", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_cumsum(t.h, C.int64_t(dim)), "cumsum", t)
}

// Bincount counts occurrences of each value of a 1-D non-negative int tensor,
// optionally weighted, with at least minLength bins.
func (t *Tensor) Bincount(weights *Tensor, minLength int64) *Tensor {
	if err := argErr("bincount", t); err != nil {
		return errTensor(err)
	}
	if err := optArgErr("bincount", weights); err != nil {
		return errTensor(err)
	}
	return result(C.jt_bincount(t.h, optH(weights), C.int64_t(minLength)), "bincount", t, weights)
}
