// jmedseg.cc: the libtorch shim behind jmedseg.h. Only ATen calls that exist
// in libtorch 1.13 and 2.x are used.
#include "jmedseg.h"
#include "shim_internal.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

namespace jmedseg_shim {
std::atomic<int> threads_epoch{0};
std::atomic<int> threads_n{0};
void threads_sync() {
  int n = threads_n.load();
  if (n > 0 && at::get_num_threads() != n) at::set_num_threads(n);
}
}  // namespace jmedseg_shim

namespace {

using jmedseg_shim::Handle;
using jmedseg_shim::make_err;
using jmedseg_shim::T;

std::atomic<int64_t> g_live{0};
std::atomic<int64_t> g_bytes{0};

inline int64_t nbytes_of(const at::Tensor &t) {
  return t.defined() ? static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size()) : 0;
}

jt_tensor wrap(at::Tensor t) {
  int64_t b = nbytes_of(t);
  auto *h = new Handle{std::move(t), b};
  g_live.fetch_add(1, std::memory_order_relaxed);
  g_bytes.fetch_add(b, std::memory_order_relaxed);
  return h;
}

inline c10::optional<at::Tensor> opt(jt_tensor h) {
  if (h == nullptr) return c10::nullopt;
  return T(h);
}

inline at::IntArrayRef ints(const int64_t *p, int64_t n) { return at::IntArrayRef(p, static_cast<size_t>(n)); }

inline at::TensorOptions topts(int dtype, int dev_type, int dev_index) {
  return at::TensorOptions()
      .dtype(static_cast<at::ScalarType>(dtype))
      .device(at::Device(static_cast<at::DeviceType>(dev_type), static_cast<c10::DeviceIndex>(dev_index)));
}

}  // namespace

// R wraps an expression yielding an at::Tensor into a jt_result.
#define R(expr)                        \
  try {                                \
    return jt_result{wrap(expr), nullptr}; \
  }                                    \
  CATCH_RETURN(RET_RES)

// E runs statements and reports their error.
#define E(stmts)      \
  try {               \
    stmts;            \
    return nullptr;   \
  }                   \
  CATCH_RETURN(RET_ERR)

