// wino.cc: 3×3 convolutions on oneDNN's Winograd kernels (see wino.h).
//
// PyTorch's at::mkldnn_convolution asks oneDNN for its direct algorithm
// only (brgconv on AVX-512); oneDNN 2.x also has F(2×2,3×3) and F(4×4,3×3)
// Winograd kernels for AVX-512 float32, measured 1.4–2.8× faster on the
// 3×3 convolutions of unet and deeplab's decoder (32 channels and more) on
// this project's CPU, with the same float32 error against a float64
// reference as the direct kernel (max abs 1e-5 at 512 channels).
//
// Inference: the weights are reordered into the kernel's transformed layout
// once and cached, keyed by the weight tensor (held weakly, so a freed
// model's entries expire) with its version counter and data pointer (an
// in-place update or a new storage invalidates them), and the input shape.
// Training: an autograd function whose backward is oneDNN's Winograd
// backward-data and backward-weights.
#include "wino.h"

#include "scratch.h"

#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <dnnl.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <vector>
#include <utility>

#if DNNL_VERSION_MAJOR != 2
#error "csrc/wino.cc needs oneDNN 2.x (build with -tags nowinograd elsewhere)"
#endif

namespace jmedseg_wino {
namespace {

using dnnl::algorithm;
using jmedseg_alloc::Scratch;
using dnnl::memory;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

std::atomic<int> mode{kTraining};  // measured faster in both; see worth

dnnl::engine &eng() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// Shape is what a primitive depends on.
struct Shape {
  int64_t n, c, h, w, o, ph, pw;
  bool bias, nhwc;
  int kind;  // 0 inference, 1 training
  auto tie() const { return std::tie(n, c, h, w, o, ph, pw, bias, nhwc, kind); }
  bool operator<(const Shape &s) const { return tie() < s.tie(); }
  memory::dims src() const { return {n, c, h, w}; }
  memory::dims wei() const { return {o, c, 3, 3}; }
  memory::dims dst() const { return {n, o, h + 2 * ph - 2, w + 2 * pw - 2}; }
  tag act() const { return nhwc ? tag::nhwc : tag::nchw; }
};

// Prims are a shape's primitives (backward ones for training only).
struct Prims {
  dnnl::convolution_forward::primitive_desc fwd;
  dnnl::convolution_forward fwd_p;
  dnnl::convolution_backward_data::primitive_desc bwd_d;
  dnnl::convolution_backward_data bwd_d_p;
  dnnl::convolution_backward_weights::primitive_desc bwd_w;
  dnnl::convolution_backward_weights bwd_w_p;
};

// Packed is a weight tensor reordered into one forward primitive's weight
// layout. Primitives of several input shapes (batch sizes) may share a
// layout, and then one copy: keyed by the layout, not the shape.
struct Packed {
  c10::weak_intrusive_ptr<c10::TensorImpl> owner{c10::intrusive_ptr<c10::TensorImpl>()};
  uint32_t version;
  const void *data;
  memory::desc layout;
  memory mem;
  int64_t bytes;
};

std::mutex mu;
std::map<Shape, std::shared_ptr<Prims>> prims;  // nullptr: oneDNN refused the shape
std::multimap<const c10::TensorImpl *, std::shared_ptr<Packed>> packs;  // by weight
constexpr size_t kMaxPrims = 512;
constexpr int kMaxLayoutsPerWeight = 4;

dnnl::primitive_attr attr() {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return a;
}

// make_prims builds a shape's primitives, or returns nullptr when oneDNN has
// no Winograd kernel for it (padding above 1, an unsupported CPU).
std::shared_ptr<Prims> make_prims(const Shape &s) {
  auto any = [](const memory::dims &d) { return memory::desc(d, dt::f32, tag::any); };
  memory::desc bias = s.bias ? memory::desc({s.o}, dt::f32, tag::x) : memory::desc();
  memory::dims one{1, 1}, pad{s.ph, s.pw};
  auto p = std::make_shared<Prims>();
  try {
    auto kind = s.kind == 0 ? dnnl::prop_kind::forward_inference : dnnl::prop_kind::forward_training;
    dnnl::convolution_forward::desc fd(kind, algorithm::convolution_winograd, any(s.src()), any(s.wei()), bias,
                                       any(s.dst()), one, pad, pad);
    p->fwd = dnnl::convolution_forward::primitive_desc(fd, attr(), eng());
    p->fwd_p = dnnl::convolution_forward(p->fwd);
    if (s.kind == 1) {
      dnnl::convolution_backward_data::desc bd(algorithm::convolution_winograd, any(s.src()), any(s.wei()),
                                               any(s.dst()), one, pad, pad);
      p->bwd_d = dnnl::convolution_backward_data::primitive_desc(bd, attr(), eng(), p->fwd);
      p->bwd_d_p = dnnl::convolution_backward_data(p->bwd_d);
      dnnl::convolution_backward_weights::desc wd(algorithm::convolution_winograd, any(s.src()), any(s.wei()), bias,
                                                  any(s.dst()), one, pad, pad);
      p->bwd_w = dnnl::convolution_backward_weights::primitive_desc(wd, attr(), eng(), p->fwd);
      p->bwd_w_p = dnnl::convolution_backward_weights(p->bwd_w);
    }
  } catch (const dnnl::error &) {
    return nullptr;
  }
  return p;
}

std::shared_ptr<Prims> get_prims(const Shape &s) {
  {
    std::lock_guard<std::mutex> g(mu);
    auto it = prims.find(s);
    if (it != prims.end()) return it->second;
  }
  auto p = make_prims(s);  // outside the lock: it JIT-compiles kernels
  std::lock_guard<std::mutex> g(mu);
  if (prims.size() >= kMaxPrims) prims.clear();
  return prims.emplace(s, p).first->second;
}

// user wraps a float tensor of an activation's shape in the user layout
// (t must be contiguous in it).
memory user(const at::Tensor &t, const memory::dims &d, tag layout) {
  return memory({d, dt::f32, layout}, eng(), t.data_ptr());
}

// scratch is oneDNN memory of layout d for this call only.
memory scratch(const memory::desc &d, Scratch &sc) { return memory(d, eng(), sc.take(d.get_size())); }

// into returns m in layout want, reordered into scratch when it differs.
memory into(dnnl::stream &st, memory m, const memory::desc &want, Scratch &sc) {
  if (m.get_desc() == want) return m;
  memory b = scratch(want, sc);
  dnnl::reorder(m, b).execute(st, m, b);
  return b;
}

at::Tensor new_act(const at::Tensor &like, const memory::dims &d, bool nhwc) {
  return at::empty({d[0], d[1], d[2], d[3]},
                   like.options().memory_format(nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
}

// forward_into runs the forward primitive into out (s's output shape,
// contiguous in s's layout); w is the weights in the primitive's layout.
void forward_into(const Shape &s, Prims &p, const at::Tensor &x, const memory &w, const at::Tensor &b,
                  const at::Tensor &out, Scratch &sc) {
  dnnl::stream st(eng());
  memory src = into(st, user(x, s.src(), s.act()), p.fwd.src_desc(), sc);
  memory dst_user = user(out, s.dst(), s.act());
  bool direct = p.fwd.dst_desc() == dst_user.get_desc();
  memory dst = direct ? dst_user : scratch(p.fwd.dst_desc(), sc);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src},
                                       {DNNL_ARG_WEIGHTS, w},
                                       {DNNL_ARG_DST, dst},
                                       {DNNL_ARG_SCRATCHPAD, scratch(p.fwd.scratchpad_desc(), sc)}};
  if (s.bias) args.emplace(DNNL_ARG_BIAS, user(b, {s.o}, tag::x));
  p.fwd_p.execute(st, args);
  if (!direct) dnnl::reorder(dst, dst_user).execute(st, dst, dst_user);
  st.wait();
}

uint32_t version_of(const at::Tensor &w) {
  return w.is_inference() ? 0 : w.unsafeGetTensorImpl()->version_counter().current_version();
}

// packed returns w reordered for s's forward, from the cache when the
// cached copy is of this tensor's current values.
memory packed(const Shape &s, Prims &p, const at::Tensor &w) {
  const c10::TensorImpl *impl = w.unsafeGetTensorImpl();
  uint32_t ver = version_of(w);
  // Inference tensors have no version counter: their in-place updates
  // (possible in inference mode only) would go unseen, so they are not cached.
  bool cacheable = !w.is_inference();
  const memory::desc want = p.fwd.weights_desc();
  if (cacheable) {
    std::lock_guard<std::mutex> g(mu);
    auto range = packs.equal_range(impl);
    for (auto it = range.first; it != range.second; ++it) {
      auto &e = *it->second;
      if (!(e.layout == want)) continue;
      auto live = e.owner.lock();
      if (live.get() == impl && e.version == ver && e.data == w.data_ptr()) return e.mem;
      packs.erase(it);
      break;
    }
  }
  dnnl::stream st(eng());
  at::Tensor wc = w.contiguous();
  memory src = user(wc, s.wei(), tag::oihw);
  auto e = std::make_shared<Packed>();
  e->layout = want;
  e->mem = memory(want, eng());  // oneDNN-allocated: lives with the entry
  dnnl::reorder(src, e->mem).execute(st, src, e->mem);
  st.wait();
  if (!cacheable) return e->mem;
  e->owner = c10::weak_intrusive_ptr<c10::TensorImpl>(w.getIntrusivePtr());
  e->version = ver;
  e->data = w.data_ptr();
  e->bytes = static_cast<int64_t>(want.get_size());
  std::lock_guard<std::mutex> g(mu);
  // Drop entries of freed weights (an address may be reused by a new
  // tensor: its entries expired with the old one); keep at most a few
  // layouts per weight.
  for (auto it = packs.begin(); it != packs.end();) it = it->second->owner.expired() ? packs.erase(it) : std::next(it);
  if (packs.count(impl) >= kMaxLayoutsPerWeight) packs.erase(impl);
  packs.emplace(impl, e);
  return e->mem;
}

// extra_cap is the most bytes of oneDNN's own buffers (the scratchpad and
// blocked copies of the input, output and weights) one call takes; a larger
// batch runs in pieces. Those buffers are several times the activation
// (F(4×4,3×3) transforms each 4×4 tile into 6×6): in one call they added
// 2.4 GiB to unet's 8×512² inference peak, and the largest training call
// of unet 16×256² 2.4 GiB to its peak.
std::atomic<int64_t> extra_cap{int64_t(256) << 20};
std::atomic<int64_t> split_calls{0};

// copy_bytes is the size of a blocked copy: 0 when the user layout is
// the one the primitive wants.
size_t copy_bytes(const memory::desc &want, const memory::desc &user) { return want == user ? 0 : want.get_size(); }

size_t extra_bytes(const Shape &s, const Prims &p) {
  memory::desc src(s.src(), dt::f32, s.act()), dst(s.dst(), dt::f32, s.act()), wei(s.wei(), dt::f32, tag::oihw);
  size_t fwd = p.fwd.scratchpad_desc().get_size() + copy_bytes(p.fwd.src_desc(), src) +
               copy_bytes(p.fwd.dst_desc(), dst);
  if (s.kind == 0) return fwd;  // the weights are packed once, outside the call
  fwd += copy_bytes(p.fwd.weights_desc(), wei);
  size_t bd = p.bwd_d.scratchpad_desc().get_size() + copy_bytes(p.bwd_d.diff_dst_desc(), dst) +
              copy_bytes(p.bwd_d.weights_desc(), wei) + copy_bytes(p.bwd_d.diff_src_desc(), src);
  size_t bw = p.bwd_w.scratchpad_desc().get_size() + copy_bytes(p.bwd_w.diff_dst_desc(), dst) +
              copy_bytes(p.bwd_w.src_desc(), src) + copy_bytes(p.bwd_w.diff_weights_desc(), wei);
  return std::max({fwd, bd, bw});
}

// piece is how many images of s's batch one call takes: all of them unless
// their buffers pass extra_cap. Training keeps 1024 output pixels a piece
// (where its kernel stops paying, see worth).
int64_t piece(const Shape &s, const Prims &p) {
  size_t extra = extra_bytes(s, p), cap = static_cast<size_t>(extra_cap.load(std::memory_order_relaxed));
  if (s.n == 1 || extra <= cap) return s.n;
  int64_t pieces = std::min<int64_t>(s.n, static_cast<int64_t>((extra + cap - 1) / cap));
  int64_t step = (s.n + pieces - 1) / pieces;
  if (s.kind == 1) step = std::max<int64_t>(step, (1024 + s.h * s.w - 1) / (s.h * s.w));
  return std::min(step, s.n);
}

// each_piece calls f(sub-shape, its primitives, first image) for each piece
// of s's batch (the batch is the outermost dimension in both layouts: a
// slice is contiguous in the layout); false if a piece has no kernel.
template <typename F>
bool each_piece(const Shape &s, const std::shared_ptr<Prims> &p, F f) {
  int64_t step = piece(s, *p);
  if (step < s.n) split_calls.fetch_add(1, std::memory_order_relaxed);
  for (int64_t i = 0; i < s.n; i += step) {
    Shape sp = s;
    sp.n = std::min(step, s.n - i);
    auto pp = sp.n == s.n ? p : get_prims(sp);
    if (!pp) return false;
    f(sp, *pp, i);
  }
  return true;
}

// infer runs an inference convolution, in pieces when one call's buffers
// would pass extra_cap; false if a piece has no kernel.
bool infer(const Shape &s, const std::shared_ptr<Prims> &p, const at::Tensor &x, const at::Tensor &w,
           const at::Tensor &b, at::Tensor *out) {
  at::Tensor y = new_act(x, s.dst(), s.nhwc);
  bool ok = each_piece(s, p, [&](const Shape &sp, Prims &pp, int64_t i) {
    Scratch sc;  // each piece reuses the one before's
    forward_into(sp, pp, x.narrow(0, i, sp.n), packed(sp, pp, w), b, y.narrow(0, i, sp.n), sc);
  });
  if (ok) *out = y;
  return ok;
}

// training_shape decodes WinoConv's shape argument: n, c, h, w, o, ph, pw,
// nhwc, bias.
Shape training_shape(const std::vector<int64_t> &v) {
  return Shape{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[8] != 0, v[7] != 0, 1};
}

// conv_forward and conv_backward are the training path: forward_training,
// then Winograd backward, in pieces of the batch as inference; WinoConv and
// WinoConvNoBias are the autograd functions over them (an undefined tensor
// cannot be an autograd input).
at::Tensor conv_forward(torch::autograd::AutogradContext *ctx, const at::Tensor &x, const at::Tensor &w,
                        const at::Tensor &b, const std::vector<int64_t> &shape) {
  Shape s = training_shape(shape);
  auto p = get_prims(s);
  TORCH_CHECK(p != nullptr, "winograd convolution: no kernel for this shape");
  at::Tensor wc = w.contiguous();
  at::Tensor out = new_act(x, s.dst(), s.nhwc);
  bool ok = each_piece(s, p, [&](const Shape &sp, Prims &pp, int64_t i) {
    dnnl::stream st(eng());
    Scratch sc;
    memory wm = into(st, user(wc, sp.wei(), tag::oihw), pp.fwd.weights_desc(), sc);
    forward_into(sp, pp, x.narrow(0, i, sp.n), wm, b, out.narrow(0, i, sp.n), sc);
  });
  TORCH_CHECK(ok, "winograd convolution: no kernel for a piece of the batch");
  ctx->save_for_backward({x, wc});
  ctx->saved_data["shape"] = c10::IValue(c10::List<int64_t>(shape));
  return out;
}

// backward_data writes the input gradient of one piece into dx.
void backward_data(const Shape &s, Prims &p, const at::Tensor &go, const at::Tensor &w, const at::Tensor &dx) {
  dnnl::stream st(eng());
  Scratch sc;
  memory ddst = into(st, user(go, s.dst(), s.act()), p.bwd_d.diff_dst_desc(), sc);
  memory wm = into(st, user(w, s.wei(), tag::oihw), p.bwd_d.weights_desc(), sc);
  memory dsrc_user = user(dx, s.src(), s.act());
  bool direct = p.bwd_d.diff_src_desc() == dsrc_user.get_desc();
  memory dsrc = direct ? dsrc_user : scratch(p.bwd_d.diff_src_desc(), sc);
  p.bwd_d_p.execute(st, {{DNNL_ARG_DIFF_DST, ddst},
                         {DNNL_ARG_WEIGHTS, wm},
                         {DNNL_ARG_DIFF_SRC, dsrc},
                         {DNNL_ARG_SCRATCHPAD, scratch(p.bwd_d.scratchpad_desc(), sc)}});
  if (!direct) dnnl::reorder(dsrc, dsrc_user).execute(st, dsrc, dsrc_user);
  st.wait();
}

// backward_weights writes one piece's weight gradient into dw and (for a
// shape with a bias) its bias gradient into db.
void backward_weights(const Shape &s, Prims &p, const at::Tensor &go, const at::Tensor &x, const at::Tensor &dw,
                      const at::Tensor &db) {
  dnnl::stream st(eng());
  Scratch sc;
  memory ddst = into(st, user(go, s.dst(), s.act()), p.bwd_w.diff_dst_desc(), sc);
  memory src = into(st, user(x, s.src(), s.act()), p.bwd_w.src_desc(), sc);
  memory dw_user = user(dw, s.wei(), tag::oihw);
  bool direct = p.bwd_w.diff_weights_desc() == dw_user.get_desc();
  memory dwm = direct ? dw_user : scratch(p.bwd_w.diff_weights_desc(), sc);
  std::unordered_map<int, memory> args{{DNNL_ARG_DIFF_DST, ddst},
                                       {DNNL_ARG_SRC, src},
                                       {DNNL_ARG_DIFF_WEIGHTS, dwm},
                                       {DNNL_ARG_SCRATCHPAD, scratch(p.bwd_w.scratchpad_desc(), sc)}};
  // The primitive was made with a bias: it writes its gradient.
  if (s.bias) args.emplace(DNNL_ARG_DIFF_BIAS, user(db, {s.o}, tag::x));
  p.bwd_w_p.execute(st, args);
  if (!direct) dnnl::reorder(dwm, dw_user).execute(st, dwm, dw_user);
  st.wait();
}

// conv_backward returns the gradients of x, w and (for a shape with a
// bias) b, each undefined where not needed. Pieces' weight and bias
// gradients are summed.
std::vector<at::Tensor> conv_backward(torch::autograd::AutogradContext *ctx, const at::Tensor &grad) {
  auto saved = ctx->get_saved_variables();
  const at::Tensor &x = saved[0], &w = saved[1];
  Shape s = training_shape(ctx->saved_data["shape"].toIntVector());
  bool want_b = s.bias && ctx->needs_input_grad(2);
  auto p = get_prims(s);  // made by the forward (cached, or remade)
  TORCH_CHECK(p != nullptr, "winograd convolution: no backward kernel for this shape");
  at::Tensor go = grad.contiguous(s.nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
  at::Tensor dx, dw, db, dw_i, db_i;
  bool want_w = ctx->needs_input_grad(1) || want_b;
  if (ctx->needs_input_grad(0)) dx = new_act(x, s.src(), s.nhwc);
  if (want_w) {
    dw = at::empty(w.sizes(), w.options());
    if (s.bias) db = at::empty({s.o}, w.options());
  }
  bool ok = each_piece(s, p, [&](const Shape &sp, Prims &pp, int64_t i) {
    at::Tensor gi = go.narrow(0, i, sp.n);
    if (dx.defined()) backward_data(sp, pp, gi, w, dx.narrow(0, i, sp.n));
    if (!want_w) return;
    if (i == 0) {
      backward_weights(sp, pp, gi, x.narrow(0, i, sp.n), dw, db);
      return;
    }
    if (!dw_i.defined()) {
      dw_i = at::empty_like(dw);
      if (s.bias) db_i = at::empty_like(db);
    }
    backward_weights(sp, pp, gi, x.narrow(0, i, sp.n), dw_i, db_i);
    dw.add_(dw_i);
    if (s.bias) db.add_(db_i);
  });
  TORCH_CHECK(ok, "winograd convolution: no backward kernel for a piece of the batch");
  if (!ctx->needs_input_grad(1)) dw = at::Tensor();
  if (!want_b) db = at::Tensor();
  return {dx, dw, db};
}

struct WinoConv : public torch::autograd::Function<WinoConv> {
  static at::Tensor forward(torch::autograd::AutogradContext *ctx, const at::Tensor &x, const at::Tensor &w,
                            const at::Tensor &b, std::vector<int64_t> shape) {
    return conv_forward(ctx, x, w, b, shape);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                 torch::autograd::variable_list grads) {
    auto g = conv_backward(ctx, grads[0]);
    return {g[0], g[1], g[2], at::Tensor()};
  }
};

struct WinoConvNoBias : public torch::autograd::Function<WinoConvNoBias> {
  static at::Tensor forward(torch::autograd::AutogradContext *ctx, const at::Tensor &x, const at::Tensor &w,
                            std::vector<int64_t> shape) {
    return conv_forward(ctx, x, w, at::Tensor(), shape);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                 torch::autograd::variable_list grads) {
    auto g = conv_backward(ctx, grads[0]);
    return {g[0], g[1], at::Tensor()};
  }
};

// worth says whether the Winograd kernel is expected to beat the direct
// one, as measured on this project's CPU (2 threads): it wins from 32
// input and output channels up and loses (2–15×) on thin layers. Training
// has only F(4×4,3×3) (inference also F(2×2,3×3), which oneDNN picks for
// small maps): on under 1024 output pixels per batch (unet's 8×8 and
// 16×16 levels at batch 1) it is 1.5–4× slower than direct there.
bool worth(int64_t n, int64_t c, int64_t o, int64_t h, int64_t w, bool training) {
  if (c < 32 || o < 32 || h < 4 || w < 4) return false;
  return !training || n * h * w >= 1024;
}

}  // namespace

bool try_conv(const at::Tensor &x, const at::Tensor &w, const c10::optional<at::Tensor> &b, const int64_t *padding,
              at::Tensor *out) {
  int m = mode.load(std::memory_order_relaxed);
  if (m == kOff || w.size(2) != 3 || w.size(3) != 3 || w.size(1) != x.size(1)) return false;
  bool has_b = b.has_value() && b->defined();
  bool grad = at::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad() || (has_b && b->requires_grad()));
  if (grad && m != kTraining) return false;
  if (x.is_inference() && grad) return false;
  int64_t n = x.size(0), c = x.size(1), h = x.size(2), wd = x.size(3), o = w.size(0);
  if (!worth(n, c, o, h, wd, grad) || padding[0] > 1 || padding[1] > 1) return false;
  // Channels-last stays channels-last (as at::mkldnn_convolution does).
  bool nhwc = !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor xc = nhwc ? x : x.contiguous();
  at::Tensor bc = has_b ? b->contiguous() : at::Tensor();
  if (grad) {
    if (!get_prims(Shape{n, c, h, wd, o, padding[0], padding[1], has_b, nhwc, 1})) return false;
    // Seen by libtorch's profiler as an operator (bench --profile).
    RECORD_FUNCTION("jmedseg::winograd_conv2d", std::vector<c10::IValue>());
    std::vector<int64_t> shape{n, c, h, wd, o, padding[0], padding[1], nhwc ? 1 : 0, has_b ? 1 : 0};
    *out = has_b ? WinoConv::apply(xc, w, bc, shape) : WinoConvNoBias::apply(xc, w, shape);
    return true;
  }
  Shape s{n, c, h, wd, o, padding[0], padding[1], has_b, nhwc, 0};
  RECORD_FUNCTION("jmedseg::winograd_conv2d", std::vector<c10::IValue>());
  auto p = get_prims(s);
  return p != nullptr && infer(s, p, xc, w, bc, out);
}

}  // namespace jmedseg_wino

