// wino.h: 3×3 float32 CPU convolutions on oneDNN's Winograd kernels
// (csrc/wino.cc), for perf.cc's jp_conv2d. Built only against oneDNN 2.x
// (Debian 12's libdnnl, the library Debian's libtorch runs on); elsewhere
// csrc/wino_none.cc says it is unavailable and every call falls through.
#pragma once

#include "perf.h"

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include <cstdint>

namespace jmedseg_wino {

// Modes for set_mode: off, inference only (no gradient is recorded), or
// inference and training (an autograd function with Winograd backward).
enum Mode { kOff = 0, kInference = 1, kTraining = 2 };

// try_conv runs a stride-1, dilation-1, ungrouped 3×3 convolution of
// float32 CPU tensors on the Winograd kernel when the mode, the shape and
// the kernel allow it, and returns false (out untouched) otherwise. The
// caller has checked everything else at::mkldnn_convolution needs.
bool try_conv(const at::Tensor &x, const at::Tensor &w, const c10::optional<at::Tensor> &b, const int64_t *padding,
              at::Tensor *out);

}  // namespace jmedseg_wino

// The C entry points (jp_winograd_*) are declared in perf.h.
