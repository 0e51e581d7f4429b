package torch

/*
#include "jmedseg.h"
*/
import "C"

// This file holds the operations torch/nn and torch/optim need beyond the
// core set: in-place random fills for initialisers, replacing a parameter's
// data (moving a module between devices and dtypes) and integer counters.

// UniformInPlace fills t with samples uniform in [from, to) from the default
// generator. Call it inside NoGrad on a leaf that requires gradients.
func (t *Tensor) UniformInPlace(from, to float64) error {
	return inplace("uniform_", func() *C.jt_error { return C.jt_uniform_(t.h, C.double(from), C.double(to)) }, t)
}

// NormalInPlace fills t with normal samples of the given mean and standard
// deviation from the default generator.
func (t *Tensor) NormalInPlace(mean, std float64) error {
	return inplace("normal_", func() *C.jt_error { return C.jt_normal_(t.h, C.double(mean), C.double(std)) }, t)
}

// SetData makes t use src's data (device, dtype, shape and storage) while
// keeping t's identity: every holder of t sees the new data, and t stays the
// same autograd leaf with the same requires-grad flag. It is PyTorch's
// `param.data = src`, which Module.to uses. src stays owned by the caller.
func (t *Tensor) SetData(src *Tensor) error {
	return inplace("set_data", func() *C.jt_error { return C.jt_set_data(t.h, src.h) }, t, src)
}

// AddIntInPlace does t += v with an integer scalar, so that an int64 tensor
// (a counter such as BatchNorm's num_batches_tracked) stays int64.
func (t *Tensor) AddIntInPlace(v int64) error {
	return inplace("add_", func() *C.jt_error { return C.jt_add_int_(t.h, C.int64_t(v)) }, t)
}