extern "C" {

void jt_error_free(jt_error *e) {
  if (e == nullptr) return;
  std::free(e->msg);
  std::free(e);
}

// ---- library, threads, devices, RNG ----

const char *jt_header_version(void) { return TORCH_VERSION; }

jt_error *jt_runtime_version(char *buf, int64_t cap) {
  E({
    std::string cfg = at::show_config();
    const std::string key = "TORCH_VERSION=";
    auto pos = cfg.find(key);
    std::string v = "unknown";
    if (pos != std::string::npos) {
      auto end = cfg.find_first_of(", \n", pos + key.size());
      v = cfg.substr(pos + key.size(), end - pos - key.size());
    }
    std::snprintf(buf, static_cast<size_t>(cap), "%s", v.c_str());
  })
}

void jt_set_num_threads(int n) {
  at::set_num_threads(n);
  jmedseg_shim::threads_n.store(n);
  jmedseg_shim::threads_epoch.fetch_add(1);
}
int jt_get_num_threads(void) {
  jmedseg_shim::threads_check();
  return at::get_num_threads();
}
int jt_cuda_is_available(void) {
  try {
    return torch::cuda::is_available() ? 1 : 0;
  } catch (...) {
    return 0;
  }
}
int jt_cuda_device_count(void) {
  try {
    return static_cast<int>(torch::cuda::device_count());
  } catch (...) {
    return 0;
  }
}
void jt_manual_seed(uint64_t seed) { at::manual_seed(seed); }

jt_result jt_rng_get_state(void) {
  R(([] {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    return gen.get_state();
  })())
}

jt_error *jt_rng_set_state(jt_tensor state) {
  E({
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(T(state));
  })
}

int jt_set_grad_enabled(int enabled) {
  bool prev = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(enabled != 0);
  return prev ? 1 : 0;
}
int jt_is_grad_enabled(void) { return c10::GradMode::is_enabled() ? 1 : 0; }
void *jt_inference_mode_enter(void) { return new c10::InferenceMode(true); }
void jt_inference_mode_exit(void *guard) { delete static_cast<c10::InferenceMode *>(guard); }

void jt_live(int64_t *count, int64_t *bytes) {
  *count = g_live.load(std::memory_order_relaxed);
  *bytes = g_bytes.load(std::memory_order_relaxed);
}

// ---- lifetime and metadata ----

void jt_free(jt_tensor t) {
  if (t == nullptr) return;
  auto *h = static_cast<Handle *>(t);
  g_live.fetch_sub(1, std::memory_order_relaxed);
  g_bytes.fetch_sub(h->bytes, std::memory_order_relaxed);
  delete h;
}

int64_t jt_dim(jt_tensor t) { return T(t).dim(); }
void jt_sizes(jt_tensor t, int64_t *out) {
  auto s = T(t).sizes();
  std::copy(s.begin(), s.end(), out);
}
void jt_strides(jt_tensor t, int64_t *out) {
  auto s = T(t).strides();
  std::copy(s.begin(), s.end(), out);
}
int jt_dtype(jt_tensor t) { return static_cast<int>(T(t).scalar_type()); }
void jt_device(jt_tensor t, int *type, int *index) {
  auto d = T(t).device();
  *type = static_cast<int>(d.type());
  *index = d.has_index() ? d.index() : (d.is_cuda() ? 0 : -1);
}
int64_t jt_numel(jt_tensor t) { return T(t).numel(); }
int jt_is_contiguous(jt_tensor t) { return T(t).is_contiguous() ? 1 : 0; }
int jt_defined(jt_tensor t) { return T(t).defined() ? 1 : 0; }

// ---- creation and copies ----

jt_result jt_empty(const int64_t *shape, int64_t nd, int dtype, int dt, int di) {
  R(at::empty(ints(shape, nd), topts(dtype, dt, di)))
}
jt_result jt_zeros(const int64_t *shape, int64_t nd, int dtype, int dt, int di) {
  R(at::zeros(ints(shape, nd), topts(dtype, dt, di)))
}
jt_result jt_ones(const int64_t *shape, int64_t nd, int dtype, int dt, int di) {
  R(at::ones(ints(shape, nd), topts(dtype, dt, di)))
}
jt_result jt_full(const int64_t *shape, int64_t nd, double value, int dtype, int dt, int di) {
  R(at::full(ints(shape, nd), value, topts(dtype, dt, di)))
}
jt_result jt_arange(double start, double end, double step, int dtype, int dt, int di) {
  R(at::arange(start, end, step, topts(dtype, dt, di)))
}
jt_result jt_rand(const int64_t *shape, int64_t nd, int dtype, int dt, int di) {
  R(at::rand(ints(shape, nd), topts(dtype, dt, di)))
}
jt_result jt_randn(const int64_t *shape, int64_t nd, int dtype, int dt, int di) {
  R(at::randn(ints(shape, nd), topts(dtype, dt, di)))
}
jt_result jt_randint(int64_t low, int64_t high, const int64_t *shape, int64_t nd, int dtype, int dt, int di) {
  R(at::randint(low, high, ints(shape, nd), topts(dtype, dt, di)))
}
jt_result jt_randperm(int64_t n, int dt, int di) { R(at::randperm(n, topts(static_cast<int>(at::kLong), dt, di))) }
jt_result jt_eye(int64_t n, int64_t m, int dtype, int dt, int di) { R(at::eye(n, m, topts(dtype, dt, di))) }

jt_result jt_from_data(const void *data, int64_t nbytes, const int64_t *shape, int64_t nd, int dtype) {
  R(([&] {
    auto t = at::empty(ints(shape, nd), at::TensorOptions().dtype(static_cast<at::ScalarType>(dtype)));
    TORCH_CHECK(nbytes_of(t) == nbytes, "from_data: ", nbytes, " bytes given for shape ", t.sizes(), " of ",
                t.scalar_type(), " (", nbytes_of(t), " bytes needed)");
    if (nbytes > 0) std::memcpy(t.data_ptr(), data, static_cast<size_t>(nbytes));
    return t;
  })())
}

jt_error *jt_copy_to(jt_tensor t, void *dst, int64_t nbytes, int dtype) {
  E({
    auto c = T(t).detach().to(at::kCPU, static_cast<at::ScalarType>(dtype)).contiguous();
    TORCH_CHECK(nbytes_of(c) == nbytes, "copy_to: destination holds ", nbytes, " bytes, tensor ", c.sizes(),
                " needs ", nbytes_of(c));
    if (nbytes > 0) std::memcpy(dst, c.data_ptr(), static_cast<size_t>(nbytes));
  })
}

jt_error *jt_item(jt_tensor t, double *out) { E(*out = T(t).item<double>()) }

jt_result jt_to(jt_tensor t, int dt, int di, int dtype, int non_blocking, int copy) {
  R(T(t).to(at::Device(static_cast<at::DeviceType>(dt), static_cast<c10::DeviceIndex>(di)),
            static_cast<at::ScalarType>(dtype), non_blocking != 0, copy != 0))
}
jt_result jt_pin_memory(jt_tensor t) { R(T(t).pin_memory()) }
jt_result jt_clone(jt_tensor t) { R(T(t).clone()) }
jt_result jt_contiguous(jt_tensor t) { R(T(t).contiguous()) }
jt_result jt_shallow(jt_tensor t) { R(T(t)) }

// ---- autograd ----

jt_error *jt_set_requires_grad(jt_tensor t, int req) { E(T(t).set_requires_grad(req != 0)) }
int jt_requires_grad(jt_tensor t) { return T(t).requires_grad() ? 1 : 0; }
int jt_is_leaf(jt_tensor t) { return T(t).is_leaf() ? 1 : 0; }
jt_error *jt_backward(jt_tensor t, jt_tensor grad, int retain_graph, int create_graph) {
  E({
    at::Tensor g = grad ? T(grad) : at::Tensor();
    T(t).backward(g, c10::optional<bool>(retain_graph != 0), create_graph != 0);
  })
}
jt_result jt_grad(jt_tensor t) {
  try {
    const at::Tensor &g = T(t).grad();
    if (!g.defined()) return jt_result{nullptr, nullptr};
    return jt_result{wrap(g), nullptr};
  }
  CATCH_RETURN(RET_RES)
}
jt_error *jt_set_grad(jt_tensor t, jt_tensor grad) {
  E(T(t).mutable_grad() = grad ? T(grad) : at::Tensor())
}
jt_error *jt_zero_grad(jt_tensor t, int set_to_none) {
  E({
    at::Tensor &g = T(t).mutable_grad();
    if (g.defined()) {
      if (set_to_none) {
        g = at::Tensor();
      } else {
        if (g.grad_fn()) {
          g = g.detach();
        } else {
          g.requires_grad_(false);
        }
        g.zero_();
      }
    }
  })
}
jt_error *jt_retain_grad(jt_tensor t) { E(T(t).retain_grad()) }
jt_result jt_detach(jt_tensor t) { R(T(t).detach()) }

// ---- shape ----

jt_result jt_view(jt_tensor t, const int64_t *s, int64_t n) { R(T(t).view(ints(s, n))) }
jt_result jt_reshape(jt_tensor t, const int64_t *s, int64_t n) { R(T(t).reshape(ints(s, n))) }
jt_result jt_permute(jt_tensor t, const int64_t *s, int64_t n) { R(T(t).permute(ints(s, n))) }
jt_result jt_expand(jt_tensor t, const int64_t *s, int64_t n) { R(T(t).expand(ints(s, n))) }
jt_result jt_transpose(jt_tensor t, int64_t d0, int64_t d1) { R(T(t).transpose(d0, d1)) }
jt_result jt_flatten(jt_tensor t, int64_t start, int64_t end) { R(T(t).flatten(start, end)) }
jt_result jt_squeeze(jt_tensor t, int64_t dim, int all) { R(all ? T(t).squeeze() : T(t).squeeze(dim)) }
jt_result jt_unsqueeze(jt_tensor t, int64_t dim) { R(T(t).unsqueeze(dim)) }
jt_result jt_narrow(jt_tensor t, int64_t dim, int64_t start, int64_t len) { R(T(t).narrow(dim, start, len)) }
jt_result jt_select(jt_tensor t, int64_t dim, int64_t index) { R(T(t).select(dim, index)) }
jt_result jt_index_select(jt_tensor t, int64_t dim, jt_tensor index) { R(T(t).index_select(dim, T(index))) }
jt_result jt_gather(jt_tensor t, int64_t dim, jt_tensor index) { R(T(t).gather(dim, T(index))) }
jt_result jt_roll(jt_tensor t, const int64_t *shifts, const int64_t *dims, int64_t n) {
  R(T(t).roll(ints(shifts, n), ints(dims, n)))
}
jt_result jt_pad(jt_tensor t, const int64_t *pad, int64_t n, int mode, double value) {
  R(([&] {
    switch (mode) {
      case 0:
        return at::constant_pad_nd(T(t), ints(pad, n), value);
      case 1:
        return at::pad(T(t), ints(pad, n), "reflect");
      case 2:
        return at::pad(T(t), ints(pad, n), "replicate");
      case 3:
        return at::pad(T(t), ints(pad, n), "circular");
      default:
        TORCH_CHECK(false, "pad: unknown mode ", mode);
    }
  })())
}

static std::vector<at::Tensor> tensor_list(const jt_tensor *ts, int64_t n) {
  std::vector<at::Tensor> v;
  v.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) v.push_back(T(ts[i]));
  return v;
}

