// perf.cc: memory formats, autocast, multi-tensor (_foreach_) updates and
// CUDA graphs, behind perf.h.
//
// cgo compiles it into package torch as a translation unit of its own
// (torch/perf_shim.cc), beside jmedseg.cc, whose handles it reads (an
// at::Tensor first, as csrc/dist.cc reads them) and makes only through
// jt_shallow, so that the live-tensor counters see every handle.
//
// libtorch versions: autocast's per-device API (set_autocast_enabled(device,
// on)) arrived in 2.4; 1.13 to 2.3 have set_cpu_enabled / set_enabled
// (CUDA). TORCH_VERSION_* selects the calls. CUDA graphs are compiled only
// with JMEDSEG_CUDA (the Makefile defines it when LIBTORCH has
// libtorch_cuda), since at::cuda::CUDAGraph exists only in CUDA builds.
#include "perf.h"
#include "shim_internal.h"
#include "wino.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/TracerMode.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

// A CUDA libtorch without the CUDA runtime's headers on the include path
// builds without graphs rather than failing.
#if defined(JMEDSEG_CUDA) && defined(__has_include)
#if __has_include(<cuda_runtime_api.h>)
#define JP_CUDA_GRAPHS 1
#endif
#endif

#ifdef JP_CUDA_GRAPHS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <optional>
#endif

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define JP_AUTOCAST_PER_DEVICE 1
#endif

namespace {

using jmedseg_shim::Handle;
using jmedseg_shim::make_err;
using jmedseg_shim::T;

// wrap makes a counted handle of t through jmedseg.cc's jt_shallow.
jt_tensor wrap(at::Tensor t) {
  Handle v{std::move(t), 0};
  jt_result r = jt_shallow(&v);
  if (r.err != nullptr) {
    jt_error_free(r.err);
    throw std::bad_alloc();
  }
  return r.t;
}

std::vector<at::Tensor> list(jt_tensor *xs, int64_t n) {
  std::vector<at::Tensor> v;
  v.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) v.push_back(T(xs[i]));
  return v;
}

// put hands results to out, freeing what was made if one fails.
void put(std::vector<at::Tensor> &&ts, jt_tensor *out) {
  size_t i = 0;
  try {
    for (; i < ts.size(); i++) out[i] = wrap(std::move(ts[i]));
  } catch (...) {
    for (size_t j = 0; j < i; j++) {
      jt_free(out[j]);
      out[j] = nullptr;
    }
    throw;
  }
}

at::MemoryFormat format(int f) {
  return f == JP_CHANNELS_LAST ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
}

}  // namespace

#define PE(stmts)   \
  try {             \
    stmts;          \
    return nullptr; \
  }                 \
  CATCH_RETURN(RET_ERR)

