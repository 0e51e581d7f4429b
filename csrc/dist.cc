// dist.cc: distributed training over PyTorch's c10d (TCPStore,
// ProcessGroupGloo, the DDP Reducer) and SyncBatchNorm, behind dist.h.
//
// cgo compiles it into package torch/dist (torch/dist/shim.cc), apart from
// jmedseg.cc, so that only programs that train distributed pay for the c10d
// headers. It reads a jt_tensor as jmedseg.cc lays it out (an at::Tensor
// first; TestHandleLayout checks it) and never makes handles: results go
// into handles the caller made. c10d changed between libtorch 1.13 and 2.x:
// in 2.x ProcessGroupGloo is a Backend that a ProcessGroup holds;
// TORCH_VERSION_MAJOR selects the code.
#include "dist.h"
#include "shim_internal.h"

#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO  // the headers hide ProcessGroupGloo without it
#endif
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

namespace {

using jmedseg_shim::Handle;
using jmedseg_shim::make_err;
using jmedseg_shim::T;

struct DStore {
  c10::intrusive_ptr<c10d::Store> s;
};

struct DGroup {
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  int rank, size;
  std::chrono::milliseconds timeout;
};

struct DReducer {
  std::unique_ptr<c10d::Reducer> r;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;  // outlives r
};

inline DStore *S(jd_store s) { return static_cast<DStore *>(s); }
inline DGroup *G(jd_group g) { return static_cast<DGroup *>(g); }

jt_error *value_err(const std::string &msg) { return make_err(JT_ERR_VALUE, msg.c_str()); }

std::vector<at::Tensor> tensors_of(jt_tensor *ts, int n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (int i = 0; i < n; i++) out.push_back(T(ts[i]));
  return out;
}

// One collective over several tensors: gloo takes a list as the inputs of
// several local devices, so they travel as one flat buffer instead.
template <class F>
void flat_collective(std::vector<at::Tensor> ts, F run) {
  at::NoGradGuard ng;  // the copies back may land in parameters (leaves that require grad)
  if (ts.size() == 1 && ts[0].is_contiguous()) {
    run(ts[0]);
    return;
  }
  for (auto &t : ts) {
    TORCH_CHECK(t.scalar_type() == ts[0].scalar_type() && t.device() == ts[0].device(),
                "one collective needs tensors of one dtype and device, got ", ts[0].toString(), " and ",
                t.toString());
  }
  std::vector<at::Tensor> flat;
  for (auto &t : ts) flat.push_back(t.reshape({-1}));
  at::Tensor buf = at::cat(flat);
  run(buf);
  int64_t off = 0;
  for (auto &t : ts) {
    int64_t n = t.numel();
    t.copy_(buf.narrow(0, off, n).view(t.sizes()));
    off += n;
  }
}

void allreduce_sync(DGroup *g, at::Tensor &t, int op) {
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp(static_cast<c10d::ReduceOp::RedOpType>(op == JD_AVG ? JD_SUM : op));
  o.timeout = g->timeout;
  std::vector<at::Tensor> v{t};
  g->pg->allreduce(v, o)->wait();
  if (op == JD_AVG) t.div_(g->size);
}

// SyncBN: y = (x - mean) * invstd * w + b with mean and invstd of the whole
// group's batch (computed by the caller). backward all-reduces sum(dy) and
// sum(dy * (x - mean)) per channel and forms dx as
// torch.nn.SyncBatchNorm does (batch_norm_backward_elemt); dw and db stay
// local, to be averaged with the other gradients.
struct SyncBNFunction : public torch::autograd::Function<SyncBNFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext *ctx, at::Tensor x, at::Tensor w, at::Tensor b,
                            at::Tensor mean, at::Tensor invstd, int64_t count, int64_t group) {
    std::vector<int64_t> shape(x.dim(), 1);
    shape[1] = x.size(1);
    at::Tensor y = (x - mean.view(shape)) * (invstd * w).view(shape) + b.view(shape);
    ctx->save_for_backward({x, w, mean, invstd});
    ctx->saved_data["count"] = count;
    ctx->saved_data["group"] = group;
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    at::Tensor x = saved[0], w = saved[1], mean = saved[2], invstd = saved[3];
    at::Tensor dy = grads[0].contiguous();
    auto *g = reinterpret_cast<DGroup *>(ctx->saved_data["group"].toInt());
    double count = static_cast<double>(ctx->saved_data["count"].toInt());
    std::vector<int64_t> dims{0};
    for (int64_t d = 2; d < x.dim(); d++) dims.push_back(d);
    std::vector<int64_t> shape(x.dim(), 1);
    shape[1] = x.size(1);
    at::Tensor xmu = x - mean.view(shape);
    at::Tensor sum_dy = dy.sum(at::IntArrayRef(dims));
    at::Tensor sum_dy_xmu = (dy * xmu).sum(at::IntArrayRef(dims));
    at::Tensor dw = sum_dy_xmu * invstd;
    at::Tensor db = sum_dy;
    at::Tensor dx;
    if (ctx->needs_input_grad(0)) {  // the same on every rank, so all take part
      int64_t c = x.size(1);
      at::Tensor both = at::cat({sum_dy, sum_dy_xmu}).to(at::kDouble);
      allreduce_sync(g, both, JD_SUM);
      both = both.to(x.scalar_type());
      at::Tensor mean_dy = both.narrow(0, 0, c) / count;
      at::Tensor mean_dy_xmu = both.narrow(0, c, c) / count;
      dx = (dy - mean_dy.view(shape) - xmu * (invstd * invstd * mean_dy_xmu).view(shape)) *
           (invstd * w).view(shape);
    }
    return {dx, dw, db, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

extern "C" {

int jd_has_backend(const char *backend) { return std::string(backend) == "gloo" ? 1 : 0; }

jt_error *jd_store_new(const char *host, int port, int world, int master, int64_t timeout_ms, jd_store *out) {
  try {
    *out = nullptr;
    if (port <= 0 || port > 65535) return value_err("port " + std::to_string(port) + " out of range 1-65535");
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(port);
    o.isServer = master != 0;
    if (world > 0) o.numWorkers = static_cast<std::size_t>(world);
    o.waitWorkers = false;  // the process group's rendezvous waits, with its own message
    o.timeout = std::chrono::milliseconds(timeout_ms);
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    // 2.4+ asks for the libuv server by default, which builds without
    // libuv (Debian's 2.6) refuse; the classic one speaks the same protocol.
    o.useLibUV = false;
#endif
    auto s = c10::make_intrusive<c10d::TCPStore>(std::string(host), o);
    *out = new DStore{s};
    return nullptr;
  }
  CATCH_RETURN(RET_ERR)
}

jt_error *jd_store_prefix(jd_store store, const char *prefix, jd_store *out) {
  try {
    *out = nullptr;
    auto p = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), S(store)->s);
    *out = new DStore{p};
    return nullptr;
  }
  CATCH_RETURN(RET_ERR)
}

jt_error *jd_store_set(jd_store store, const char *key, const void *value, int64_t len) {
  try {
    const auto *p = static_cast<const uint8_t *>(value);
    S(store)->s->set(std::string(key), std::vector<uint8_t>(p, p + len));
    return nullptr;
  }
  CATCH_RETURN(RET_ERR)
}

jt_error *jd_store_get(jd_store store, const char *key, void **value, int64_t *len) {
  try {
    *value = nullptr;
    *len = 0;
    std::vector<uint8_t> v = S(store)->s->get(std::string(key));
    void *buf = std::malloc(v.empty() ? 1 : v.size());
    if (buf == nullptr) throw std::bad_alloc();
    if (!v.empty()) std::memcpy(buf, v.data(), v.size());
    *value = buf;
    *len = static_cast<int64_t>(v.size());
    return nullptr;
  }
  CATCH_RETURN(RET_ERR)
}

jt_error *jd_store_add(jd_store store, const char *key, int64_t delta, int64_t *out) {
  try {
    *out = S(store)->s->add(std::string(key), delta);
    return nullptr;
  }
  CATCH_RETURN(RET_ERR)
}

jt_error *jd_store_check(jd_store store, const char *key, int *exists) {
  try {
    *exists = S(store)->s->check({std::string(key)}) ? 1 : 0;
    return nullptr;
  }
  CATCH_RETURN(RET_ERR)
}

void jd_bytes_free(void *p) { std::free(p); }

void jd_store_free(jd_store store) { delete S(store); }

jt_error *jd_group_new(jd_store store, int rank, int world, const char *backend, const char *iface, int threads,
                       int64_t timeout_ms, jd_group *out) {
  try {
    *out = nullptr;
    std::string be(backend);
    if (be != "gloo") {
      return value_err("backend " + be + ": this build of the shim has gloo only" +
                       (be == "nccl" ? std::string(" (NCCL needs a CUDA libtorch and a shim built against it)") : ""));
    }
    if (world < 1 || rank < 0 || rank >= world) {
      return value_err("rank " + std::to_string(rank) + " of a world of " + std::to_string(world) +
                       ": want 0 <= rank < world");
    }
    auto timeout = std::chrono::milliseconds(timeout_ms);
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    std::string where(iface);
    if (where.rfind("iface=", 0) == 0) {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(where.substr(6)));
    } else if (!where.empty()) {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(where));
    } else {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    if (threads > 0) opts->threads = threads;
    auto st = S(store)->s;
    auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(st, rank, world, opts);
#if TORCH_VERSION_MAJOR >= 2
    // 2.x: a ProcessGroup dispatches each device type to a Backend.
#if TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR < 4
    auto pg = c10::make_intrusive<c10d::ProcessGroup>(st, rank, world,
                                                      c10::make_intrusive<c10d::ProcessGroup::Options>("gloo", timeout));
#else
    auto pg = c10::make_intrusive<c10d::ProcessGroup>(st, rank, world);
    pg->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
#endif
    pg->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, gloo);
    c10::intrusive_ptr<c10d::ProcessGroup> group = pg;
#else
    c10::intrusive_ptr<c10d::ProcessGroup> group = gloo;
#endif
    *out = new DGroup{group, rank, world, timeout};
    return nullptr;
  }
  CATCH_RETURN(RET_ERR)
}