jt_result jt_cat(const jt_tensor *ts, int64_t n, int64_t dim) { R(at::cat(tensor_list(ts, n), dim)) }
jt_result jt_stack(const jt_tensor *ts, int64_t n, int64_t dim) { R(at::stack(tensor_list(ts, n), dim)) }

jt_error *jt_split(jt_tensor t, int64_t size, int64_t chunks, int64_t dim, jt_tensor *out, int64_t cap,
                   int64_t *n) {
  E({
    std::vector<at::Tensor> parts = chunks > 0 ? T(t).chunk(chunks, dim) : T(t).split(size, dim);
    TORCH_CHECK(static_cast<int64_t>(parts.size()) <= cap, "split: ", parts.size(), " parts exceed capacity ",
                cap);
    *n = static_cast<int64_t>(parts.size());
    for (size_t i = 0; i < parts.size(); i++) out[i] = wrap(std::move(parts[i]));
  })
}

jt_result jt_flip(jt_tensor t, const int64_t *dims, int64_t n) { R(T(t).flip(ints(dims, n))) }
jt_result jt_repeat(jt_tensor t, const int64_t *s, int64_t n) { R(T(t).repeat(ints(s, n))) }

// ---- arithmetic and math ----

static at::Tensor binary(int op, const at::Tensor &a, const at::Tensor &b) {
  switch (op) {
    case JT_ADD: return at::add(a, b);
    case JT_SUB: return at::sub(a, b);
    case JT_MUL: return at::mul(a, b);
    case JT_DIV: return at::div(a, b);
    case JT_POW: return at::pow(a, b);
    case JT_EQ: return at::eq(a, b);
    case JT_NE: return at::ne(a, b);
    case JT_LT: return at::lt(a, b);
    case JT_LE: return at::le(a, b);
    case JT_GT: return at::gt(a, b);
    case JT_GE: return at::ge(a, b);
    case JT_MAXIMUM: return at::maximum(a, b);
    case JT_MINIMUM: return at::minimum(a, b);
    case JT_LOGICAL_AND: return at::logical_and(a, b);
    case JT_LOGICAL_OR: return at::logical_or(a, b);
    case JT_ATAN2: return at::atan2(a, b);
    case JT_REMAINDER: return at::remainder(a, b);
    case JT_RSUB: return at::sub(b, a);
    case JT_FLOOR_DIVIDE: return at::div(a, b, "floor");
  }
  TORCH_CHECK(false, "binary: unknown op ", op);
}