extern "C" {
int jp_winograd_set(int m) {
  if (m < jmedseg_wino::kOff || m > jmedseg_wino::kTraining) return jmedseg_wino::mode.load();  // not a mode
  int prev = jmedseg_wino::mode.exchange(m);
  if (prev != m) jp_winograd_clear();
  return prev;
}
int jp_winograd_mode(void) { return jmedseg_wino::mode.load(); }
int jp_winograd_available(void) {
  try {
    return jmedseg_wino::make_prims(jmedseg_wino::Shape{1, 32, 8, 8, 32, 1, 1, true, false, 0}) ? 1 : 0;
  } catch (...) {
    return 0;
  }
}
int64_t jp_winograd_cached(int64_t *bytes) {
  std::lock_guard<std::mutex> g(jmedseg_wino::mu);
  int64_t n = 0, sum = 0;
  for (auto &kv : jmedseg_wino::packs) {
    if (kv.second->owner.expired()) continue;
    n++;
    sum += kv.second->bytes;
  }
  if (bytes != nullptr) *bytes = sum;
  return n;
}
void jp_winograd_clear(void) {
  std::lock_guard<std::mutex> g(jmedseg_wino::mu);
  jmedseg_wino::packs.clear();
}
int64_t jp_winograd_set_buffers(int64_t bytes) {
  if (bytes < 1) return jmedseg_wino::extra_cap.load();
  return jmedseg_wino::extra_cap.exchange(bytes);
}
int64_t jp_winograd_pieces(void) { return jmedseg_wino::split_calls.load(); }
}