int jd_group_rank(jd_group g) { return G(g)->rank; }
int jd_group_size(jd_group g) { return G(g)->size; }

jt_error *jd_allreduce(jd_group g, jt_tensor *ts, int n, int op) {
  try {
    if (op < JD_SUM || op > JD_MAX) return value_err("unknown reduce op " + std::to_string(op));
    if (n == 0) return nullptr;
    flat_collective(tensors_of(ts, n), [&](at::Tensor &t) { allreduce_sync(G(g), t, op); });
    return nullptr;
  }
  CATCH_RETURN(RET_ERR)
}

jt_error *jd_broadcast(jd_group g, jt_tensor *ts, int n, int root) {
  try {
    DGroup *d = G(g);
    if (root < 0 || root >= d->size) return value_err("broadcast root " + std::to_string(root) + " outside the group");
    if (n == 0) return nullptr;
    flat_collective(tensors_of(ts, n), [&](at::Tensor &t) {
      c10d::BroadcastOptions o;
      o.rootRank = root;
      o.timeout = d->timeout;
      std::vector<at::Tensor> v{t};
      d->pg->broadcast(v, o)->wait();
    });
    return nullptr;
  }
  CATCH_RETURN(RET_ERR)
}

jt_error *jd_barrier(jd_group g) {
  try {
    c10d::BarrierOptions o;
    o.timeout = G(g)->timeout;
    G(g)->pg->barrier(o)->wait();
    return nullptr;
  }
  CATCH_RETURN(RET_ERR)
}