static at::Tensor binary_scalar(int op, const at::Tensor &a, const at::Scalar &s) {
  switch (op) {
    case JT_ADD: return at::add(a, s);
    case JT_SUB: return at::sub(a, s);
    case JT_MUL: return at::mul(a, s);
    case JT_DIV: return at::div(a, s);
    case JT_POW: return at::pow(a, s);
    case JT_EQ: return at::eq(a, s);
    case JT_NE: return at::ne(a, s);
    case JT_LT: return at::lt(a, s);
    case JT_LE: return at::le(a, s);
    case JT_GT: return at::gt(a, s);
    case JT_GE: return at::ge(a, s);
    case JT_MAXIMUM: return at::clamp_min(a, s);
    case JT_MINIMUM: return at::clamp_max(a, s);
    case JT_REMAINDER: return at::remainder(a, s);
    case JT_RSUB: return at::rsub(a, s);
    case JT_FLOOR_DIVIDE: return at::div(a, s, "floor");
  }
  TORCH_CHECK(false, "binary_scalar: unsupported op ", op);
}

jt_result jt_binary(int op, jt_tensor a, jt_tensor b) { R(binary(op, T(a), T(b))) }
jt_result jt_binary_scalar(int op, jt_tensor a, double s) { R(binary_scalar(op, T(a), at::Scalar(s))) }

