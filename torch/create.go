package torch

/*
#include "jmedseg.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Option configures a tensor created from scratch: a DType, a Device,
// RequiresGrad or a *Scope.
type Option interface{ apply(*options) }

type options struct {
	dtype        DType
	device       Device
	requiresGrad bool
	scope        *Scope
}

func (d DType) apply(o *options)  { o.dtype = d }
func (d Device) apply(o *options) { o.device = d }
func (s *Scope) apply(o *options) { o.scope = s }

type gradOption bool

func (g gradOption) apply(o *options) { o.requiresGrad = bool(g) }

// RequiresGrad makes a created tensor a leaf that records gradients.
const RequiresGrad = gradOption(true)

func makeOptions(def DType, opts []Option) options {
	o := options{dtype: def, device: CPU}
	for _, op := range opts {
		if op != nil {
			op.apply(&o)
		}
	}
	return o
}

// shapePtr returns a C pointer to shape's elements (nil for an empty shape).
func shapePtr(s []int64) *C.int64_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.int64_t)(unsafe.Pointer(&s[0]))
}

// finish applies device checks, grad and scope to a freshly created tensor.
func finish(r C.jt_result, op string, o options) *Tensor {
	if r.err != nil {
		return errTensor(takeErr(r.err, op))
	}
	t := newTensor(r.t, o.scope)
	if o.requiresGrad {
		if err := t.SetRequiresGrad(true); err != nil {
			t.Free()
			return errTensor(err)
		}
	}
	return t
}

func create(op string, def DType, opts []Option, f func(o options) C.jt_result) *Tensor {
	o := makeOptions(def, opts)
	if err := o.device.Check(); err != nil {
		return errTensor(err)
	}
	return finish(f(o), op, o)
}

// Empty returns an uninitialised tensor (float32 on the CPU by default).
func Empty(shape []int64, opts ...Option) *Tensor {
	return create("empty", Float32, opts, func(o options) C.jt_result {
		return C.jt_empty(shapePtr(shape), C.int64_t(len(shape)), C.int(o.dtype), C.int(o.device.Type), C.int(o.device.Index))
	})
}

// Zeros returns a tensor of zeros.
func Zeros(shape []int64, opts ...Option) *Tensor {
	return create("zeros", Float32, opts, func(o options) C.jt_result {
		return C.jt_zeros(shapePtr(shape), C.int64_t(len(shape)), C.int(o.dtype), C.int(o.device.Type), C.int(o.device.Index))
	})
}

// Ones returns a tensor of ones.
func Ones(shape []int64, opts ...Option) *Tensor {
	return create("ones", Float32, opts, func(o options) C.jt_result {
		return C.jt_ones(shapePtr(shape), C.int64_t(len(shape)), C.int(o.dtype), C.int(o.device.Type), C.int(o.device.Index))
	})
}

// Full returns a tensor filled with v.
func Full(shape []int64, v float64, opts ...Option) *Tensor {
	return create("full", Float32, opts, func(o options) C.jt_result {
		return C.jt_full(shapePtr(shape), C.int64_t(len(shape)), C.double(v), C.int(o.dtype), C.int(o.device.Type), C.int(o.device.Index))
	})
}

// Arange returns start, start+step, ... below end (int64 by default, as
// torch.arange with integer arguments).
func Arange(start, end, step float64, opts ...Option) *Tensor {
	return create("arange", Int64, opts, func(o options) C.jt_result {
		return C.jt_arange(C.double(start), C.double(end), C.double(step), C.int(o.dtype), C.int(o.device.Type), C.int(o.device.Index))
	})
}

// Rand returns uniform samples in [0, 1).
func Rand(shape []int64, opts ...Option) *Tensor {
	return create("rand", Float32, opts, func(o options) C.jt_result {
		return C.jt_rand(shapePtr(shape), C.int64_t(len(shape)), C.int(o.dtype), C.int(o.device.Type), C.int(o.device.Index))
	})
}

// Randn returns standard normal samples.
func Randn(shape []int64, opts ...Option) *Tensor {
	return create("randn", Float32, opts, func(o options) C.jt_result {
		return C.jt_randn(shapePtr(shape), C.int64_t(len(shape)), C.int(o.dtype), C.int(o.device.Type), C.int(o.device.Index))
	})
}

// RandInt returns integers uniform in [low, high) (int64 by default).
func RandInt(low, high int64, shape []int64, opts ...Option) *Tensor {
	return create("randint", Int64, opts, func(o options) C.jt_result {
		return C.jt_randint(C.int64_t(low), C.int64_t(high), shapePtr(shape), C.int64_t(len(shape)), C.int(o.dtype), C.int(o.device.Type), C.int(o.device.Index))
	})
}

// RandPerm returns a random permutation of 0..n-1 (int64).
func RandPerm(n int64, opts ...Option) *Tensor {
	return create("randperm", Int64, opts, func(o options) C.jt_result {
		return C.jt_randperm(C.int64_t(n), C.int(o.device.Type), C.int(o.device.Index))
	})
}

// Eye returns the n×n identity.
func Eye(n int64, opts ...Option) *Tensor {
	return create("eye", Float32, opts, func(o options) C.jt_result {
		return C.jt_eye(C.int64_t(n), C.int64_t(n), C.int(o.dtype), C.int(o.device.Type), C.int(o.device.Index))
	})
}

// Element is a Go type that maps to a tensor dtype.
type Element interface {
	float32 | float64 | int64 | int32 | uint8 | int8 | int16 | bool
}

func dtypeOf[T Element]() DType {
	var z T
	switch any(z).(type) {
	case float32:
		return Float32
	case float64:
		return Float64
	case int64:
		return Int64
	case int32:
		return Int32
	case uint8:
		return Uint8
	case int8:
		return Int8
	case int16:
		return Int16
	case bool:
		return Bool
	}
	panic("torch: unreachable: Element covers every case above")
}

func numel(shape []int64) (int64, error) {
	n := int64(1)
	for _, s := range shape {
		if s < 0 {
			return 0, fmt.Errorf("negative size in shape %v", shape)
		}
		n *= s
	}
	return n, nil
}

// FromSlice copies data into a new CPU tensor of the given shape (a 1-D
// tensor when shape is empty). Options may move it, set RequiresGrad or a
// Scope; a DType option converts it.
func FromSlice[T Element](data []T, shape []int64, opts ...Option) *Tensor {
	dt := dtypeOf[T]()
	if shape == nil {
		shape = []int64{int64(len(data))}
	}
	n, err := numel(shape)
	if err == nil && n != int64(len(data)) {
		err = fmt.Errorf("%d elements given for shape %v (%d needed)", len(data), shape, n)
	}
	if err != nil {
		return errTensor(&Error{Op: "from_slice", Msg: err.Error(), Kind: KindValue})
	}
	o := makeOptions(dt, opts)
	if err := o.device.Check(); err != nil {
		return errTensor(err)
	}
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	r := C.jt_from_data(p, C.int64_t(len(data)*dt.Size()), shapePtr(shape), C.int64_t(len(shape)), C.int(dt))
	runtime.KeepAlive(data)
	if r.err != nil {
		return errTensor(takeErr(r.err, "from_slice"))
	}
	t := newTensor(r.t, nil)
	if o.dtype != dt || o.device != CPU {
		u := t.To(o.device, o.dtype)
		t.Free()
		t = u
		if t.err != nil {
			return t
		}
	}
	if o.scope != nil {
		o.scope.Track(t)
	}
	if o.requiresGrad {
		if err := t.SetRequiresGrad(true); err != nil {
			t.Free()
			return errTensor(err)
		}
	}
	return t
}

// Scalar returns a 0-dimensional tensor holding v.
func Scalar[T Element](v T, opts ...Option) *Tensor {
	return FromSlice([]T{v}, []int64{}, opts...)
}

// ToSlice copies the tensor's elements, converted to T, into a new slice in
// row-major order. It works for any device and layout.
func ToSlice[T Element](t *Tensor) ([]T, error) {
	if err := argErr("to_slice", t); err != nil {
		return nil, err
	}
	dt := dtypeOf[T]()
	out := make([]T, t.Numel())
	var p unsafe.Pointer
	if len(out) > 0 {
		p = unsafe.Pointer(&out[0])
	}
	e := C.jt_copy_to(t.h, p, C.int64_t(len(out)*dt.Size()), C.int(dt))
	runtime.KeepAlive(t)
	if err := takeErr(e, "to_slice", t); err != nil {
		return nil, err
	}
	return out, nil
}

// Float32s copies the elements as float32.
func (t *Tensor) Float32s() ([]float32, error) { return ToSlice[float32](t) }

// Float64s copies the elements as float64.
func (t *Tensor) Float64s() ([]float64, error) { return ToSlice[float64](t) }

// Int64s copies the elements as int64.
func (t *Tensor) Int64s() ([]int64, error) { return ToSlice[int64](t) }

// Item returns the value of a one-element tensor.
func (t *Tensor) Item() (float64, error) {
	if err := argErr("item", t); err != nil {
		return 0, err
	}
	var v C.double
	e := C.jt_item(t.h, &v)
	runtime.KeepAlive(t)
	if err := takeErr(e, "item", t); err != nil {
		return 0, err
	}
	return float64(v), nil
}

// To converts the tensor to a device and dtype (a copy only when needed).
func (t *Tensor) To(d Device, dt DType) *Tensor { return t.to("to", d, dt, false, false) }

// ToDevice moves the tensor to d, keeping its dtype.
func (t *Tensor) ToDevice(d Device) *Tensor { return t.to("to", d, t.DType(), false, false) }

// ToDType converts the elements to dt, keeping the device.
func (t *Tensor) ToDType(dt DType) *Tensor { return t.to("to", t.Device(), dt, false, false) }

// ToAsync is To with a non-blocking copy: from pinned host memory to CUDA
// the copy overlaps with the host.
func (t *Tensor) ToAsync(d Device, dt DType) *Tensor { return t.to("to", d, dt, true, false) }

func (t *Tensor) to(op string, d Device, dt DType, nonBlocking, copy bool) *Tensor {
	if err := argErr(op, t); err != nil {
		return errTensor(err)
	}
	if err := d.Check(); err != nil {
		return errTensor(err)
	}
	if d.Type == DeviceCUDA && d.Index < 0 {
		d.Index = 0
	}
	return result(C.jt_to(t.h, C.int(d.Type), C.int(d.Index), C.int(dt), cbool(nonBlocking), cbool(copy)), op, t)
}

// PinMemory returns a copy in page-locked host memory (needs CUDA).
func (t *Tensor) PinMemory() *Tensor {
	if err := argErr("pin_memory", t); err != nil {
		return errTensor(err)
	}
	return result(C.jt_pin_memory(t.h), "pin_memory", t)
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