void jd_group_free(jd_group g) {
  try {
    delete G(g);
  } catch (...) {  // a broken group may throw while its threads stop; nothing is left to report to
  }
}

jt_error *jd_reducer_new(jd_group g, jt_tensor *params, int n, int64_t bucket_bytes, int find_unused,
                         jd_reducer *out) {
  try {
    *out = nullptr;
    std::vector<at::Tensor> ps = tensors_of(params, n);
    for (int i = 0; i < n; i++) {
      if (!ps[i].requires_grad()) return value_err("reducer: parameter " + std::to_string(i) + " does not require grad");
    }
    if (bucket_bytes <= 0) bucket_bytes = c10d::kDefaultBucketBytesCap;
    std::vector<bool> sparse(ps.size(), false);
    // As torch.nn.parallel.DistributedDataParallel: buckets by size, the
    // first small so that communication starts early, in reverse order of
    // the parameters (roughly the order backward produces gradients).
    auto assigned = c10d::compute_bucket_assignment_by_size(
        ps, {static_cast<size_t>(c10d::kDefaultFirstBucketBytes), static_cast<size_t>(bucket_bytes)}, sparse);
    auto buckets = std::get<0>(assigned);
    auto limits = std::get<1>(assigned);
    std::reverse(buckets.begin(), buckets.end());
    std::reverse(limits.begin(), limits.end());
    auto r = std::make_unique<c10d::Reducer>(ps, buckets, limits, G(g)->pg, sparse, bucket_bytes, find_unused != 0,
                                             /*gradient_as_bucket_view=*/false,
                                             std::unordered_map<size_t, std::string>{},
                                             static_cast<int64_t>(c10d::kDefaultFirstBucketBytes));
    *out = new DReducer{std::move(r), G(g)->pg};
    return nullptr;
  }
  CATCH_RETURN(RET_ERR)
}