jt_error *jt_binary_(int op, jt_tensor a, jt_tensor b) {
  E({
    at::Tensor &x = T(a);
    const at::Tensor &y = T(b);
    switch (op) {
      case JT_ADD: x.add_(y); break;
      case JT_SUB: x.sub_(y); break;
      case JT_MUL: x.mul_(y); break;
      case JT_DIV: x.div_(y); break;
      case JT_POW: x.pow_(y); break;
      case JT_MAXIMUM: at::maximum_out(x, x, y); break;
      case JT_MINIMUM: at::minimum_out(x, x, y); break;
      default: TORCH_CHECK(false, "in-place binary: unsupported op ", op);
    }
  })
}

jt_error *jt_binary_scalar_(int op, jt_tensor a, double s) {
  E({
    at::Tensor &x = T(a);
    switch (op) {
      case JT_ADD: x.add_(s); break;
      case JT_SUB: x.sub_(s); break;
      case JT_MUL: x.mul_(s); break;
      case JT_DIV: x.div_(s); break;
      case JT_POW: x.pow_(s); break;
      case JT_MAXIMUM: x.clamp_min_(s); break;
      case JT_MINIMUM: x.clamp_max_(s); break;
      default: TORCH_CHECK(false, "in-place binary scalar: unsupported op ", op);
    }
  })
}

jt_result jt_add_scaled(jt_tensor a, jt_tensor b, double alpha) { R(at::add(T(a), T(b), alpha)) }
jt_error *jt_add_scaled_(jt_tensor a, jt_tensor b, double alpha) { E(T(a).add_(T(b), alpha)) }
jt_error *jt_addcmul_(jt_tensor a, jt_tensor b, jt_tensor c, double v) { E(T(a).addcmul_(T(b), T(c), v)) }
jt_error *jt_addcdiv_(jt_tensor a, jt_tensor b, jt_tensor c, double v) { E(T(a).addcdiv_(T(b), T(c), v)) }
jt_error *jt_lerp_(jt_tensor a, jt_tensor end, double w) { E(T(a).lerp_(T(end), w)) }
jt_error *jt_copy_(jt_tensor dst, jt_tensor src) { E(T(dst).copy_(T(src))) }
jt_error *jt_fill_(jt_tensor t, double v) { E(T(t).fill_(v)) }
jt_error *jt_zero_(jt_tensor t) { E(T(t).zero_()) }

static c10::optional<at::Scalar> opt_scalar(double v, int has) {
  if (!has) return c10::nullopt;
  return at::Scalar(v);
}

jt_error *jt_clamp_(jt_tensor t, double lo, double hi, int has_lo, int has_hi) {
  E(T(t).clamp_(opt_scalar(lo, has_lo), opt_scalar(hi, has_hi)))
}

static at::Tensor unary(int op, const at::Tensor &a) {
  switch (op) {
    case JT_NEG: return at::neg(a);
    case JT_ABS: return at::abs(a);
    case JT_EXP: return at::exp(a);
    case JT_LOG: return at::log(a);
    case JT_LOG1P: return at::log1p(a);
    case JT_SQRT: return at::sqrt(a);
    case JT_RSQRT: return at::rsqrt(a);
    case JT_SIN: return at::sin(a);
    case JT_COS: return at::cos(a);
    case JT_TANH: return at::tanh(a);
    case JT_SIGMOID: return at::sigmoid(a);
    case JT_RELU: return at::relu(a);
    case JT_FLOOR: return at::floor(a);
    case JT_CEIL: return at::ceil(a);
    case JT_ROUND: return at::round(a);
    case JT_SIGN: return at::sign(a);
    case JT_RECIPROCAL: return at::reciprocal(a);
    case JT_SQUARE: return at::square(a);
    case JT_LOGICAL_NOT: return at::logical_not(a);
    case JT_ISNAN: return at::isnan(a);
    case JT_ISFINITE: return at::isfinite(a);
    case JT_SILU: return at::silu(a);
    case JT_ERF: return at::erf(a);
    case JT_LOG2: return at::log2(a);
    case JT_EXPM1: return at::expm1(a);
  }
  TORCH_CHECK(false, "unary: unknown op ", op);
}

jt_result jt_unary(int op, jt_tensor a) { R(unary(op, T(a))) }

