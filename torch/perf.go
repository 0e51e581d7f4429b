package torch

/*
#include <stdlib.h>
#include "perf.h"
*/
import "C"

import (
	"fmt"
	"runtime"
)

// MemoryFormat is a layout of a 4-D tensor's elements in memory.
type MemoryFormat int

// Memory formats (at::MemoryFormat's Contiguous and ChannelsLast).
const (
	ContiguousFormat   MemoryFormat = C.JP_CONTIGUOUS
	ChannelsLastFormat MemoryFormat = C.JP_CHANNELS_LAST // NHWC strides, same shape
)

func (f MemoryFormat) String() string {
	if f == ChannelsLastFormat {
		return "channels_last"
	}
	return "contiguous"
}

// ContiguousAs returns t laid out in memory format f
// (t.contiguous(memory_format=f)): the shape is unchanged, the strides are
// f's. Where t already is, the result is a new handle to it. Channels-last
// needs a 4-D tensor.
func (t *Tensor) ContiguousAs(f MemoryFormat) *Tensor {
	if err := argErr("contiguous_as", t); err != nil {
		return errTensor(err)
	}
	if f == ChannelsLastFormat && t.Dim() != 4 {
		return errTensor(&Error{Op: "contiguous_as", Inputs: describe([]*Tensor{t}), Msg: "channels-last needs a 4-D tensor", Kind: KindValue})
	}
	return result(C.jp_contiguous_as(t.h, C.int(f)), "contiguous_as", t)
}

// IsContiguousAs reports whether t is contiguous in memory format f.
func (t *Tensor) IsContiguousAs(f MemoryFormat) bool {
	if !t.Valid() {
		return false
	}
	ok := C.jp_is_contiguous_as(t.h, C.int(f)) != 0
	runtime.KeepAlive(t)
	return ok
}

// Autocast runs f with libtorch's automatic mixed precision on device d's
// type in dtype (BFloat16 on the CPU; BFloat16 or Float16 on CUDA), as
// `with torch.autocast(device_type, dtype)`: convolutions and matrix
// products run in dtype, precision-sensitive ops in float32. Autocast is
// thread-local in libtorch, so the goroutine is locked to its OS thread
// while f runs, as in NoGrad; goroutines f starts are not covered. Run the
// backward pass outside Autocast, as PyTorch recommends.
func Autocast(d Device, dtype DType, f func()) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var e *C.jt_error
	st := C.jp_autocast_enter(C.int(d.Type), C.int(dtype), &e)
	if e != nil {
		return takeErr(e, "autocast")
	}
	defer C.jp_autocast_exit(st)
	f()
	return nil
}

// AutocastEnabled reports whether autocast is on for device type d on the
// calling goroutine's thread; meaningful inside Autocast.
func AutocastEnabled(d Device) bool { return C.jp_autocast_enabled(C.int(d.Type)) != 0 }

// listHandles collects the shim handles of ts for one multi-tensor call,
// after checking them. The slice holds C pointers only, so cgo may be
// handed it.
func listHandles(op string, ts []*Tensor) ([]C.jt_tensor, error) {
	for i, t := range ts {
		if err := argErr(op, t); err != nil {
			return nil, fmt.Errorf("%s: tensor %d: %w", op, i, err)
		}
	}
	hs := make([]C.jt_tensor, len(ts))
	for i, t := range ts {
		hs[i] = t.h
	}
	return hs, nil
}

func foreachArgs(op string, lists ...[]*Tensor) ([][]C.jt_tensor, error) {
	out := make([][]C.jt_tensor, len(lists))
	for i, l := range lists {
		if len(l) != len(lists[0]) {
			return nil, &Error{Op: op, Msg: fmt.Sprintf("list %d has %d tensors, list 1 has %d", i+1, len(l), len(lists[0])), Kind: KindValue}
		}
		hs, err := listHandles(op, l)
		if err != nil {
			return nil, err
		}
		out[i] = hs
	}
	return out, nil
}

// ForeachOp names a multi-tensor in-place update.
type ForeachOp int

// Multi-tensor updates: libtorch's _foreach_ ops, one call for a whole list
// (one kernel launch per list chunk on CUDA; on the CPU a loop in C++).
const (
	ForeachMulScalar ForeachOp = iota // x *= s
	ForeachAddScalar                  // x += s
	ForeachDivScalar                  // x /= s
)

// ForeachScalar applies op with scalar s to every tensor of xs in place.
func ForeachScalar(op ForeachOp, xs []*Tensor, s float64) error {
	if len(xs) == 0 {
		return nil
	}
	a, err := foreachArgs("foreach_scalar", xs)
	if err != nil {
		return err
	}
	p, n := &a[0][0], C.int64_t(len(xs))
	var e *C.jt_error
	switch op {
	case ForeachMulScalar:
		e = C.jp_foreach_mul_scalar_(p, n, C.double(s))
	case ForeachAddScalar:
		e = C.jp_foreach_add_scalar_(p, n, C.double(s))
	case ForeachDivScalar:
		e = C.jp_foreach_div_scalar_(p, n, C.double(s))
	default:
		return &Error{Op: "foreach_scalar", Msg: fmt.Sprintf("unknown op %d", op), Kind: KindValue}
	}
	runtime.KeepAlive(xs)
	return takeErr(e, "foreach_scalar")
}