jt_error *jd_reducer_prepare_forward(jd_reducer r) {
  try {
    auto *d = static_cast<DReducer *>(r);
    // After the first iteration the Reducer re-buckets in the order gradients
    // actually arrived (a broadcast from rank 0), at the next forward, as DDP.
    d->r->rebuild_buckets();
    d->r->prepare_for_forward();
    return nullptr;
  }
  CATCH_RETURN(RET_ERR)
}

jt_error *jd_reducer_prepare_backward(jd_reducer r, jt_tensor *outputs, int n) {
  try {
    static_cast<DReducer *>(r)->r->prepare_for_backward(tensors_of(outputs, n));
    return nullptr;
  }
  CATCH_RETURN(RET_ERR)
}

void jd_reducer_free(jd_reducer r) {
  try {
    delete static_cast<DReducer *>(r);
  } catch (...) {  // ~Reducer is noexcept(false)
  }
}

jt_error *jd_sync_batch_norm(jd_group g, jt_tensor x, jt_tensor weight, jt_tensor bias, jt_tensor running_mean,
                             jt_tensor running_var, double momentum, double eps, jt_tensor out) {
  try {
    DGroup *d = G(g);
    const at::Tensor &in = T(x);
    TORCH_CHECK(in.dim() >= 2, "sync batch norm: want an [N, C, ...] input, got ", in.sizes());
    int64_t c = in.size(1);
    std::vector<int64_t> dims{0};
    for (int64_t k = 2; k < in.dim(); k++) dims.push_back(k);
    at::Tensor mean, var, invstd;
    int64_t count;
    {
      at::NoGradGuard ng;
      // Local mean and biased variance (two-pass, accurate in float32), then
      // one all-reduce of n*mean, n*(var + mean^2) and n in float64.
      int64_t n = c > 0 ? in.numel() / c : 0;
      auto vm = at::var_mean(in, at::IntArrayRef(dims), /*unbiased=*/false, /*keepdim=*/false);
      at::Tensor lv = std::get<0>(vm).to(at::kDouble), lm = std::get<1>(vm).to(at::kDouble);
      at::Tensor buf = at::cat({lm * static_cast<double>(n), (lv + lm * lm) * static_cast<double>(n),
                                at::full({1}, static_cast<double>(n), lm.options())});
      allreduce_sync(d, buf, JD_SUM);
      double total = buf[2 * c].item<double>();
      TORCH_CHECK(total > 1, "Expected more than 1 value per channel when training, got input size ", in.sizes(),
                  " on each of ", d->size, " ranks");
      at::Tensor gm = buf.narrow(0, 0, c) / total;
      at::Tensor gv = (buf.narrow(0, c, c) / total - gm * gm).clamp_min(0);
      count = static_cast<int64_t>(total);
      if (running_mean != nullptr) {
        T(running_mean).mul_(1 - momentum).add_(gm.to(T(running_mean).scalar_type()) * momentum);
      }
      if (running_var != nullptr) {
        T(running_var).mul_(1 - momentum).add_((gv * (total / (total - 1))).to(T(running_var).scalar_type()) * momentum);
      }
      mean = gm.to(in.scalar_type());
      var = gv;
      invstd = (gv + eps).rsqrt().to(in.scalar_type());
    }
    at::Tensor w = weight != nullptr ? T(weight) : at::ones({c}, in.options());
    at::Tensor b = bias != nullptr ? T(bias) : at::zeros({c}, in.options());
    T(out) = SyncBNFunction::apply(in, w, b, mean, invstd, count, reinterpret_cast<int64_t>(d));
    return nullptr;
  }
  CATCH_RETURN(RET_ERR)
}

int64_t jd_handle_numel(jt_tensor t) { return T(t).numel(); }

}  // extern "C"