jt_error *jt_unary_(int op, jt_tensor a) {
  E({
    at::Tensor &x = T(a);
    switch (op) {
      case JT_NEG: x.neg_(); break;
      case JT_ABS: x.abs_(); break;
      case JT_EXP: x.exp_(); break;
      case JT_LOG: x.log_(); break;
      case JT_SQRT: x.sqrt_(); break;
      case JT_RSQRT: x.rsqrt_(); break;
      case JT_TANH: x.tanh_(); break;
      case JT_SIGMOID: x.sigmoid_(); break;
      case JT_RELU: x.relu_(); break;
      case JT_FLOOR: x.floor_(); break;
      case JT_CEIL: x.ceil_(); break;
      case JT_ROUND: x.round_(); break;
      case JT_RECIPROCAL: x.reciprocal_(); break;
      case JT_SQUARE: x.square_(); break;
      case JT_SILU: at::silu_(x); break;
      default: TORCH_CHECK(false, "in-place unary: unsupported op ", op);
    }
  })
}

jt_result jt_clamp(jt_tensor t, double lo, double hi, int has_lo, int has_hi) {
  R(at::clamp(T(t), opt_scalar(lo, has_lo), opt_scalar(hi, has_hi)))
}
jt_result jt_where(jt_tensor c, jt_tensor a, jt_tensor b) { R(at::where(T(c), T(a), T(b))) }
jt_result jt_masked_fill(jt_tensor t, jt_tensor mask, double v) { R(T(t).masked_fill(T(mask), v)) }
jt_result jt_matmul(jt_tensor a, jt_tensor b) { R(at::matmul(T(a), T(b))) }
jt_result jt_mm(jt_tensor a, jt_tensor b) { R(at::mm(T(a), T(b))) }
jt_result jt_bmm(jt_tensor a, jt_tensor b) { R(at::bmm(T(a), T(b))) }
jt_result jt_linear(jt_tensor x, jt_tensor w, jt_tensor b) { R(at::linear(T(x), T(w), opt(b))) }

// ---- reductions ----

jt_result jt_reduce(int op, jt_tensor t, const int64_t *dims, int64_t nd, int keepdim) {
  R(([&]() -> at::Tensor {
    const at::Tensor &x = T(t);
    bool all = nd < 0;
    std::vector<int64_t> every;
    if (all) {
      for (int64_t i = 0; i < x.dim(); i++) every.push_back(i);
    }
    at::IntArrayRef d = all ? at::IntArrayRef(every) : ints(dims, nd);
    bool kd = keepdim != 0;
    switch (op) {
      case JT_SUM: return all && !kd ? at::sum(x) : at::sum(x, d, kd);
      case JT_MEAN: return all && !kd ? at::mean(x) : at::mean(x, d, kd);
      case JT_AMAX: return at::amax(x, d, kd);
      case JT_AMIN: return at::amin(x, d, kd);
      case JT_LOGSUMEXP: return at::logsumexp(x, d, kd);
      case JT_PROD:
        if (all && !kd) return at::prod(x);
        TORCH_CHECK(d.size() == 1, "prod: reduces one dimension at a time");
        return at::prod(x, d[0], kd);
      case JT_ANY:
        if (all && !kd) return at::any(x);
        TORCH_CHECK(d.size() == 1, "any: reduces one dimension at a time");
        return at::any(x, d[0], kd);
      case JT_ALL:
        if (all && !kd) return at::all(x);
        TORCH_CHECK(d.size() == 1, "all: reduces one dimension at a time");
        return at::all(x, d[0], kd);
    }
    TORCH_CHECK(false, "reduce: unknown op ", op);
  })())
}

jt_error *jt_max_dim(jt_tensor t, int64_t dim, int keepdim, int is_min, jt_result *values, jt_result *indices) {
  E({
    auto r = is_min ? at::min(T(t), dim, keepdim != 0) : at::max(T(t), dim, keepdim != 0);
    values->t = wrap(std::get<0>(r));
    values->err = nullptr;
    indices->t = wrap(std::get<1>(r));
    indices->err = nullptr;
  })
}

jt_result jt_argmax(jt_tensor t, int64_t dim, int keepdim, int has_dim, int is_min) {
  c10::optional<int64_t> d = has_dim ? c10::optional<int64_t>(dim) : c10::nullopt;
  R(is_min ? at::argmin(T(t), d, keepdim != 0) : at::argmax(T(t), d, keepdim != 0))
}