extern "C" {

// ---- memory formats ----

jt_result jp_contiguous_as(jt_tensor t, int f) {
  try {
    return jt_result{wrap(T(t).contiguous(format(f))), nullptr};
  }
  CATCH_RETURN(RET_RES)
}

int jp_is_contiguous_as(jt_tensor t, int f) { return T(t).is_contiguous(format(f)) ? 1 : 0; }

// ---- autocast ----

struct AutocastState {
  at::DeviceType dev;
  bool was_enabled;
  at::ScalarType prev_dtype;
};

static bool autocast_is_enabled(at::DeviceType d) {
#ifdef JP_AUTOCAST_PER_DEVICE
  return at::autocast::is_autocast_enabled(d);
#else
  return d == at::kCPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
#endif
}

static void autocast_set(at::DeviceType d, bool on, at::ScalarType dt) {
#ifdef JP_AUTOCAST_PER_DEVICE
  at::autocast::set_autocast_dtype(d, dt);
  at::autocast::set_autocast_enabled(d, on);
#else
  if (d == at::kCPU) {
    at::autocast::set_autocast_cpu_dtype(dt);
    at::autocast::set_cpu_enabled(on);
  } else {
    at::autocast::set_autocast_gpu_dtype(dt);
    at::autocast::set_enabled(on);
  }
#endif
}

static at::ScalarType autocast_dtype(at::DeviceType d) {
#ifdef JP_AUTOCAST_PER_DEVICE
  return at::autocast::get_autocast_dtype(d);
#else
  return d == at::kCPU ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
#endif
}

void *jp_autocast_enter(int dev_type, int dtype, jt_error **err) {
  *err = nullptr;
  try {
    auto d = static_cast<at::DeviceType>(dev_type);
    auto dt = static_cast<at::ScalarType>(dtype);
    if (d != at::kCPU && d != at::kCUDA) {
      *err = make_err(JT_ERR_VALUE, "autocast: only CPU and CUDA devices are supported");
      return nullptr;
    }
    if (dt != at::kBFloat16 && dt != at::kHalf) {
      *err = make_err(JT_ERR_VALUE, "autocast: the dtype must be bfloat16 or float16");
      return nullptr;
    }
    if (d == at::kCPU && dt != at::kBFloat16) {
      *err = make_err(JT_ERR_VALUE, "autocast: CPU autocast takes bfloat16 only (float16 is for CUDA)");
      return nullptr;
    }
    auto *s = new AutocastState{d, autocast_is_enabled(d), autocast_dtype(d)};
    autocast_set(d, true, dt);
    at::autocast::increment_nesting();
    return s;
  } catch (const std::exception &e) {
    *err = make_err(JT_ERR_GENERIC, e.what());
  } catch (...) {
    *err = make_err(JT_ERR_GENERIC, "autocast: unknown C++ exception");
  }
  return nullptr;
}

void jp_autocast_exit(void *state) {
  if (state == nullptr) return;
  auto *s = static_cast<AutocastState *>(state);
  // As torch.autocast.__exit__: the cast weights are cached for the
  // region; the cache goes when the outermost region ends.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  autocast_set(s->dev, s->was_enabled, s->prev_dtype);
  delete s;
}

int jp_autocast_enabled(int dev_type) { return autocast_is_enabled(static_cast<at::DeviceType>(dev_type)) ? 1 : 0; }

// ---- oneDNN convolutions ----

// PyTorch's use_mkldnn (aten/src/ATen/native/Convolution.cpp) sends batch-1
// float32 convolutions with kernels up to 3x3 on maps of at most 20480
// elements to the native im2col and dilated kernels, which are many times
// slower here (deeplab batch 1 at 128²: 0.59 s eager, 0.07 s with every
// convolution on oneDNN). jp_conv2d calls at::mkldnn_convolution directly
// where it applies; its autograd formula is at::convolution_backward, the
// same backward at::conv2d's gradients come from. One process-wide switch
// (not thread-local: it is a choice of kernel, not a mode).
namespace {
std::atomic<bool> onednn_conv{true};
// A per-thread override (-1: none, 0: off), for a caller that must see
// at::conv2d's kernels (a check against a trace) while others run on.
thread_local int onednn_thread = -1;

bool onednn_applies(const at::Tensor &x, const at::Tensor &w, const c10::optional<at::Tensor> &b,
                    const int64_t *stride, const int64_t *padding, const int64_t *dilation, int64_t groups) {
  if (onednn_thread == 0 || !onednn_conv.load(std::memory_order_relaxed) || !at::hasMKLDNN() ||
      !at::globalContext().userEnabledMkldnn())
    return false;
  // Under autocast at::conv2d casts to bfloat16 first; the tracer must
  // record the portable aten::_convolution (an export runs on CUDA too).
  if (autocast_is_enabled(at::kCPU) || at::tracer::impl::is_dispatch_enabled()) return false;
  auto plain = [](const at::Tensor &t) {
    return t.device().is_cpu() && t.layout() == at::kStrided && t.scalar_type() == at::kFloat;
  };
  if (!plain(x) || !plain(w) || x.dim() != 4 || w.dim() != 4 || x.numel() == 0 || w.numel() == 0) return false;
  if (groups < 1 || x.size(1) != w.size(1) * groups || w.size(0) % groups != 0) return false;
  if (b.has_value() && b->defined() && (!plain(*b) || b->dim() != 1 || b->size(0) != w.size(0))) return false;
  for (int i = 0; i < 2; i++) {
    if (stride[i] < 1 || padding[i] < 0 || dilation[i] < 1) return false;
    if (x.size(2 + i) + 2 * padding[i] < dilation[i] * (w.size(2 + i) - 1) + 1) return false;
  }
  // Anything else (shape errors included) goes to at::conv2d, whose checks
  // and messages are PyTorch's.
  return true;
}
}  // namespace

void jp_set_onednn_conv(int on) { onednn_conv.store(on != 0, std::memory_order_relaxed); }
int jp_onednn_conv(void) { return onednn_conv.load(std::memory_order_relaxed) ? 1 : 0; }
int jp_has_mkldnn(void) { return at::hasMKLDNN() ? 1 : 0; }
int jp_onednn_conv_thread(int v) {
  int prev = onednn_thread;
  onednn_thread = v;
  return prev;
}

jt_result jp_conv2d(jt_tensor x, jt_tensor w, jt_tensor b, const int64_t *stride, const int64_t *padding,
                    const int64_t *dilation, int64_t groups, int *used) {
  try {
    c10::optional<at::Tensor> bias;
    if (b != nullptr) bias = T(b);
    at::IntArrayRef s(stride, 2), p(padding, 2), d(dilation, 2);
    // oneDNN sizes its thread team from this thread's OpenMP setting, which
    // libtorch sets on a thread's first parallel op only.
    at::internal::lazy_init_num_threads();
    bool on = onednn_applies(T(x), T(w), bias, stride, padding, dilation, groups);
    if (used != nullptr) *used = on ? 1 : 0;
    if (on && groups == 1 && stride[0] == 1 && stride[1] == 1 && dilation[0] == 1 && dilation[1] == 1) {
      at::Tensor out;
      if (jmedseg_wino::try_conv(T(x), T(w), bias, padding, &out)) {
        if (used != nullptr) *used = 2;
        return jt_result{wrap(std::move(out)), nullptr};
      }
    }
    if (on) return jt_result{wrap(at::mkldnn_convolution(T(x), T(w), bias, p, s, d, groups)), nullptr};
    return jt_result{wrap(at::conv2d(T(x), T(w), bias, s, p, d, groups)), nullptr};
  }
  CATCH_RETURN(RET_RES)
}

jt_result jp_conv_transpose2d(jt_tensor x, jt_tensor w, jt_tensor b, const int64_t *stride, const int64_t *padding,
                              const int64_t *output_padding, const int64_t *dilation, int64_t groups, int *used) {
  try {
    c10::optional<at::Tensor> bias;
    if (b != nullptr) bias = T(b);
    const at::Tensor &X = T(x), &W = T(w);
    at::internal::lazy_init_num_threads();
    if (used != nullptr) *used = 0;
    const int64_t s = stride[0];
    bool blocks = groups == 1 && X.dim() == 4 && W.dim() == 4 && s > 1 && stride[1] == s && W.size(2) == s &&
                  W.size(3) == s && X.size(1) == W.size(0);
    for (int i = 0; i < 2; i++) {
      blocks = blocks && padding[i] == 0 && output_padding[i] == 0 && dilation[i] == 1;
    }
    const bool bias_fits = !bias.has_value() || (bias->defined() && bias->dim() == 1 && bias->size(0) == W.size(1));
    if (blocks && bias_fits) {
      // Each input pixel writes its own s×s block of the output:
      // out[n, o, h·s+a, w·s+b] = Σc x[n, c, h, w]·W[c, o, a, b], a 1×1
      // convolution to channel o·s²+a·s+b, which pixel_shuffle puts there.
      const int64_t o = W.size(1), one[2] = {1, 1}, zero[2] = {0, 0};
      at::Tensor w1 = W.permute({1, 2, 3, 0}).reshape({o * s * s, W.size(0), 1, 1});
      if (onednn_applies(X, w1, c10::nullopt, one, zero, one, 1)) {
        at::Tensor y = at::pixel_shuffle(at::mkldnn_convolution(X, w1, c10::nullopt, {0, 0}, {1, 1}, {1, 1}, 1), s);
        if (bias.has_value()) y.add_(bias->view({1, o, 1, 1}));
        if (used != nullptr) *used = 1;
        return jt_result{wrap(std::move(y)), nullptr};
      }
    }
    // Any other strided one (overlapping blocks: a 3×3 or 4×4 kernel at
    // stride 2) is the convolution of the input spread out by the stride,
    // zeros between its pixels and output_padding more after them, with the
    // kernel flipped and its in and out swapped, padded k−1−p: s² times the
    // multiply-adds of at::conv_transpose2d's, still faster on oneDNN.
    bool spread = groups == 1 && X.dim() == 4 && W.dim() == 4 && X.size(1) == W.size(0) && X.numel() > 0 &&
                  (stride[0] > 1 || stride[1] > 1) && bias_fits;
    for (int i = 0; i < 2; i++) {
      spread = spread && stride[i] >= 1 && dilation[i] == 1 && padding[i] >= 0 && padding[i] <= W.size(2 + i) - 1 &&
               output_padding[i] >= 0 && output_padding[i] < stride[i];
    }
    if (spread) {
      const int64_t h = X.size(2), wd = X.size(3), one[2] = {1, 1};
      const int64_t pad[2] = {W.size(2) - 1 - padding[0], W.size(3) - 1 - padding[1]};
      at::Tensor wf = W.flip({2, 3}).transpose(0, 1).contiguous();
      // Checked on x (the spread-out input only grows), so that nothing is
      // allocated where at::conv_transpose2d runs after all.
      if (onednn_applies(X, wf, bias, one, pad, one, 1)) {
        at::Tensor up = at::zeros({X.size(0), X.size(1), (h - 1) * stride[0] + 1 + output_padding[0],
                                   (wd - 1) * stride[1] + 1 + output_padding[1]},
                                  X.options());
        up.slice(2, 0, (h - 1) * stride[0] + 1, stride[0]).slice(3, 0, (wd - 1) * stride[1] + 1, stride[1]).copy_(X);
        at::Tensor out;
        if (!jmedseg_wino::try_conv(up, wf, bias, pad, &out)) {
          out = at::mkldnn_convolution(up, wf, bias, at::IntArrayRef(pad, 2), {1, 1}, {1, 1}, 1);
        }
        if (used != nullptr) *used = 2;
        return jt_result{wrap(std::move(out)), nullptr};
      }
    }
    at::IntArrayRef st(stride, 2), p(padding, 2), op(output_padding, 2), d(dilation, 2);
    return jt_result{wrap(at::conv_transpose2d(X, W, bias, st, p, op, groups, d)), nullptr};
  }
  CATCH_RETURN(RET_RES)
}

// ---- multi-tensor updates ----

jt_error *jp_foreach_mul_scalar_(jt_tensor *xs, int64_t n, double s) { PE(at::_foreach_mul_(list(xs, n), s)) }
jt_error *jp_foreach_add_scalar_(jt_tensor *xs, int64_t n, double s) { PE(at::_foreach_add_(list(xs, n), s)) }
jt_error *jp_foreach_div_scalar_(jt_tensor *xs, int64_t n, double s) { PE(at::_foreach_div_(list(xs, n), s)) }
jt_error *jp_foreach_add_list_(jt_tensor *xs, jt_tensor *ys, int64_t n, double alpha) {
  PE(at::_foreach_add_(list(xs, n), list(ys, n), alpha))
}
jt_error *jp_foreach_addcmul_(jt_tensor *xs, jt_tensor *a, jt_tensor *b, int64_t n, double value) {
  PE(at::_foreach_addcmul_(list(xs, n), list(a, n), list(b, n), value))
}
jt_error *jp_foreach_addcdiv_(jt_tensor *xs, jt_tensor *a, jt_tensor *b, int64_t n, double value) {
  PE(at::_foreach_addcdiv_(list(xs, n), list(a, n), list(b, n), value))
}
jt_error *jp_foreach_maximum_(jt_tensor *xs, jt_tensor *ys, int64_t n) {
  // 1.13 has _foreach_maximum_ (in place) as 2.x does.
  PE(at::_foreach_maximum_(list(xs, n), list(ys, n)))
}
jt_error *jp_foreach_copy_(jt_tensor *xs, jt_tensor *ys, int64_t n) {
  // _foreach_copy_ is 2.1+; a loop of copy_ is the same arithmetic.
  PE(for (int64_t i = 0; i < n; i++) T(xs[i]).copy_(T(ys[i])))
}
jt_error *jp_foreach_sqrt(jt_tensor *xs, int64_t n, jt_tensor *out) { PE(put(at::_foreach_sqrt(list(xs, n)), out)) }
jt_error *jp_foreach_add_list(jt_tensor *xs, jt_tensor *ys, int64_t n, double alpha, jt_tensor *out) {
  PE(put(at::_foreach_add(list(xs, n), list(ys, n), alpha), out))
}
jt_error *jp_grads(jt_tensor *params, int64_t n, jt_tensor *out) {
  PE({
    for (int64_t i = 0; i < n; i++) out[i] = nullptr;
    std::vector<at::Tensor> gs;
    gs.reserve(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i++) gs.push_back(T(params[i]).grad());
    int64_t i = 0;
    try {
      for (; i < n; i++)
        if (gs[i].defined()) out[i] = wrap(std::move(gs[i]));
    } catch (...) {
      for (int64_t j = 0; j < i; j++) {
        jt_free(out[j]);
        out[j] = nullptr;
      }
      throw;
    }
  })
}

// ---- CUDA graphs ----

#ifdef JP_CUDA_GRAPHS
struct Graph {
  at::cuda::CUDAGraph g;
  int dev;
  std::optional<c10::cuda::CUDAStream> stream;
  std::optional<c10::cuda::CUDAStreamGuard> guard;
};

int jp_cuda_graphs_built(void) { return 1; }

jt_error *jp_graph_new(int dev_index, jp_graph *out) {
  PE({
    auto *g = new Graph();
    g->dev = dev_index;
    *out = g;
  })
}

static void use_graph_stream(Graph *g) {
  if (g->guard) throw std::runtime_error("CUDA graph: its stream is already in use");
  c10::cuda::CUDAGuard dev(static_cast<c10::DeviceIndex>(g->dev));
  // The work queued so far on the current stream must be done first.
  c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(g->dev)).synchronize();
  if (!g->stream) g->stream.emplace(c10::cuda::getStreamFromPool(false, static_cast<c10::DeviceIndex>(g->dev)));
  g->guard.emplace(*g->stream);
}

