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

// CPUCache reports the CPU block cache: the bytes it holds, in how many
// blocks, and how many large allocations it served (hits) or left to
// malloc (misses) since the process started. libtorch's CPU tensors of
// 1 MiB and up come from it: glibc returns such blocks to the system at
// free and faults their pages in again at the next allocation, which cost
// a training step a third of its time on this project's VM.
func CPUCache() (bytes, blocks, hits, misses int64) {
	var b, h, m C.int64_t
	n := C.jt_cpu_cache_stats(&b, &h, &m)
	return int64(n), int64(b), int64(h), int64(m)
}

// SetCPUCache sets how many bytes of freed large blocks the CPU cache may
// keep for reuse (0 turns it off and frees what it holds; lowering it frees
// the cache) and returns the previous limit. The default is
// JMEDSEG_CPU_CACHE (bytes) from the environment, else a quarter of the
// machine's memory. A negative value changes nothing.
func SetCPUCache(limit int64) (was int64) {
	return int64(C.jt_cpu_cache_set_limit(C.int64_t(limit)))
}

// CPUCacheLimit is the CPU block cache's limit in bytes (0: off).
func CPUCacheLimit() int64 { return int64(C.jt_cpu_cache_set_limit(-1)) }

// EmptyCPUCache frees the blocks the CPU cache holds and the idle kernel
// scratch (tensors in use are not touched).
func EmptyCPUCache() { C.jt_cpu_cache_empty() }

// CPUScratch is the bytes of kernel working memory kept between calls:
// the Winograd convolutions' scratchpads and blocked copies come from one
// reused block (per concurrent caller) the size of the largest call's
// needs, outside the block cache; none is kept with the cache off.
func CPUScratch() int64 { return int64(C.jt_cpu_scratch_bytes()) }