// ForeachAddInPlace sets xs[i] += alpha·ys[i] for every i.
func ForeachAddInPlace(xs, ys []*Tensor, alpha float64) error {
	if len(xs) == 0 {
		return nil
	}
	a, err := foreachArgs("foreach_add_", xs, ys)
	if err != nil {
		return err
	}
	e := C.jp_foreach_add_list_(&a[0][0], &a[1][0], C.int64_t(len(xs)), C.double(alpha))
	runtime.KeepAlive(xs)
	runtime.KeepAlive(ys)
	return takeErr(e, "foreach_add_")
}

// ForeachAddcmulInPlace sets xs[i] += value·a[i]·b[i].
func ForeachAddcmulInPlace(xs, a, b []*Tensor, value float64) error {
	if len(xs) == 0 {
		return nil
	}
	h, err := foreachArgs("foreach_addcmul_", xs, a, b)
	if err != nil {
		return err
	}
	e := C.jp_foreach_addcmul_(&h[0][0], &h[1][0], &h[2][0], C.int64_t(len(xs)), C.double(value))
	runtime.KeepAlive(xs)
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	return takeErr(e, "foreach_addcmul_")
}

// ForeachAddcdivInPlace sets xs[i] += value·a[i]/b[i].
func ForeachAddcdivInPlace(xs, a, b []*Tensor, value float64) error {
	if len(xs) == 0 {
		return nil
	}
	h, err := foreachArgs("foreach_addcdiv_", xs, a, b)
	if err != nil {
		return err
	}
	e := C.jp_foreach_addcdiv_(&h[0][0], &h[1][0], &h[2][0], C.int64_t(len(xs)), C.double(value))
	runtime.KeepAlive(xs)
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	return takeErr(e, "foreach_addcdiv_")
}

// ForeachMaximumInPlace sets xs[i] = max(xs[i], ys[i]) elementwise.
func ForeachMaximumInPlace(xs, ys []*Tensor) error {
	if len(xs) == 0 {
		return nil
	}
	h, err := foreachArgs("foreach_maximum_", xs, ys)
	if err != nil {
		return err
	}
	e := C.jp_foreach_maximum_(&h[0][0], &h[1][0], C.int64_t(len(xs)))
	runtime.KeepAlive(xs)
	runtime.KeepAlive(ys)
	return takeErr(e, "foreach_maximum_")
}

// ForeachCopyInPlace copies ys[i] into xs[i].
func ForeachCopyInPlace(xs, ys []*Tensor) error {
	if len(xs) == 0 {
		return nil
	}
	h, err := foreachArgs("foreach_copy_", xs, ys)
	if err != nil {
		return err
	}
	e := C.jp_foreach_copy_(&h[0][0], &h[1][0], C.int64_t(len(xs)))
	runtime.KeepAlive(xs)
	runtime.KeepAlive(ys)
	return takeErr(e, "foreach_copy_")
}

// take wraps n fresh handles from out into tensors of scope s.
func take(out []C.jt_tensor, s *Scope) []*Tensor {
	ts := make([]*Tensor, len(out))
	for i, h := range out {
		if h != nil {
			ts[i] = newTensor(h, s)
		}
	}
	return ts
}

// ForeachSqrt returns the square root of every tensor of xs, in xs[0]'s
// scope.
func ForeachSqrt(xs []*Tensor) ([]*Tensor, error) {
	if len(xs) == 0 {
		return nil, nil
	}
	h, err := foreachArgs("foreach_sqrt", xs)
	if err != nil {
		return nil, err
	}
	out := make([]C.jt_tensor, len(xs))
	e := C.jp_foreach_sqrt(&h[0][0], C.int64_t(len(xs)), &out[0])
	runtime.KeepAlive(xs)
	if err := takeErr(e, "foreach_sqrt"); err != nil {
		return nil, err
	}
	return take(out, scopeOf(xs)), nil
}

// ForeachAdd returns xs[i] + alpha·ys[i] for every i, in the first scoped
// input's scope.
func ForeachAdd(xs, ys []*Tensor, alpha float64) ([]*Tensor, error) {
	if len(xs) == 0 {
		return nil, nil
	}
	h, err := foreachArgs("foreach_add", xs, ys)
	if err != nil {
		return nil, err
	}
	out := make([]C.jt_tensor, len(xs))
	e := C.jp_foreach_add_list(&h[0][0], &h[1][0], C.int64_t(len(xs)), C.double(alpha), &out[0])
	runtime.KeepAlive(xs)
	runtime.KeepAlive(ys)
	if err := takeErr(e, "foreach_add"); err != nil {
		return nil, err
	}
	s := scopeOf(xs)
	if s == nil {
		s = scopeOf(ys)
	}
	return take(out, s), nil
}