jt_error *jp_graph_side_begin(jp_graph h) { PE(use_graph_stream(static_cast<Graph *>(h))) }

jt_error *jp_graph_side_end(jp_graph h) {
  PE({
    auto *g = static_cast<Graph *>(h);
    if (!g->guard) throw std::runtime_error("CUDA graph: side_end without side_begin");
    g->stream->synchronize();
    g->guard.reset();
  })
}

jt_error *jp_graph_capture_begin(jp_graph h) {
  PE({
    auto *g = static_cast<Graph *>(h);
    use_graph_stream(g);
    try {
      g->g.capture_begin();
    } catch (...) {
      g->guard.reset();
      throw;
    }
  })
}

jt_error *jp_graph_capture_end(jp_graph h) {
  PE({
    auto *g = static_cast<Graph *>(h);
    if (!g->guard) throw std::runtime_error("CUDA graph: capture_end without capture_begin");
    try {
      g->g.capture_end();
    } catch (...) {
      g->guard.reset();
      throw;
    }
    g->stream->synchronize();
    g->guard.reset();
  })
}

jt_error *jp_graph_replay(jp_graph h) {
  PE({
    auto *g = static_cast<Graph *>(h);
    if (g->guard) throw std::runtime_error("CUDA graph: replay during capture");
    g->g.replay();
  })
}

