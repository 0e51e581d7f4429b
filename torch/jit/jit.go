// Package jit builds TorchScript modules from Go with libtorch's own
// machinery: tensors registered by path on a torch::jit::Module, a method
// traced from a Go function by libtorch's tracer (the one torch.jit.trace
// uses), more methods from TorchScript source, typed attributes, and the
// archive format that Python's torch.jit.load and C++'s torch::jit::load
// read.
//
// Tracing records the ATen calls the function makes on its tensors; a
// registered tensor the function reads becomes a read of that attribute of
// the module, any other tensor it did not compute from its input a
// constant. Sizes the Go code reads (Shape) and decisions it takes on them
// are fixed at their traced values, as with torch.jit.trace: a traced
// method is valid for inputs of the traced shape.
package jit

/*
#cgo CFLAGS: -I${SRCDIR}/../../csrc
#cgo CXXFLAGS: -std=c++17 -O2 -I${SRCDIR}/../../csrc -I/usr/include/torch/csrc/api/include -Wno-deprecated-declarations
#cgo LDFLAGS: -ltorch -ltorch_cpu -lc10 -lstdc++
#include <stdlib.h>
#include "jmedseg_jit.h"

extern jt_tensor jtGoTrace(uintptr_t ctx);
extern int jtGoWrite(uintptr_t ctx, char *p, int64_t n);

static jt_error *jit_trace(jt_module m, const char *method, jt_tensor in, uintptr_t ctx) {
	return jt_jit_trace(m, method, in, jtGoTrace, ctx);
}
static jt_error *jit_save(jt_module m, uintptr_t ctx) { return jt_jit_save(m, (jt_write_fn)jtGoWrite, ctx); }
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/cgo"
	"strings"
	"sync"
	"unsafe"

	"github.com/jmedseg/jmedseg/torch"
)

// Module is a TorchScript module. It is not safe for concurrent use.
type Module struct {
	mu      sync.Mutex
	h       C.jt_module
	cleanup runtime.Cleanup
}

// shimErr turns a shim error into a *torch.Error naming op, and frees it.
func shimErr(e *C.jt_error, op string) error {
	if e == nil {
		return nil
	}
	msg := C.GoString(e.msg)
	kind := torch.ErrorKind(e.kind)
	C.jt_error_free(e)
	return &torch.Error{Op: "jit " + op, Msg: msg, Kind: kind}
}

func wrap(r C.jt_module_result, op string) (*Module, error) {
	if r.err != nil {
		return nil, shimErr(r.err, op)
	}
	m := &Module{h: r.m}
	m.cleanup = runtime.AddCleanup(m, func(h C.jt_module) { C.jt_jit_free(h) }, r.m)
	return m, nil
}

// New returns an empty module whose class is named name (made an
// identifier: other characters become underscores).
func New(name string) (*Module, error) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	return wrap(C.jt_jit_new(cs), "new")
}

// Load reads a TorchScript archive with torch::jit::load, onto the CPU.
func Load(path string) (*Module, error) {
	cs := C.CString(path)
	defer C.free(unsafe.Pointer(cs))
	m, err := wrap(C.jt_jit_load(cs), "load")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Free releases the module now (the tensors it shares stay with their own
// handles). It is safe to call twice.
func (m *Module) Free() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h != nil {
		m.cleanup.Stop()
		C.jt_jit_free(m.h)
		m.h = nil
	}
}

// handle returns the live handle or an error naming op.
func (m *Module) handle(op string) (C.jt_module, error) {
	if m == nil || m.h == nil {
		return nil, &torch.Error{Op: "jit " + op, Msg: "the module is freed", Kind: torch.KindFreed}
	}
	return m.h, nil
}

// Register adds t under path ("down1.conv.0.weight": the submodules on the
// way are made as needed) as a parameter, or a buffer when buffer is set.
// The module shares t's tensor: it keeps it alive, and a traced function
// that reads t reads this attribute.
func (m *Module) Register(path string, t *torch.Tensor, buffer bool) error {
	h, err := m.handle("register")
	if err != nil {
		return err
	}
	if err := t.Err(); err != nil {
		return fmt.Errorf("jit: registering %s: %w", path, err)
	}
	th := t.CHandle()
	if th == nil {
		return &torch.Error{Op: "jit register", Msg: path + ": the tensor is freed", Kind: torch.KindFreed}
	}
	cs := C.CString(path)
	defer C.free(unsafe.Pointer(cs))
	b := C.int(0)
	if buffer {
		b = 1
	}
	err = shimErr(C.jt_jit_register(h, cs, C.jt_tensor(th), b), "register "+path)
	runtime.KeepAlive(t)
	return err
}

type traceCtx struct {
	f   func(*torch.Tensor) *torch.Tensor
	x   *torch.Tensor
	out *torch.Tensor
	err error
}

//export jtGoTrace
func jtGoTrace(ctx C.uintptr_t) (out C.jt_tensor) {
	c := cgo.Handle(ctx).Value().(*traceCtx)
	// A panic must not unwind through libtorch's frames (the tracer's
	// thread-local state would stay set): it becomes the trace's error.
	defer func() {
		if r := recover(); r != nil {
			c.err = fmt.Errorf("jit: the traced function panicked: %v", r)
			out = nil
		}
	}()
	y := c.f(c.x)
	if err := y.Err(); err != nil {
		c.err = err
		return nil
	}
	c.out = y
	h := y.CHandle()
	if h == nil {
		c.err = &torch.Error{Op: "jit trace", Msg: "the traced function returned a freed tensor", Kind: torch.KindFreed}
		return nil
	}
	return C.jt_tensor(h)
}

// Trace runs f on x under libtorch's tracer, without gradients, and makes
// what it recorded the module's method called method, taking one tensor of
// x's shape. f runs on the calling goroutine, locked to its thread (the
// tracer's state is per thread), and must do its tensor work there. What f
// creates is freed when Trace returns; x stays the caller's.
func (m *Module) Trace(method string, x *torch.Tensor, f func(x *torch.Tensor) *torch.Tensor) error {
	h, err := m.handle("trace")
	if err != nil {
		return err
	}
	if err := x.Err(); err != nil {
		return fmt.Errorf("jit: tracing %s: %w", method, err)
	}
	s := torch.NewScope()
	defer s.Close()
	// A handle of x in a scope, so that what f computes from it is freed.
	in := s.Track(x.Shallow())
	if err := in.Err(); err != nil {
		return fmt.Errorf("jit: tracing %s: %w", method, err)
	}
	c := &traceCtx{f: f, x: in}
	ch := cgo.NewHandle(c)
	defer ch.Delete()
	cs := C.CString(method)
	defer C.free(unsafe.Pointer(cs))
	var e *C.jt_error
	torch.NoGrad(func() { e = C.jit_trace(h, cs, C.jt_tensor(in.CHandle()), C.uintptr_t(ch)) })
	runtime.KeepAlive(in)
	runtime.KeepAlive(c.out)
	if c.out != nil {
		c.out.Free() // f's result may belong to no scope
	}
	if e != nil && c.err != nil {
		C.jt_error_free(e)
		return fmt.Errorf("jit: tracing %s: %w", method, c.err)
	}
	if err := shimErr(e, "trace"); err != nil {
		return fmt.Errorf("jit: tracing %s: %w", method, err)
	}
	return nil
}

// Define compiles TorchScript source (def blocks taking self) into more
// methods of the module.
func (m *Module) Define(src string) error {
	h, err := m.handle("define")
	if err != nil {
		return err
	}
	cs := C.CString(src)
	defer C.free(unsafe.Pointer(cs))
	return shimErr(C.jt_jit_define(h, cs), "define")
}

// attr runs set with the module's handle and name as a C string.
func (m *Module) attr(name string, set func(C.jt_module, *C.char) *C.jt_error) error {
	h, err := m.handle("attribute")
	if err != nil {
		return err
	}
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	return shimErr(set(h, cs), "attribute "+name)
}

// SetString adds a str attribute.
func (m *Module) SetString(name, v string) error {
	cv := C.CString(v)
	defer C.free(unsafe.Pointer(cv))
	return m.attr(name, func(h C.jt_module, n *C.char) *C.jt_error { return C.jt_jit_attr_str(h, n, cv) })
}

// SetInt adds an int attribute.
func (m *Module) SetInt(name string, v int64) error {
	return m.attr(name, func(h C.jt_module, n *C.char) *C.jt_error { return C.jt_jit_attr_int(h, n, C.int64_t(v)) })
}

// SetFloat adds a float attribute.
func (m *Module) SetFloat(name string, v float64) error {
	return m.attr(name, func(h C.jt_module, n *C.char) *C.jt_error { return C.jt_jit_attr_float(h, n, C.double(v)) })
}

// SetInts adds a List[int] attribute.
func (m *Module) SetInts(name string, v []int64) error {
	return m.attr(name, func(h C.jt_module, n *C.char) *C.jt_error {
		var p *C.int64_t
		if len(v) > 0 {
			p = (*C.int64_t)(unsafe.Pointer(&v[0]))
		}
		return C.jt_jit_attr_ints(h, n, p, C.int64_t(len(v)))
	})
}

// SetFloats adds a List[float] attribute.
func (m *Module) SetFloats(name string, v []float64) error {
	return m.attr(name, func(h C.jt_module, n *C.char) *C.jt_error {
		var p *C.double
		if len(v) > 0 {
			p = (*C.double)(unsafe.Pointer(&v[0]))
		}
		return C.jt_jit_attr_floats(h, n, p, C.int64_t(len(v)))
	})
}

// SetStrings adds a List[str] attribute.
func (m *Module) SetStrings(name string, v []string) error {
	cs := make([]*C.char, len(v)+1) // one more, so that &cs[0] exists
	for i, s := range v {
		cs[i] = C.CString(s)
	}
	defer func() {
		for _, p := range cs[:len(v)] {
			C.free(unsafe.Pointer(p))
		}
	}()
	// The array of C pointers lives in C memory: cgo forbids passing Go
	// memory that holds pointers.
	arr := (**C.char)(C.malloc(C.size_t(len(cs)) * C.size_t(unsafe.Sizeof(cs[0]))))
	defer C.free(unsafe.Pointer(arr))
	copy(unsafe.Slice(arr, len(cs)), cs)
	return m.attr(name, func(h C.jt_module, n *C.char) *C.jt_error {
		return C.jt_jit_attr_strs(h, n, arr, C.int64_t(len(v)))
	})
}

// HasAttr reports whether the module has an attribute (a parameter,
// buffer, submodule or value) called name.
func (m *Module) HasAttr(name string) bool {
	h, err := m.handle("hasattr")
	if err != nil {
		return false
	}
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	return C.jt_jit_has_attr(h, cs) != 0
}

// Constants counts the tensor constants in method's graph (its calls
// inlined) and their elements. A weight the tracer did not see as a
// registered tensor would be one.
func (m *Module) Constants(method string) (count, numel int64, err error) {
	h, err := m.handle("constants")
	if err != nil {
		return 0, 0, err
	}
	cs := C.CString(method)
	defer C.free(unsafe.Pointer(cs))
	var c, n C.int64_t
	if err := shimErr(C.jt_jit_constants(h, cs, &c, &n), "constants "+method); err != nil {
		return 0, 0, err
	}
	return int64(c), int64(n), nil
}

type writeCtx struct {
	w   io.Writer
	err error
}

//export jtGoWrite
func jtGoWrite(ctx C.uintptr_t, p *C.char, n C.int64_t) C.int {
	c := cgo.Handle(ctx).Value().(*writeCtx)
	if _, err := c.w.Write(unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))); err != nil {
		c.err = err
		return 1
	}
	return 0
}

// Save writes the module as a TorchScript archive (a zip file) to w.
func (m *Module) Save(w io.Writer) error {
	h, err := m.handle("save")
	if err != nil {
		return err
	}
	c := &writeCtx{w: w}
	ch := cgo.NewHandle(c)
	defer ch.Delete()
	e := C.jit_save(h, C.uintptr_t(ch))
	if c.err != nil {
		C.jt_error_free(e)
		return c.err
	}
	return shimErr(e, "save")
}

// Run calls method on x without gradients and copies its result into out,
// which must have the result's shape and dtype (an error names both). The
// graph runs as recorded, without the graph executor's optimisations
// (which torch.jit.load's users get), so a first call starts at once.
func (m *Module) Run(method string, x, out *torch.Tensor) error {
	h, err := m.handle("run")
	if err != nil {
		return err
	}
	if err := x.Err(); err != nil {
		return err
	}
	if err := out.Err(); err != nil {
		return err
	}
	if x.CHandle() == nil || out.CHandle() == nil {
		return &torch.Error{Op: "jit run", Msg: "a freed tensor", Kind: torch.KindFreed}
	}
	cs := C.CString(method)
	defer C.free(unsafe.Pointer(cs))
	e := C.jt_jit_run(h, cs, C.jt_tensor(x.CHandle()), C.jt_tensor(out.CHandle()))
	runtime.KeepAlive(x)
	runtime.KeepAlive(out)
	err = shimErr(e, "run "+method)
	// TorchScript's raise carries the script's traceback: keep its message.
	if te, ok := err.(*torch.Error); ok {
		te.Msg = scriptMessage(te.Msg)
	}
	return err
}

// scriptMessage shortens an error TorchScript raised to its last line, the
// exception and its message, when it carries the script's traceback.
func scriptMessage(msg string) string {
	msg = strings.TrimSpace(msg)
	if !strings.Contains(msg, "Traceback of TorchScript") {
		return msg
	}
	lines := strings.Split(msg, "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// handleNumel is the element count of t as the TorchScript shim reads its
// handle: equal to t.Numel() while the shim's view of jmedseg.cc's handle
// layout holds.
func handleNumel(t *torch.Tensor) int64 {
	n := int64(C.jt_jit_handle_numel(C.jt_tensor(t.CHandle())))
	runtime.KeepAlive(t)
	return n
}

// Optimized returns a frozen, inference-optimised copy of the module, as
// torch.jit.optimize_for_inference(torch.jit.freeze(m)) makes in Python:
// its tensors inlined as constants, BatchNorms folded into the
// convolutions before them, convolutions fused with a following add and
// relu and, where libtorch has oneDNN, run as MKLDNN ops. Only forward is
// kept (the module must have one). The copy holds tensors of its own (the
// folded and MKLDNN weights), so later changes to the module's tensors do
// not reach it. The caller frees it.
func (m *Module) Optimized() (*Module, error) {
	h, err := m.handle("optimize")
	if err != nil {
		return nil, err
	}
	return wrap(C.jt_jit_optimize(h), "optimize")
}

// Forward runs the module's forward on x in inference mode and copies the
// result into out, which must have its shape and dtype (an error names
// both). With optimize the graph executor profiles the first calls and
// optimises the graph, as for modules torch.jit.load returns; without, the
// graph runs as it is. Forward may be called from several goroutines at
// once, but not concurrently with Free.
func (m *Module) Forward(x, out *torch.Tensor, optimize bool) error {
	h, err := m.handle("forward")
	if err != nil {
		return err
	}
	if err := errors.Join(x.Err(), out.Err()); err != nil {
		return err
	}
	if x.CHandle() == nil || out.CHandle() == nil {
		return &torch.Error{Op: "jit forward", Msg: "a freed tensor", Kind: torch.KindFreed}
	}
	o := C.int(0)
	if optimize {
		o = 1
	}
	e := C.jt_jit_forward(h, C.jt_tensor(x.CHandle()), C.jt_tensor(out.CHandle()), o)
	runtime.KeepAlive(x)
	runtime.KeepAlive(out)
	return shimErr(e, "forward")
}