// Grads returns the gradient of every tensor of params in one call: nil
// where a tensor has none. The caller owns (frees) the results.
func Grads(params []*Tensor) ([]*Tensor, error) {
	if len(params) == 0 {
		return nil, nil
	}
	h, err := foreachArgs("grads", params)
	if err != nil {
		return nil, err
	}
	out := make([]C.jt_tensor, len(params))
	e := C.jp_grads(&h[0][0], C.int64_t(len(params)), &out[0])
	runtime.KeepAlive(params)
	if err := takeErr(e, "grads"); err != nil {
		return nil, err
	}
	return take(out, nil), nil
}

// CUDAGraphsBuilt reports whether this build can capture CUDA graphs: it
// was compiled against a CUDA libtorch with the CUDA runtime's headers.
func CUDAGraphsBuilt() bool { return C.jp_cuda_graphs_built() != 0 }

// CUDAGraph is a captured sequence of CUDA work (at::cuda::CUDAGraph) that
// Replay runs again with one launch. Tensors the captured work reads and
// writes keep their memory: refill the inputs in place (CopyFrom) before
// Replay and read the outputs after it.
type CUDAGraph struct {
	h   C.jp_graph
	dev Device
}

// NewCUDAGraph makes an empty graph for device d.
func NewCUDAGraph(d Device) (*CUDAGraph, error) {
	if !d.IsCUDA() {
		return nil, &Error{Op: "cuda_graph", Msg: "CUDA graphs need a CUDA device, not " + d.String(), Kind: KindValue}
	}
	if err := d.Check(); err != nil {
		return nil, err
	}
	var h C.jp_graph
	if err := takeErr(C.jp_graph_new(C.int(d.Index), &h), "cuda_graph"); err != nil {
		return nil, err
	}
	return &CUDAGraph{h: h, dev: d}, nil
}

// Capture records the CUDA work f queues (f runs once, on a capture
// stream; nothing in it may synchronise with the host, such as Item).
// The goroutine is locked to its OS thread while f runs: the capture
// stream is the thread's current stream.
func (g *CUDAGraph) Capture(f func()) error {
	if g == nil || g.h == nil {
		return &Error{Op: "cuda_graph", Msg: "graph is freed", Kind: KindValue}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := takeErr(C.jp_graph_capture_begin(g.h), "cuda_graph_capture"); err != nil {
		return err
	}
	f()
	return takeErr(C.jp_graph_capture_end(g.h), "cuda_graph_capture")
}

// Replay runs the captured work again.
func (g *CUDAGraph) Replay() error {
	if g == nil || g.h == nil {
		return &Error{Op: "cuda_graph", Msg: "graph is freed", Kind: KindValue}
	}
	return takeErr(C.jp_graph_replay(g.h), "cuda_graph_replay")
}

// Free releases the graph (and its memory pool, once nothing else uses it).
func (g *CUDAGraph) Free() {
	if g != nil && g.h != nil {
		C.jp_graph_free(g.h)
		g.h = nil
	}
}

// CUDASynchronize waits for all work queued on device d.
func CUDASynchronize(d Device) error {
	if !d.IsCUDA() {
		return nil
	}
	return takeErr(C.jp_cuda_synchronize(C.int(d.Index)), "cuda_synchronize")
}

// ParseAMP reads an --amp value: "" or "off" (none, ok false), "bf16"
// (bfloat16) or "fp16" (float16, CUDA only), and checks it against device
// d: float16 autocast exists on CUDA alone.
func ParseAMP(s string, d Device) (dtype DType, ok bool, err error) {
	switch s {
	case "", "off", "none", "fp32":
		return Float32, false, nil
	case "bf16", "bfloat16":
		return BFloat16, true, nil
	case "fp16", "float16", "half":
		if !d.IsCUDA() {
			return Float32, false, fmt.Errorf("--amp fp16: float16 autocast needs CUDA (this run is on %s; use --amp bf16 on the CPU)", d)
		}
		return Float16, true, nil
	}
	return Float32, false, fmt.Errorf("--amp %q: want bf16, fp16 (CUDA) or off", s)
}

// Warmup runs f on the graph's stream without capturing it, as
// torch.cuda.graphs recommends before a capture (lazy initialisation,
// cuDNN's algorithm choice), and waits for it.
func (g *CUDAGraph) Warmup(f func()) error {
	if g == nil || g.h == nil {
		return &Error{Op: "cuda_graph", Msg: "graph is freed", Kind: KindValue}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := takeErr(C.jp_graph_side_begin(g.h), "cuda_graph_warmup"); err != nil {
		return err
	}
	f()
	return takeErr(C.jp_graph_side_end(g.h), "cuda_graph_warmup")
}