void jp_graph_free(jp_graph h) {
  auto *g = static_cast<Graph *>(h);
  if (g == nullptr) return;
  g->guard.reset();
  delete g;
}

jt_error *jp_cuda_synchronize(int dev_index) {
  PE({
    c10::cuda::CUDAGuard dev(static_cast<c10::DeviceIndex>(dev_index));
    c10::cuda::device_synchronize();
  })
}
#else
static jt_error *no_cuda() {
  return make_err(JT_ERR_GENERIC,
                  "CUDA graphs: this jmedseg was built without CUDA (build against a CUDA libtorch: make LIBTORCH=...)");
}
int jp_cuda_graphs_built(void) { return 0; }
jt_error *jp_graph_new(int, jp_graph *out) {
  *out = nullptr;
  return no_cuda();
}
jt_error *jp_graph_capture_begin(jp_graph) { return no_cuda(); }
jt_error *jp_graph_capture_end(jp_graph) { return no_cuda(); }
jt_error *jp_graph_replay(jp_graph) { return no_cuda(); }
jt_error *jp_graph_side_begin(jp_graph) { return no_cuda(); }
jt_error *jp_graph_side_end(jp_graph) { return no_cuda(); }
void jp_graph_free(jp_graph) {}
jt_error *jp_cuda_synchronize(int) { return no_cuda(); }
#endif

}  // extern "C"
