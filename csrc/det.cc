// det.cc: libtorch's determinism switches behind det.h.
//
// cgo compiles it into package torch as a translation unit of its own
// (torch/det_shim.cc). The calls exist with these signatures from libtorch
// 1.11 (warn_only arrived then) through 2.6.
#include "det.h"

#include <ATen/Context.h>

extern "C" {

void jd_set_deterministic(int on, int warn_only) {
  auto &ctx = at::globalContext();
  ctx.setDeterministicAlgorithms(on != 0, warn_only != 0);
  ctx.setDeterministicCuDNN(on != 0);
  if (on) {
    // cuDNN's autotuner picks kernels by timing: a source of run-to-run
    // differences.
    ctx.setBenchmarkCuDNN(false);
  }
}

int jd_deterministic(void) { return at::globalContext().deterministicAlgorithms() ? 1 : 0; }

int jd_deterministic_warn_only(void) {
  return at::globalContext().deterministicAlgorithmsWarnOnly() ? 1 : 0;
}

}  // extern "C"