jt_result jt_norm(jt_tensor t, double p, const int64_t *dims, int64_t nd, int keepdim) {
  R(nd < 0 ? at::linalg_vector_norm(T(t), p, c10::nullopt, keepdim != 0)
           : at::linalg_vector_norm(T(t), p, ints(dims, nd), keepdim != 0))
}

jt_result jt_var(jt_tensor t, const int64_t *dims, int64_t nd, int unbiased, int keepdim, int is_std) {
  R(([&] {
    at::OptionalIntArrayRef d = nd < 0 ? at::OptionalIntArrayRef(c10::nullopt) : at::OptionalIntArrayRef(ints(dims, nd));
    return is_std ? at::std(T(t), d, unbiased != 0, keepdim != 0) : at::var(T(t), d, unbiased != 0, keepdim != 0);
  })())
}

jt_result jt_cumsum(jt_tensor t, int64_t dim) { R(at::cumsum(T(t), dim)) }
jt_result jt_bincount(jt_tensor t, jt_tensor w, int64_t minlength) { R(at::bincount(T(t), opt(w), minlength)) }

// ---- neural network ops ----

jt_result jt_softmax(jt_tensor t, int64_t dim, int log) {
  R(log ? at::log_softmax(T(t), dim) : at::softmax(T(t), dim))
}

jt_result jt_conv(jt_tensor x, jt_tensor w, jt_tensor b, const int64_t *stride, const int64_t *padding,
                  const int64_t *dilation, int64_t nsp, int64_t groups) {
  R(nsp == 1 ? at::conv1d(T(x), T(w), opt(b), ints(stride, 1), ints(padding, 1), ints(dilation, 1), groups)
             : at::conv2d(T(x), T(w), opt(b), ints(stride, 2), ints(padding, 2), ints(dilation, 2), groups))
}

jt_result jt_conv_transpose2d(jt_tensor x, jt_tensor w, jt_tensor b, const int64_t *stride,
                              const int64_t *padding, const int64_t *output_padding, const int64_t *dilation,
                              int64_t groups) {
  R(at::conv_transpose2d(T(x), T(w), opt(b), ints(stride, 2), ints(padding, 2), ints(output_padding, 2), groups,
                         ints(dilation, 2)))
}

jt_result jt_batch_norm(jt_tensor x, jt_tensor w, jt_tensor b, jt_tensor rm, jt_tensor rv, int training,
                        double momentum, double eps) {
  R(at::batch_norm(T(x), opt(w), opt(b), opt(rm), opt(rv), training != 0, momentum, eps,
                   at::globalContext().userEnabledCuDNN()))
}

jt_result jt_instance_norm(jt_tensor x, jt_tensor w, jt_tensor b, jt_tensor rm, jt_tensor rv,
                           int use_input_stats, double momentum, double eps) {
  R(at::instance_norm(T(x), opt(w), opt(b), opt(rm), opt(rv), use_input_stats != 0, momentum, eps,
                      at::globalContext().userEnabledCuDNN()))
}

jt_result jt_group_norm(jt_tensor x, int64_t groups, jt_tensor w, jt_tensor b, double eps) {
  R(at::group_norm(T(x), groups, opt(w), opt(b), eps, at::globalContext().userEnabledCuDNN()))
}

jt_result jt_layer_norm(jt_tensor x, const int64_t *shape, int64_t n, jt_tensor w, jt_tensor b, double eps) {
  R(at::layer_norm(T(x), ints(shape, n), opt(w), opt(b), eps, at::globalContext().userEnabledCuDNN()))
}

jt_result jt_leaky_relu(jt_tensor x, double slope) { R(at::leaky_relu(T(x), slope)) }
jt_result jt_hardtanh(jt_tensor x, double lo, double hi) { R(at::hardtanh(T(x), lo, hi)) }
jt_result jt_gelu(jt_tensor x, int tanh_approx) { R(at::gelu(T(x), tanh_approx ? "tanh" : "none")) }
jt_result jt_elu(jt_tensor x, double alpha) { R(at::elu(T(x), alpha)) }
jt_result jt_dropout(jt_tensor x, double p, int train, int feature) {
  R(feature ? at::feature_dropout(T(x), p, train != 0) : at::dropout(T(x), p, train != 0))
}

