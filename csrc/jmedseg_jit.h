/* jmedseg_jit.h: the C ABI of the TorchScript shim (jmedseg_jit.cc), which
 * torch/jit compiles in. It extends jmedseg.h: the same error values and
 * tensor handles, with the same rules (every call returns its own error,
 * nothing in thread-local storage). */
#ifndef JMEDSEG_JIT_H
#define JMEDSEG_JIT_H

#include <stdint.h>

#include "jmedseg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- TorchScript (torch/jit): trace a forward into a module, save it, load it, run it ----
 * A jt_module owns a torch::jit::Module. A tensor registered on it (jt_jit_register) is the handle's own
 * tensor, shared, not copied: a forward traced with jt_jit_trace that reads it becomes a read of that
 * attribute of self, so the saved module carries the weights under their paths. Call back contexts are
 * uintptr_t values the caller resolves (cgo handles), never pointers into the caller's memory. */
typedef void *jt_module;

typedef struct jt_module_result {
  jt_module m;
  jt_error *err;
} jt_module_result;

/* The traced function: runs on the calling thread inside jt_jit_trace, reads the input given to
 * jt_jit_trace, and returns its output's handle, borrowed (alive until jt_jit_trace returns), or NULL
 * when it failed; the caller then keeps its own error and jt_jit_trace abandons the trace. */
typedef jt_tensor (*jt_trace_fn)(uintptr_t ctx);
/* A sink for jt_jit_save: returns 0 when it took all n bytes, anything else to stop. */
typedef int (*jt_write_fn)(uintptr_t ctx, const char *p, int64_t n);

jt_module_result jt_jit_new(const char *class_name); /* an empty module, a class of its own */
void jt_jit_free(jt_module m);
/* path "a.b.weight": submodules a and a.b are made on first use; is_buffer 0 registers a parameter */
jt_error *jt_jit_register(jt_module m, const char *path, jt_tensor t, int is_buffer);
/* Traces fn with input as the only input and makes the graph method `method` of m (strict, in place ops
 * kept, the tracer's own passes). Tracing is thread-local in libtorch: fn runs on this thread. */
jt_error *jt_jit_trace(jt_module m, const char *method, jt_tensor input, jt_trace_fn fn, uintptr_t ctx);
/* TorchScript source of more methods; names resolve to torch.* (ATen) and Exception, RuntimeError, ValueError */
jt_error *jt_jit_define(jt_module m, const char *src);
jt_error *jt_jit_attr_str(jt_module m, const char *name, const char *value);
jt_error *jt_jit_attr_int(jt_module m, const char *name, int64_t value);
jt_error *jt_jit_attr_float(jt_module m, const char *name, double value);
jt_error *jt_jit_attr_ints(jt_module m, const char *name, const int64_t *v, int64_t n);
jt_error *jt_jit_attr_floats(jt_module m, const char *name, const double *v, int64_t n);
jt_error *jt_jit_attr_strs(jt_module m, const char *name, const char *const *v, int64_t n);
int jt_jit_has_attr(jt_module m, const char *name);
/* Counts the tensor constants of method's graph (its calls inlined) and their elements: weights a
 * trace failed to map to attributes would show up here. */
jt_error *jt_jit_constants(jt_module m, const char *method, int64_t *count, int64_t *numel);
jt_error *jt_jit_save(jt_module m, jt_write_fn fn, uintptr_t ctx); /* the TorchScript archive, streamed */
jt_module_result jt_jit_load(const char *path);                   /* torch::jit::load, on the CPU */
/* out = method(x), without grad or the graph executor's optimisations: out has the result's shape and
 * dtype (else an error naming both) */
jt_error *jt_jit_run(jt_module m, const char *method, jt_tensor x, jt_tensor out);
/* A frozen, inference-optimised copy of m, what torch.jit.optimize_for_inference(torch.jit.freeze(m)) makes:
 * torch::jit::freeze (parameters and attributes inlined as constants, BatchNorms folded into the
 * convolutions before them), then torch::jit::optimize_for_inference (convolutions fused with the add and
 * relu after them and, where libtorch has oneDNN, frozen ops run as MKLDNN ops). Only forward is kept;
 * m must be in evaluation mode. m is unchanged. */
jt_module_result jt_jit_optimize(jt_module m);
/* out = forward(x) in inference mode; optimize 1 lets the graph executor profile and optimise the graph as
 * torch.jit.load's users get it, 0 runs the graph as it is. out must have the result's shape and dtype. */
jt_error *jt_jit_forward(jt_module m, jt_tensor x, jt_tensor out, int optimize);
int64_t jt_jit_handle_numel(jt_tensor t); /* numel as this shim reads a handle: checks its view of the layout */

#ifdef __cplusplus
}
#endif

#endif
