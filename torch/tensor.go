package torch

/*
#include "jmedseg.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"
)

// Tensor is a handle to a libtorch tensor.
//
// Operations never panic: a failed operation returns a Tensor that carries the
// error (see Err), and every operation on such a tensor passes the first error
// on, the way NaN flows through arithmetic. Check Err where a value leaves the
// tensor world, or use Must to opt into panics.
//
// Memory is released deterministically by Free or by the Scope that owns the
// tensor; the result of an operation joins the scope of its first scoped
// input. A tensor that becomes unreachable without being freed is released by
// a cleanup and counted in Leaked.
type Tensor struct {
	h       C.jt_tensor
	err     error
	scope   *Scope // guarded by scope.mu
	freed   atomic.Bool
	freedAt string // where Free ran, when JMEDSEG_DEBUG_FREE is set
	cleanup runtime.Cleanup
}

var leaked atomic.Int64

// Leaked counts tensors that were garbage collected without Free or a
// closing Scope: each is a leak the safety net caught.
func Leaked() int64 { return leaked.Load() }

// SettleLeaks runs the garbage collector until the safety net has released
// every unreachable tensor (the count Leaked reports stops changing over a
// few collections) and returns Leaked. Leak tests call it before and after
// the work they check, so that garbage of earlier work is not counted.
func SettleLeaks() int64 {
	prev, same := int64(-1), 0
	for i := 0; i < 50 && same < 3; i++ {
		runtime.GC()
		time.Sleep(5 * time.Millisecond) // cleanups run on their own goroutine
		if n := leaked.Load(); n == prev {
			same++
		} else {
			prev, same = n, 0
		}
	}
	return leaked.Load()
}

// Live reports the number of tensor handles alive in libtorch and the bytes
// their elements span (a view counts its own elements).
func Live() (count, bytes int64) {
	var c, b C.int64_t
	C.jt_live(&c, &b)
	return int64(c), int64(b)
}

func releaseLeaked(h C.jt_tensor) {
	leaked.Add(1)
	C.jt_free(h)
}

// newTensor wraps a fresh handle and puts it in scope s (which may be nil).
func newTensor(h C.jt_tensor, s *Scope) *Tensor {
	t := &Tensor{h: h}
	t.cleanup = runtime.AddCleanup(t, releaseLeaked, h)
	if s != nil {
		s.add(t)
	}
	return t
}

// errTensor is a tensor that only carries err.
func errTensor(err error) *Tensor { return &Tensor{err: err} }

// FromError returns a tensor that carries err, for functions that return
// tensors and fail before any operation.
func FromError(err error) *Tensor { return errTensor(err) }

// scopeOf is the scope of the first scoped input.
func scopeOf(ts []*Tensor) *Scope {
	for _, t := range ts {
		if t != nil && t.scope != nil {
			return t.scope
		}
	}
	return nil
}

// result turns a shim result into a Tensor, naming op and inputs on failure.
func result(r C.jt_result, op string, inputs ...*Tensor) *Tensor {
	if r.err != nil {
		return errTensor(takeErr(r.err, op, inputs...))
	}
	t := newTensor(r.t, scopeOf(inputs))
	runtime.KeepAlive(inputs)
	return t
}

// Err returns the error this tensor carries, or nil.
func (t *Tensor) Err() error {
	if t == nil {
		return &Error{Op: "tensor", Msg: "nil tensor", Kind: KindValue}
	}
	return t.err
}

// Free releases the tensor now. It is safe to call twice, from several
// goroutines at once (one of them frees), and on a failed tensor.
func (t *Tensor) Free() {
	if t == nil || t.freed.Swap(true) {
		return
	}
	h := t.h
	if h == nil {
		return
	}
	if debugFree {
		t.freedAt = freeSite()
	}
	t.cleanup.Stop()
	C.jt_free(h)
	t.h = nil
}

// Alias returns a new handle to the same tensor (same storage and autograd
// identity) in t's scope, so that freeing one handle leaves the other valid.
// Modules that work in place return an alias of their input.
func (t *Tensor) Alias() *Tensor {
	if err := argErr("alias", t); err != nil {
		return errTensor(err)
	}
	return t.scope.Track(t.Shallow())
}

// Valid reports whether t holds a live tensor (no error, not freed).
func (t *Tensor) Valid() bool { return t != nil && t.err == nil && t.h != nil }

// Dim is the number of dimensions (0 for a failed tensor).
func (t *Tensor) Dim() int {
	if !t.Valid() {
		return 0
	}
	d := int(C.jt_dim(t.h))
	runtime.KeepAlive(t)
	return d
}

// Shape returns the sizes (nil for a failed tensor).
func (t *Tensor) Shape() []int64 {
	if !t.Valid() {
		return nil
	}
	n := C.jt_dim(t.h)
	s := make([]int64, int(n))
	if n > 0 {
		C.jt_sizes(t.h, (*C.int64_t)(unsafe.Pointer(&s[0])))
	}
	runtime.KeepAlive(t)
	return s
}

// Size returns the size of dimension d; negative d counts from the end.
func (t *Tensor) Size(d int) int64 {
	s := t.Shape()
	if d < 0 {
		d += len(s)
	}
	if d < 0 || d >= len(s) {
		return 0
	}
	return s[d]
}

// Strides returns the strides in elements.
func (t *Tensor) Strides() []int64 {
	if !t.Valid() {
		return nil
	}
	n := C.jt_dim(t.h)
	s := make([]int64, int(n))
	if n > 0 {
		C.jt_strides(t.h, (*C.int64_t)(unsafe.Pointer(&s[0])))
	}
	runtime.KeepAlive(t)
	return s
}

// Numel is the number of elements.
func (t *Tensor) Numel() int64 {
	if !t.Valid() {
		return 0
	}
	n := int64(C.jt_numel(t.h))
	runtime.KeepAlive(t)
	return n
}

// DType is the element type.
func (t *Tensor) DType() DType {
	if !t.Valid() {
		return -1
	}
	d := DType(C.jt_dtype(t.h))
	runtime.KeepAlive(t)
	return d
}

// Device is where the tensor lives.
func (t *Tensor) Device() Device {
	if !t.Valid() {
		return CPU
	}
	var ty, idx C.int
	C.jt_device(t.h, &ty, &idx)
	runtime.KeepAlive(t)
	return Device{Type: DeviceType(ty), Index: int(idx)}
}

// IsContiguous reports whether the elements are laid out densely in order.
func (t *Tensor) IsContiguous() bool {
	if !t.Valid() {
		return false
	}
	c := C.jt_is_contiguous(t.h) != 0
	runtime.KeepAlive(t)
	return c
}

// String describes the tensor briefly: "float32[2 3] cpu".
func (t *Tensor) String() string {
	switch {
	case t == nil:
		return "<nil tensor>"
	case t.err != nil:
		return "<failed tensor: " + t.err.Error() + ">"
	case t.h == nil:
		return "<freed tensor>"
	}
	s := t.Shape()
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = fmt.Sprint(v)
	}
	return fmt.Sprintf("%s[%s] %s", t.DType(), strings.Join(parts, " "), t.Device())
}

// Scope returns the scope that owns t, or nil.
func (t *Tensor) Scope() *Scope {
	if t == nil {
		return nil
	}
	return t.scope
}

// Keep removes t from its scope so that it outlives it; the caller then owns
// it (Free it, or hand it to another scope with Track). It returns t.
func (t *Tensor) Keep() *Tensor {
	if t != nil && t.scope != nil {
		t.scope.remove(t)
	}
	return t
}

// Shallow returns a second handle to the same tensor (same storage and
// autograd identity), owned by the caller.
func (t *Tensor) Shallow() *Tensor {
	if err := argErr("shallow", t); err != nil {
		return errTensor(err)
	}
	r := C.jt_shallow(t.h)
	if r.err != nil {
		return errTensor(takeErr(r.err, "shallow", t))
	}
	runtime.KeepAlive(t)
	return newTensor(r.t, nil)
}