jt_error *jt_max_pool2d(jt_tensor x, const int64_t *k, const int64_t *s, const int64_t *p, const int64_t *d,
                        int ceil_mode, int with_indices, jt_result *out, jt_result *indices) {
  E({
    if (with_indices) {
      auto r = at::max_pool2d_with_indices(T(x), ints(k, 2), ints(s, 2), ints(p, 2), ints(d, 2), ceil_mode != 0);
      out->t = wrap(std::get<0>(r));
      indices->t = wrap(std::get<1>(r));
    } else {
      out->t = wrap(at::max_pool2d(T(x), ints(k, 2), ints(s, 2), ints(p, 2), ints(d, 2), ceil_mode != 0));
    }
  })
}

jt_result jt_max_unpool2d(jt_tensor x, jt_tensor indices, const int64_t *size) {
  R(at::max_unpool2d(T(x), T(indices), ints(size, 2)))
}

jt_result jt_avg_pool2d(jt_tensor x, const int64_t *k, const int64_t *s, const int64_t *p, int ceil_mode,
                        int count_include_pad) {
  R(at::avg_pool2d(T(x), ints(k, 2), ints(s, 2), ints(p, 2), ceil_mode != 0, count_include_pad != 0))
}

jt_result jt_adaptive_avg_pool2d(jt_tensor x, const int64_t *size) { R(at::adaptive_avg_pool2d(T(x), ints(size, 2))) }

jt_error *jt_adaptive_max_pool2d(jt_tensor x, const int64_t *size, jt_result *out, jt_result *indices) {
  E({
    auto r = at::adaptive_max_pool2d(T(x), ints(size, 2));
    out->t = wrap(std::get<0>(r));
    indices->t = wrap(std::get<1>(r));
  })
}

jt_result jt_upsample2d(jt_tensor x, const int64_t *size, int mode, int align_corners, double sh, double sw) {
  c10::optional<double> h = sh > 0 ? c10::optional<double>(sh) : c10::nullopt;
  c10::optional<double> w = sw > 0 ? c10::optional<double>(sw) : c10::nullopt;
  R(mode == 0 ? at::upsample_nearest2d(T(x), ints(size, 2), h, w)
              : at::upsample_bilinear2d(T(x), ints(size, 2), align_corners != 0, h, w))
}

jt_result jt_affine_grid(jt_tensor theta, const int64_t *size, int64_t n, int align_corners) {
  R(at::affine_grid_generator(T(theta), ints(size, n), align_corners != 0))
}

jt_result jt_grid_sample(jt_tensor x, jt_tensor grid, int mode, int padding, int align_corners) {
  R(at::grid_sampler(T(x), T(grid), mode, padding, align_corners != 0))
}

jt_result jt_cross_entropy(jt_tensor x, jt_tensor target, jt_tensor weight, int reduction, int64_t ignore_index,
                           double label_smoothing) {
  R(at::cross_entropy_loss(T(x), T(target), opt(weight), reduction, ignore_index, label_smoothing))
}

jt_result jt_nll_loss(jt_tensor x, jt_tensor target, jt_tensor weight, int reduction, int64_t ignore_index) {
  R(at::nll_loss_nd(T(x), T(target), opt(weight), reduction, ignore_index))
}

jt_result jt_mse_loss(jt_tensor x, jt_tensor target, int reduction) { R(at::mse_loss(T(x), T(target), reduction)) }

jt_result jt_bce_with_logits(jt_tensor x, jt_tensor target, jt_tensor weight, jt_tensor pos_weight, int reduction) {
  R(at::binary_cross_entropy_with_logits(T(x), T(target), opt(weight), opt(pos_weight), reduction))
}

jt_result jt_one_hot(jt_tensor t, int64_t classes) { R(at::one_hot(T(t), classes)) }
jt_result jt_embedding(jt_tensor weight, jt_tensor indices) { R(at::embedding(T(weight), T(indices))) }

// ---- added for torch/nn and torch/optim ----

jt_error *jt_uniform_(jt_tensor t, double from, double to) { E(T(t).uniform_(from, to)) }
jt_error *jt_normal_(jt_tensor t, double mean, double std) { E(T(t).normal_(mean, std)) }

jt_error *jt_set_data(jt_tensor t, jt_tensor src) {
  E({
    at::Tensor &x = T(t);
    auto *h = static_cast<Handle *>(t);
    x.set_data(T(src));
    int64_t b = nbytes_of(x);
    g_bytes.fetch_add(b - h->bytes, std::memory_order_relaxed);
    h->bytes = b;
  })
}

jt_error *jt_add_int_(jt_tensor t, int64_t v) { E(T(t).add_(at::Scalar(v))) }

}  // extern "C"
