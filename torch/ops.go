package torch

/*
#include "jmedseg.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// h returns the handle of an optional tensor argument (nil stays nil).
func optH(t *Tensor) C.jt_tensor {
	if t == nil {
		return nil
	}
	return t.h
}

// optArgErr checks optional arguments: nil is allowed, failed or freed is not.
func optArgErr(op string, ts ...*Tensor) error {
	for _, t := range ts {
		if t != nil {
			if err := argErr(op, t); err != nil {
				return err
			}
		}
	}
	return nil
}

func ints(s []int64) (*C.int64_t, C.int64_t) {
	if len(s) == 0 {
		return nil, 0
	}
	return (*C.int64_t)(unsafe.Pointer(&s[0])), C.int64_t(len(s))
}

func pair(p *[2]int64) *C.int64_t { return (*C.int64_t)(unsafe.Pointer(&p[0])) }

func unary(op C.int, name string, t *Tensor) *Tensor {
	if err := argErr(name, t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_unary(op, t.h), name, t)
}

func binary(op C.int, name string, a, b *Tensor) *Tensor {
	if err := argErr(name, a, b); err != nil {
		return errTensor(err)
	}
	return result(C.jt_binary(op, a.h, b.h), name, a, b)
}

func binaryScalar(op C.int, name string, a *Tensor, s float64) *Tensor {
	if err := argErr(name, a); err != nil {
		return errTensor(err)
	}
	return result(C.jt_binary_scalar(op, a.h, C.double(s)), name, a)
}

// inplace runs a shim call that mutates its inputs and reports its error.
func inplace(name string, call func() *C.jt_error, ts ...*Tensor) error {
	if err := argErr(name, ts...); err != nil {
		return err
	}
	err := takeErr(call(), name, ts...)
	runtime.KeepAlive(ts)
	return err
}

// ---- shape ----

// View returns a view with a new shape (one size may be -1).
func (t *Tensor) View(shape ...int64) *Tensor {
	if err := argErr("view", t); err != nil {
		return errTensor(err)
	}
	p, n := ints(shape)
	return result(C.jt_view(t.h, p, n), "view", t)
}

// Reshape is View where possible and a copy otherwise.
func (t *Tensor) Reshape(shape ...int64) *Tensor {
	if err := argErr("reshape", t); err != nil {
		return errTensor(err)
	}
	p, n := ints(shape)
	return result(C.jt_reshape(t.h, p, n), "reshape", t)
}

// Permute reorders the dimensions.
func (t *Tensor) Permute(dims ...int64) *Tensor {
	if err := argErr("permute", t); err != nil {
		return errTensor(err)
	}
	p, n := ints(dims)
	return result(C.jt_permute(t.h, p, n), "permute", t)
}

// Expand broadcasts size-1 dimensions to shape without copying (-1 keeps a size).
func (t *Tensor) Expand(shape ...int64) *Tensor {
	if err := argErr("expand", t); err != nil {
		return errTensor(err)
	}
	p, n := ints(shape)
	return result(C.jt_expand(t.h, p, n), "expand", t)
}

// Repeat tiles the tensor.
func (t *Tensor) Repeat(times ...int64) *Tensor {
	if err := argErr("repeat", t); err != nil {
		return errTensor(err)
	}
	p, n := ints(times)
	return result(C.jt_repeat(t.h, p, n), "repeat", t)
}

// Flip reverses the given dimensions.
func (t *Tensor) Flip(dims ...int64) *Tensor {
	if err := argErr("flip", t); err != nil {
		return errTensor(err)
	}
	p, n := ints(dims)
	return result(C.jt_flip(t.h, p, n), "flip", t)
}

// Transpose swaps two dimensions.
func (t *Tensor) Transpose(d0, d1 int64) *Tensor {
	if err := argErr("transpose", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_transpose(t.h, C.int64_t(d0), C.int64_t(d1)), "transpose", t)
}

// Flatten merges dimensions start..end (inclusive; -1 is the last).
func (t *Tensor) Flatten(start, end int64) *Tensor {
	if err := argErr("flatten", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_flatten(t.h, C.int64_t(start), C.int64_t(end)), "flatten", t)
}

// Squeeze removes every size-1 dimension.
func (t *Tensor) Squeeze() *Tensor {
	if err := argErr("squeeze", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_squeeze(t.h, 0, 1), "squeeze", t)
}

// SqueezeDim removes dimension d if its size is 1.
func (t *Tensor) SqueezeDim(d int64) *Tensor {
	if err := argErr("squeeze", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_squeeze(t.h, C.int64_t(d), 0), "squeeze", t)
}

// Unsqueeze inserts a size-1 dimension at d.
func (t *Tensor) Unsqueeze(d int64) *Tensor {
	if err := argErr("unsqueeze", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_unsqueeze(t.h, C.int64_t(d)), "unsqueeze", t)
}

// Narrow returns elements start..start+length-1 of dimension dim (a view).
func (t *Tensor) Narrow(dim, start, length int64) *Tensor {
	if err := argErr("narrow", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_narrow(t.h, C.int64_t(dim), C.int64_t(start), C.int64_t(length)), "narrow", t)
}

// Select returns index i of dimension dim, removing that dimension (a view).
func (t *Tensor) Select(dim, i int64) *Tensor {
	if err := argErr("select", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_select(t.h, C.int64_t(dim), C.int64_t(i)), "select", t)
}

// IndexSelect picks the entries of dimension dim listed in the int64 index.
func (t *Tensor) IndexSelect(dim int64, index *Tensor) *Tensor {
	if err := argErr("index_select", t, index); err != nil {
		return errTensor(err)
	}
	return result(C.jt_index_select(t.h, C.int64_t(dim), index.h), "index_select", t, index)
}

// Gather collects values along dim at the int64 index.
func (t *Tensor) Gather(dim int64, index *Tensor) *Tensor {
	if err := argErr("gather", t, index); err != nil {
		return errTensor(err)
	}
	return result(C.jt_gather(t.h, C.int64_t(dim), index.h), "gather", t, index)
}

// Roll shifts elements circularly along dims.
func (t *Tensor) Roll(shifts, dims []int64) *Tensor {
	if err := argErr("roll", t); err != nil {
		return errTensor(err)
	}
	if len(shifts) != len(dims) {
		return errTensor(&Error{Op: "roll", Inputs: describe([]*Tensor{t}), Msg: "shifts and dims differ in length", Kind: KindValue})
	}
	p, n := ints(shifts)
	q, _ := ints(dims)
	return result(C.jt_roll(t.h, p, q, n), "roll", t)
}

// PadMode selects how Pad fills the border.
type PadMode int

// Padding modes.
const (
	PadConstant PadMode = iota
	PadReflect
	PadReplicate
	PadCircular
)

// Pad pads the last dimensions as torch.nn.functional.pad: pad lists
// (left, right, top, bottom, ...) from the last dimension backwards. value
// is used by PadConstant only.
func (t *Tensor) Pad(pad []int64, mode PadMode, value float64) *Tensor {
	if err := argErr("pad", t); err != nil {
		return errTensor(err)
	}
	p, n := ints(pad)
	return result(C.jt_pad(t.h, p, n, C.int(mode), C.double(value)), "pad", t)
}

func handles(op string, ts []*Tensor) ([]C.jt_tensor, error) {
	if len(ts) == 0 {
		return nil, &Error{Op: op, Msg: "no tensors given", Kind: KindValue}
	}
	if err := argErr(op, ts...); err != nil {
		return nil, err
	}
	hs := make([]C.jt_tensor, len(ts))
	for i, t := range ts {
		hs[i] = t.h
	}
	return hs, nil
}

// Cat concatenates tensors along dim.
func Cat(ts []*Tensor, dim int64) *Tensor {
	hs, err := handles("cat", ts)
	if err != nil {
		return errTensor(err)
	}
	return result(C.jt_cat(&hs[0], C.int64_t(len(hs)), C.int64_t(dim)), "cat", ts...)
}

// Stack joins tensors of equal shape along a new dimension dim.
func Stack(ts []*Tensor, dim int64) *Tensor {
	hs, err := handles("stack", ts)
	if err != nil {
		return errTensor(err)
	}
	return result(C.jt_stack(&hs[0], C.int64_t(len(hs)), C.int64_t(dim)), "stack", ts...)
}

func (t *Tensor) split(op string, size, chunks, dim int64) ([]*Tensor, error) {
	if err := argErr(op, t); err != nil {
		return nil, err
	}
	capacity := chunks
	if chunks <= 0 {
		if size <= 0 {
			return nil, &Error{Op: op, Inputs: describe([]*Tensor{t}), Msg: "split size must be positive", Kind: KindValue}
		}
		d := t.Size(int(dim))
		capacity = (d + size - 1) / size
	}
	if capacity < 1 {
		capacity = 1
	}
	out := make([]C.jt_tensor, capacity)
	var n C.int64_t
	e := C.jt_split(t.h, C.int64_t(size), C.int64_t(chunks), C.int64_t(dim), &out[0], C.int64_t(capacity), &n)
	runtime.KeepAlive(t)
	if err := takeErr(e, op, t); err != nil {
		return nil, err
	}
	ts := make([]*Tensor, int(n))
	for i := range ts {
		ts[i] = newTensor(out[i], t.scope)
	}
	return ts, nil
}

// Split cuts the tensor into pieces of size along dim (the last may be smaller).
func (t *Tensor) Split(size, dim int64) ([]*Tensor, error) { return t.split("split", size, 0, dim) }

// Chunk cuts the tensor into n nearly equal pieces along dim.
func (t *Tensor) Chunk(n, dim int64) ([]*Tensor, error) {
	if n <= 0 {
		return nil, &Error{Op: "chunk", Msg: "chunk count must be positive", Kind: KindValue}
	}
	return t.split("chunk", 0, n, dim)
}

// Contiguous returns the tensor laid out densely (itself, as a new handle, if it already is).
func (t *Tensor) Contiguous() *Tensor {
	if err := argErr("contiguous", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_contiguous(t.h), "contiguous", t)
}

// Clone copies the tensor (gradients flow back to t).
func (t *Tensor) Clone() *Tensor {
	if err := argErr("clone", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_clone(t.h), "clone", t)
}

// ---- arithmetic ----

// Add returns t + u with broadcasting.
func (t *Tensor) Add(u *Tensor) *Tensor { return binary(C.JT_ADD, "add", t, u) }

// Sub returns t - u.
func (t *Tensor) Sub(u *Tensor) *Tensor { return binary(C.JT_SUB, "sub", t, u) }

// Mul returns t * u elementwise.
func (t *Tensor) Mul(u *Tensor) *Tensor { return binary(C.JT_MUL, "mul", t, u) }

// Div returns t / u (true division).
func (t *Tensor) Div(u *Tensor) *Tensor { return binary(C.JT_DIV, "div", t, u) }

// FloorDiv returns floor(t / u).
func (t *Tensor) FloorDiv(u *Tensor) *Tensor { return binary(C.JT_FLOOR_DIVIDE, "floor_divide", t, u) }

// Pow returns t ** u.
func (t *Tensor) Pow(u *Tensor) *Tensor { return binary(C.JT_POW, "pow", t, u) }

// Remainder returns t mod u with the sign of u (Python's %).
func (t *Tensor) Remainder(u *Tensor) *Tensor { return binary(C.JT_REMAINDER, "remainder", t, u) }

// Atan2 returns atan2(t, u).
func (t *Tensor) Atan2(u *Tensor) *Tensor { return binary(C.JT_ATAN2, "atan2", t, u) }

// Maximum returns the elementwise maximum.
func (t *Tensor) Maximum(u *Tensor) *Tensor { return binary(C.JT_MAXIMUM, "maximum", t, u) }

// Minimum returns the elementwise minimum.
func (t *Tensor) Minimum(u *Tensor) *Tensor { return binary(C.JT_MINIMUM, "minimum", t, u) }

// Eq returns t == u as bool.
func (t *Tensor) Eq(u *Tensor) *Tensor { return binary(C.JT_EQ, "eq", t, u) }

// Ne returns t != u as bool.
func (t *Tensor) Ne(u *Tensor) *Tensor { return binary(C.JT_NE, "ne", t, u) }

// Lt returns t < u as bool.
func (t *Tensor) Lt(u *Tensor) *Tensor { return binary(C.JT_LT, "lt", t, u) }

// Le returns t <= u as bool.
func (t *Tensor) Le(u *Tensor) *Tensor { return binary(C.JT_LE, "le", t, u) }

// Gt returns t > u as bool.
func (t *Tensor) Gt(u *Tensor) *Tensor { return binary(C.JT_GT, "gt", t, u) }

// Ge returns t >= u as bool.
func (t *Tensor) Ge(u *Tensor) *Tensor { return binary(C.JT_GE, "ge", t, u) }

// LogicalAnd returns t && u.
func (t *Tensor) LogicalAnd(u *Tensor) *Tensor { return binary(C.JT_LOGICAL_AND, "logical_and", t, u) }

// LogicalOr returns t || u.
func (t *Tensor) LogicalOr(u *Tensor) *Tensor { return binary(C.JT_LOGICAL_OR, "logical_or", t, u) }

// AddScaled returns t + alpha*u in one kernel.
func (t *Tensor) AddScaled(u *Tensor, alpha float64) *Tensor {
	if err := argErr("add", t, u); err != nil {
		return errTensor(err)
	}
	return result(C.jt_add_scaled(t.h, u.h, C.double(alpha)), "add", t, u)
}

// AddScalar returns t + s. Scalars are doubles: on an integer tensor the
// result is floating point, as 1.0 + x is in PyTorch.
func (t *Tensor) AddScalar(s float64) *Tensor { return binaryScalar(C.JT_ADD, "add", t, s) }

// SubScalar returns t - s.
func (t *Tensor) SubScalar(s float64) *Tensor { return binaryScalar(C.JT_SUB, "sub", t, s) }

// RSubScalar returns s - t.
func (t *Tensor) RSubScalar(s float64) *Tensor { return binaryScalar(C.JT_RSUB, "rsub", t, s) }

// MulScalar returns t * s.
func (t *Tensor) MulScalar(s float64) *Tensor { return binaryScalar(C.JT_MUL, "mul", t, s) }

// DivScalar returns t / s.
func (t *Tensor) DivScalar(s float64) *Tensor { return binaryScalar(C.JT_DIV, "div", t, s) }

// PowScalar returns t ** s.
func (t *Tensor) PowScalar(s float64) *Tensor { return binaryScalar(C.JT_POW, "pow", t, s) }

// EqScalar returns t == s as bool.
func (t *Tensor) EqScalar(s float64) *Tensor { return binaryScalar(C.JT_EQ, "eq", t, s) }

// NeScalar returns t != s as bool.
func (t *Tensor) NeScalar(s float64) *Tensor { return binaryScalar(C.JT_NE, "ne", t, s) }

// LtScalar returns t < s as bool.
func (t *Tensor) LtScalar(s float64) *Tensor { return binaryScalar(C.JT_LT, "lt", t, s) }

// LeScalar returns t <= s as bool.
func (t *Tensor) LeScalar(s float64) *Tensor { return binaryScalar(C.JT_LE, "le", t, s) }

// GtScalar returns t > s as bool.
func (t *Tensor) GtScalar(s float64) *Tensor { return binaryScalar(C.JT_GT, "gt", t, s) }

// GeScalar returns t >= s as bool.
func (t *Tensor) GeScalar(s float64) *Tensor { return binaryScalar(C.JT_GE, "ge", t, s) }

// ---- in place (optimizers, running statistics) ----

// AddInPlace does t += u.
func (t *Tensor) AddInPlace(u *Tensor) error {
	return inplace("add_", func() *C.jt_error { return C.jt_binary_(C.JT_ADD, t.h, u.h) }, t, u)
}

// SubInPlace does t -= u.
func (t *Tensor) SubInPlace(u *Tensor) error {
	return inplace("sub_", func() *C.jt_error { return C.jt_binary_(C.JT_SUB, t.h, u.h) }, t, u)
}

// MulInPlace does t *= u.
func (t *Tensor) MulInPlace(u *Tensor) error {
	return inplace("mul_", func() *C.jt_error { return C.jt_binary_(C.JT_MUL, t.h, u.h) }, t, u)
}

// DivInPlace does t /= u.
func (t *Tensor) DivInPlace(u *Tensor) error {
	return inplace("div_", func() *C.jt_error { return C.jt_binary_(C.JT_DIV, t.h, u.h) }, t, u)
}

// MaximumInPlace does t = max(t, u).
func (t *Tensor) MaximumInPlace(u *Tensor) error {
	return inplace("maximum_", func() *C.jt_error { return C.jt_binary_(C.JT_MAXIMUM, t.h, u.h) }, t, u)
}

// AddScalarInPlace does t += s.
func (t *Tensor) AddScalarInPlace(s float64) error {
	return inplace("add_", func() *C.jt_error { return C.jt_binary_scalar_(C.JT_ADD, t.h, C.double(s)) }, t)
}

// MulScalarInPlace does t *= s.
func (t *Tensor) MulScalarInPlace(s float64) error {
	return inplace("mul_", func() *C.jt_error { return C.jt_binary_scalar_(C.JT_MUL, t.h, C.double(s)) }, t)
}

// DivScalarInPlace does t /= s.
func (t *Tensor) DivScalarInPlace(s float64) error {
	return inplace("div_", func() *C.jt_error { return C.jt_binary_scalar_(C.JT_DIV, t.h, C.double(s)) }, t)
}

// AddScaledInPlace does t += alpha*u.
func (t *Tensor) AddScaledInPlace(u *Tensor, alpha float64) error {
	return inplace("add_", func() *C.jt_error { return C.jt_add_scaled_(t.h, u.h, C.double(alpha)) }, t, u)
}

// AddcmulInPlace does t += v*a*b.
func (t *Tensor) AddcmulInPlace(a, b *Tensor, v float64) error {
	return inplace("addcmul_", func() *C.jt_error { return C.jt_addcmul_(t.h, a.h, b.h, C.double(v)) }, t, a, b)
}

// AddcdivInPlace does t += v*a/b.
func (t *Tensor) AddcdivInPlace(a, b *Tensor, v float64) error {
	return inplace("addcdiv_", func() *C.jt_error { return C.jt_addcdiv_(t.h, a.h, b.h, C.double(v)) }, t, a, b)
}

// LerpInPlace does t += w*(end-t).
func (t *Tensor) LerpInPlace(end *Tensor, w float64) error {
	return inplace("lerp_", func() *C.jt_error { return C.jt_lerp_(t.h, end.h, C.double(w)) }, t, end)
}

// CopyFrom copies src into t (broadcasting, converting dtype and device).
func (t *Tensor) CopyFrom(src *Tensor) error {
	return inplace("copy_", func() *C.jt_error { return C.jt_copy_(t.h, src.h) }, t, src)
}

// Fill sets every element to v.
func (t *Tensor) Fill(v float64) error {
	return inplace("fill_", func() *C.jt_error { return C.jt_fill_(t.h, C.double(v)) }, t)
}

// Zero sets every element to 0.
func (t *Tensor) Zero() error {
	return inplace("zero_", func() *C.jt_error { return C.jt_zero_(t.h) }, t)
}

// ClampInPlace limits elements to [lo, hi]; NaN bounds are ignored.
func (t *Tensor) ClampInPlace(lo, hi float64) error {
	hasLo, hasHi := cbool(lo == lo), cbool(hi == hi)
	return inplace("clamp_", func() *C.jt_error { return C.jt_clamp_(t.h, C.double(lo), C.double(hi), hasLo, hasHi) }, t)
}

// SqrtInPlace does t = sqrt(t).
func (t *Tensor) SqrtInPlace() error {
	return inplace("sqrt_", func() *C.jt_error { return C.jt_unary_(C.JT_SQRT, t.h) }, t)
}

// ReluInPlace does t = max(t, 0).
func (t *Tensor) ReluInPlace() error {
	return inplace("relu_", func() *C.jt_error { return C.jt_unary_(C.JT_RELU, t.h) }, t)
}

// ---- elementwise math ----

// Neg returns -t.
func (t *Tensor) Neg() *Tensor { return unary(C.JT_NEG, "neg", t) }

// Abs returns |t|.
func (t *Tensor) Abs() *Tensor { return unary(C.JT_ABS, "abs", t) }

// Exp returns e**t.
func (t *Tensor) Exp() *Tensor { return unary(C.JT_EXP, "exp", t) }

// Expm1 returns e**t - 1.
func (t *Tensor) Expm1() *Tensor { return unary(C.JT_EXPM1, "expm1", t) }

// Log returns the natural logarithm.
func (t *Tensor) Log() *Tensor { return unary(C.JT_LOG, "log", t) }

// Log2 returns the base-2 logarithm.
func (t *Tensor) Log2() *Tensor { return unary(C.JT_LOG2, "log2", t) }

// Log1p returns log(1 + t).
func (t *Tensor) Log1p() *Tensor { return unary(C.JT_LOG1P, "log1p", t) }

// Sqrt returns the square root.
func (t *Tensor) Sqrt() *Tensor { return unary(C.JT_SQRT, "sqrt", t) }

// Rsqrt returns 1/sqrt(t).
func (t *Tensor) Rsqrt() *Tensor { return unary(C.JT_RSQRT, "rsqrt", t) }

// Square returns t*t.
func (t *Tensor) Square() *Tensor { return unary(C.JT_SQUARE, "square", t) }

// Reciprocal returns 1/t.
func (t *Tensor) Reciprocal() *Tensor { return unary(C.JT_RECIPROCAL, "reciprocal", t) }

// Sin returns sin(t).
func (t *Tensor) Sin() *Tensor { return unary(C.JT_SIN, "sin", t) }

// Cos returns cos(t).
func (t *Tensor) Cos() *Tensor { return unary(C.JT_COS, "cos", t) }

// Erf returns the error function.
func (t *Tensor) Erf() *Tensor { return unary(C.JT_ERF, "erf", t) }

// Tanh returns tanh(t).
func (t *Tensor) Tanh() *Tensor { return unary(C.JT_TANH, "tanh", t) }

// Sigmoid returns 1/(1+e**-t).
func (t *Tensor) Sigmoid() *Tensor { return unary(C.JT_SIGMOID, "sigmoid", t) }

// Relu returns max(t, 0).
func (t *Tensor) Relu() *Tensor { return unary(C.JT_RELU, "relu", t) }

// Silu returns t*sigmoid(t).
func (t *Tensor) Silu() *Tensor { return unary(C.JT_SILU, "silu", t) }

// Floor rounds down.
func (t *Tensor) Floor() *Tensor { return unary(C.JT_FLOOR, "floor", t) }

// Ceil rounds up.
func (t *Tensor) Ceil() *Tensor { return unary(C.JT_CEIL, "ceil", t) }

// Round rounds half to even.
func (t *Tensor) Round() *Tensor { return unary(C.JT_ROUND, "round", t) }

// Sign returns -1, 0 or 1.
func (t *Tensor) Sign() *Tensor { return unary(C.JT_SIGN, "sign", t) }

// LogicalNot returns !t as bool.
func (t *Tensor) LogicalNot() *Tensor { return unary(C.JT_LOGICAL_NOT, "logical_not", t) }

// IsNaN marks NaN elements.
func (t *Tensor) IsNaN() *Tensor { return unary(C.JT_ISNAN, "isnan", t) }

// IsFinite marks elements that are neither NaN nor infinite.
func (t *Tensor) IsFinite() *Tensor { return unary(C.JT_ISFINITE, "isfinite", t) }

func (t *Tensor) clamp(op string, lo, hi float64, hasLo, hasHi bool) *Tensor {
	if err := argErr(op, t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_clamp(t.h, C.double(lo), C.double(hi), cbool(hasLo), cbool(hasHi)), op, t)
}

// Clamp limits elements to [lo, hi].
func (t *Tensor) Clamp(lo, hi float64) *Tensor { return t.clamp("clamp", lo, hi, true, true) }

// ClampMin limits elements from below.
func (t *Tensor) ClampMin(lo float64) *Tensor { return t.clamp("clamp_min", lo, 0, true, false) }

// ClampMax limits elements from above.
func (t *Tensor) ClampMax(hi float64) *Tensor { return t.clamp("clamp_max", 0, hi, false, true) }

// Where picks a where cond is true and b elsewhere, with broadcasting.
func Where(cond, a, b *Tensor) *Tensor {
	if err := argErr("where", cond, a, b); err != nil {
		return errTensor(err)
	}
	return result(C.jt_where(cond.h, a.h, b.h), "where", cond, a, b)
}

// MaskedFill sets elements where mask is true to v.
func (t *Tensor) MaskedFill(mask *Tensor, v float64) *Tensor {
	if err := argErr("masked_fill", t, mask); err != nil {
		return errTensor(err)
	}
	return result(C.jt_masked_fill(t.h, mask.h, C.double(v)), "masked_fill", t, mask)
}

// Matmul is the matrix product with NumPy broadcasting rules.
func (t *Tensor) Matmul(u *Tensor) *Tensor {
	if err := argErr("matmul", t, u); err != nil {
		return errTensor(err)
	}
	return result(C.jt_matmul(t.h, u.h), "matmul", t, u)
}

// Mm is the product of two matrices.
func (t *Tensor) Mm(u *Tensor) *Tensor {
	if err := argErr("mm", t, u); err != nil {
		return errTensor(err)
	}
	return result(C.jt_mm(t.h, u.h), "mm", t, u)
}

// Bmm is the batched product of [B,N,M] and [B,M,P].
func (t *Tensor) Bmm(u *Tensor) *Tensor {
	if err := argErr("bmm", t, u); err != nil {
		return errTensor(err)
	}
	return result(C.jt_bmm(t.h, u.h), "bmm", t, u)
}

// Linear returns x·wᵀ + b (b may be nil).
func Linear(x, w, b *Tensor) *Tensor {
	if err := argErr("linear", x, w); err != nil {
		return errTensor(err)
	}
	if err := optArgErr("linear", b); err != nil {
		return errTensor(err)
	}
	return result(C.jt_linear(x.h, w.h, optH(b)), "linear", x, w, b)
}

// ---- autograd ----

// SetRequiresGrad turns gradient recording for a leaf on or off.
func (t *Tensor) SetRequiresGrad(on bool) error {
	return inplace("requires_grad_", func() *C.jt_error { return C.jt_set_requires_grad(t.h, cbool(on)) }, t)
}

// RequiresGrad reports whether gradients flow to t.
func (t *Tensor) RequiresGrad() bool {
	if !t.Valid() {
		return false
	}
	r := C.jt_requires_grad(t.h) != 0
	runtime.KeepAlive(t)
	return r
}

// IsLeaf reports whether t is a leaf of the autograd graph.
func (t *Tensor) IsLeaf() bool {
	if !t.Valid() {
		return false
	}
	r := C.jt_is_leaf(t.h) != 0
	runtime.KeepAlive(t)
	return r
}

// Backward computes gradients of a scalar t with respect to the leaves.
func (t *Tensor) Backward() error { return t.BackwardWith(nil, false, false) }

// BackwardWith is Backward with an explicit output gradient (needed when t
// is not a scalar), keeping the graph, or building a graph of the gradients.
func (t *Tensor) BackwardWith(grad *Tensor, retainGraph, createGraph bool) error {
	if err := argErr("backward", t); err != nil {
		return err
	}
	if err := optArgErr("backward", grad); err != nil {
		return err
	}
	e := C.jt_backward(t.h, optH(grad), cbool(retainGraph), cbool(createGraph))
	runtime.KeepAlive(t)
	runtime.KeepAlive(grad)
	return takeErr(e, "backward", t)
}

// Grad returns the accumulated gradient as a new handle owned by the caller
// (Free it or let a scope take it), or nil when there is none.
func (t *Tensor) Grad() *Tensor {
	if err := argErr("grad", t); err != nil {
		return errTensor(err)
	}
	r := C.jt_grad(t.h)
	runtime.KeepAlive(t)
	if r.err != nil {
		return errTensor(takeErr(r.err, "grad", t))
	}
	if r.t == nil {
		return nil
	}
	return newTensor(r.t, nil)
}

// SetGrad replaces the gradient (nil clears it).
func (t *Tensor) SetGrad(g *Tensor) error {
	if err := optArgErr("set_grad", g); err != nil {
		return err
	}
	return inplace("set_grad", func() *C.jt_error { return C.jt_set_grad(t.h, optH(g)) }, t)
}

// ZeroGrad zeroes the gradient, or drops it when setToNone.
func (t *Tensor) ZeroGrad(setToNone bool) error {
	return inplace("zero_grad", func() *C.jt_error { return C.jt_zero_grad(t.h, cbool(setToNone)) }, t)
}

// RetainGrad keeps the gradient of a non-leaf tensor after backward.
func (t *Tensor) RetainGrad() error {
	return inplace("retain_grad", func() *C.jt_error { return C.jt_retain_grad(t.h) }, t)
}

// Detach returns a tensor sharing t's data that is cut from the graph.
func (t *Tensor) Detach() *Tensor {
	if err := argErr("detach", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_detach(t.h), "detach", t)
}
