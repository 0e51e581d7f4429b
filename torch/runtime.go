package torch

/*
#include "jmedseg.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
)

// HeaderVersion is the libtorch version whose headers the shim was built with.
func HeaderVersion() string { return C.GoString(C.jt_header_version()) }

// RuntimeVersion is the version of the libtorch loaded at run time.
func RuntimeVersion() (string, error) {
	var buf [64]C.char
	if err := takeErr(C.jt_runtime_version(&buf[0], C.int64_t(len(buf))), "runtime_version"); err != nil {
		return "", err
	}
	return C.GoString(&buf[0]), nil
}

var versionCheck = sync.OnceValue(func() error {
	rt, err := RuntimeVersion()
	if err != nil {
		return err
	}
	hv := HeaderVersion()
	if rt == "unknown" {
		return nil // a build that does not record its version: nothing to compare
	}
	if majorMinor(rt) != majorMinor(hv) {
		return fmt.Errorf("torch: libtorch %s is loaded but jmedseg was built against %s headers: rebuild (go clean -cache) or point LIBTORCH at the matching install", rt, hv)
	}
	return nil
})

func majorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

// CheckVersion verifies that the loaded libtorch matches the headers the
// shim was compiled with. Programs call it once at start-up.
func CheckVersion() error { return versionCheck() }

// SetNumThreads sets libtorch's intra-op thread count (process-wide).
func SetNumThreads(n int) {
	if n > 0 {
		C.jt_set_num_threads(C.int(n))
	}
}

// NumThreads is libtorch's intra-op thread count.
func NumThreads() int { return int(C.jt_get_num_threads()) }

// ManualSeed seeds libtorch's default generators (CPU and CUDA) so that
// random tensors, dropout and initialisation repeat run after run.
func ManualSeed(seed uint64) { C.jt_manual_seed(C.uint64_t(seed)) }

// RNGState returns the CPU generator's state as a uint8 tensor (owned by the
// caller), for checkpoints that resume exactly.
func RNGState() *Tensor {
	r := C.jt_rng_get_state()
	if r.err != nil {
		return errTensor(takeErr(r.err, "rng_get_state"))
	}
	return newTensor(r.t, nil)
}

// SetRNGState restores a state returned by RNGState.
func SetRNGState(state *Tensor) error {
	if err := argErr("rng_set_state", state); err != nil {
		return err
	}
	e := C.jt_rng_set_state(state.h)
	runtime.KeepAlive(state)
	return takeErr(e, "rng_set_state", state)
}

// NoGrad runs f with gradient recording off. Grad mode is thread-local in
// libtorch, so the goroutine is locked to its OS thread while f runs: every
// operation f makes sees the mode, and no other goroutine does. Goroutines
// that f starts are not covered.
func NoGrad(f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := C.jt_set_grad_enabled(0)
	defer C.jt_set_grad_enabled(prev)
	f()
}

// WithGrad runs f with gradient recording on (undoing an enclosing NoGrad).
func WithGrad(f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := C.jt_set_grad_enabled(1)
	defer C.jt_set_grad_enabled(prev)
	f()
}

// GradEnabled reports whether gradients are recorded on the calling
// goroutine's current thread; meaningful inside NoGrad or WithGrad.
func GradEnabled() bool { return C.jt_is_grad_enabled() != 0 }

// InferenceMode runs f in libtorch's inference mode: faster than NoGrad, but
// tensors created inside can never take part in autograd. The goroutine is
// locked to its thread as in NoGrad.
func InferenceMode(f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	g := C.jt_inference_mode_enter()
	defer C.jt_inference_mode_exit(g)
	f()
}
