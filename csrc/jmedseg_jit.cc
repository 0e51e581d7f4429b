// jmedseg_jit.cc: the TorchScript shim behind jmedseg_jit.h, compiled into
// torch/jit (torch/jit/shim.cc), apart from jmedseg.cc, so that only
// programs that export pay for the TorchScript headers. Tensor handles are
// jmedseg.cc's: it reads one as jmedseg.cc lays it out (an at::Tensor first,
// as csrc/dist.cc does) and never makes handles: results go into handles
// the caller made. Only APIs
// present in libtorch 1.13 and 2.x are used.
#include "jmedseg_jit.h"
#include "shim_internal.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/frontend/sugared_value.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/csrc/jit/serialization/import.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <vector>

namespace {

using jmedseg_shim::Handle;
using jmedseg_shim::make_err;
using jmedseg_shim::T;

}  // namespace

#define E(stmts)    \
  try {             \
    stmts;          \
    return nullptr; \
  }                 \
  CATCH_RETURN(RET_ERR)

// ---- TorchScript (torch/jit) ----
// A module is a torch::jit::Module on the heap. The tracer is libtorch's own
// (torch::jit::tracer::trace, the one torch.jit.trace uses): it records the
// ATen calls the traced function makes on this thread, and maps the tensors
// registered on the module to reads of its attributes.

namespace {

inline torch::jit::Module &M(jt_module h) { return *static_cast<torch::jit::Module *>(h); }

// A class name that TorchScript's printer and parser take: letters, digits,
// underscores, not starting with a digit.
std::string ident(const std::string &s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_') ? c : '_';
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "m_" + out;
  return out;
}

// streambuf that hands what the serializer writes to a callback in chunks.
class SinkBuf : public std::streambuf {
 public:
  SinkBuf(jt_write_fn fn, uintptr_t ctx) : fn_(fn), ctx_(ctx), buf_(1 << 20) { setp(buf_.data(), buf_.data() + buf_.size()); }
  bool failed() const { return failed_; }

 protected:
  int_type overflow(int_type c) override {
    if (!flush()) return traits_type::eof();
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  int sync() override { return flush() ? 0 : -1; }

 private:
  bool flush() {
    std::ptrdiff_t n = pptr() - pbase();
    if (n > 0 && !failed_ && fn_(ctx_, pbase(), static_cast<int64_t>(n)) != 0) failed_ = true;
    setp(buf_.data(), buf_.data() + buf_.size());
    return !failed_;
  }
  jt_write_fn fn_;
  uintptr_t ctx_;
  std::vector<char> buf_;
  bool failed_ = false;
};

// make_module makes a module in cu with the bool attribute "training" (off)
// that torch.jit.trace's modules have and torch::jit::Module::eval() needs.
torch::jit::Module make_module(const std::string &class_name, std::shared_ptr<torch::jit::CompilationUnit> cu) {
  torch::jit::Module m(c10::QualifiedName("__torch__.jmedseg." + ident(class_name)), std::move(cu), true);
  m.register_attribute("training", c10::BoolType::get(), false);
  return m;
}

// ScriptResolver is libtorch's native resolver (torch.* are ATen's
// builtins) plus the exceptions a script may raise, which only Python's
// resolver knows otherwise.
struct ScriptResolver : public torch::jit::Resolver {
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string &name, torch::jit::GraphFunction &,
                                                         const torch::jit::SourceRange &) override {
    if (name == "torch") return std::make_shared<torch::jit::BuiltinModule>("aten");
    if (name == "Exception" || name == "RuntimeError" || name == "ValueError")
      return std::make_shared<torch::jit::ExceptionValue>(name);
    return nullptr;
  }
  c10::TypePtr resolveType(const std::string &, const torch::jit::SourceRange &) override { return nullptr; }
};

void check_new_attr(torch::jit::Module &m, const char *name) {
  TORCH_CHECK(name != nullptr && *name != '\0', "empty attribute name");
  TORCH_CHECK(!m.hasattr(name), "the module already has an attribute ", name);
  TORCH_CHECK(!m.find_method(name), "the module already has a method ", name);
}

// uninitialised counts the allocations of uninitialised memory in b. The
// tracer records a factory call such as at::empty, not what C++ then writes
// into the memory directly (jt_from_data's memcpy: torch.FromSlice in a
// traced function), so such a node in a trace means lost data.
int64_t uninitialised(torch::jit::Block *b) {
  int64_t n = 0;
  for (torch::jit::Node *node : b->nodes()) {
    const std::string kind = node->kind().toQualString();
    if (kind == "aten::empty" || kind == "aten::empty_like" || kind == "aten::empty_strided" ||
        kind == "aten::new_empty")
      n++;
    for (torch::jit::Block *sub : node->blocks()) n += uninitialised(sub);
  }
  return n;
}

void count_constants(torch::jit::Block *b, int64_t *count, int64_t *numel) {
  for (torch::jit::Node *n : b->nodes()) {
    if (n->kind() == c10::prim::Constant && n->outputs().size() == 1) {
      auto v = torch::jit::toIValue(n->output());
      if (v && v->isTensor()) {
        ++*count;
        *numel += v->toTensor().numel();
      }
    }
    for (torch::jit::Block *sub : n->blocks()) count_constants(sub, count, numel);
  }
}

#define RET_MOD(e) return jt_module_result{nullptr, (e)}

}  // namespace

extern "C" {

jt_module_result jt_jit_new(const char *class_name) {
  try {
    auto *m = new torch::jit::Module(make_module(class_name, std::make_shared<torch::jit::CompilationUnit>()));
    return jt_module_result{m, nullptr};
  }
  CATCH_RETURN(RET_MOD)
}

void jt_jit_free(jt_module m) { delete static_cast<torch::jit::Module *>(m); }

jt_error *jt_jit_register(jt_module mh, const char *path, jt_tensor t, int is_buffer) {
  E({
    torch::jit::Module cur = M(mh);  // shares the object
    const std::string p(path);
    const std::string root = cur.type()->name()->name();
    size_t start = 0;
    for (size_t dot; (dot = p.find('.', start)) != std::string::npos; start = dot + 1) {
      const std::string name = p.substr(start, dot - start);
      TORCH_CHECK(!name.empty(), "empty name in the path ", p);
      if (cur.hasattr(name)) {
        auto v = cur.attr(name);
        TORCH_CHECK(v.isModule(), p, ": ", name, " is already a tensor or attribute, not a module");
        cur = v.toModule();
        continue;
      }
      // Each submodule is a class of its own in the root's compilation unit.
      torch::jit::Module child = make_module(root + "_" + p.substr(0, dot), cur._ivalue()->compilation_unit());
      cur.register_module(name, child);
      cur = child;
    }
    const std::string name = p.substr(start);
    TORCH_CHECK(!name.empty(), "empty name in the path ", p);
    TORCH_CHECK(!cur.hasattr(name), p, " is registered already");
    cur.register_parameter(name, T(t), is_buffer != 0);
  })
}

jt_error *jt_jit_trace(jt_module mh, const char *method, jt_tensor input, jt_trace_fn fn, uintptr_t ctx) {
  E({
    torch::jit::Module &m = M(mh);
    TORCH_CHECK(method != nullptr && *method != '\0', "empty method name");
    TORCH_CHECK(!m.find_method(method), "the module already has a method ", method);
    const at::Tensor in = T(input);
    auto traced = [&](torch::jit::Stack inputs) -> torch::jit::Stack {
      TORCH_CHECK(inputs.size() == 1 && inputs[0].isTensor() && inputs[0].toTensor().is_same(in),
                  "the tracer's input is not the tensor the traced function reads");
      jt_tensor out = fn(ctx);
      if (out == nullptr) throw std::runtime_error("the traced function failed");
      return {T(out)};
    };
    auto name_of = [](const at::Tensor &) { return std::string(); };
    auto state = torch::jit::tracer::trace({in}, traced, name_of, /*strict=*/true, /*force_outplace=*/false, &m,
                                           {"x"})
                     .first;
    if (int64_t n = uninitialised(state->graph->block()))
      throw std::runtime_error(
          "the trace allocates uninitialised memory (" + std::to_string(n) +
          " aten::empty calls): a tensor made from host data inside the traced function (torch.FromSlice) is "
          "recorded without its data; make such tensors before tracing, so that they become constants");
    auto *f = m._ivalue()->compilation_unit()->create_function(c10::QualifiedName(*m.type()->name(), method),
                                                                state->graph);
    m.type()->addMethod(f);
  })
}

jt_error *jt_jit_define(jt_module m, const char *src) { E(M(m).define(src, std::make_shared<ScriptResolver>())) }

jt_error *jt_jit_attr_str(jt_module mh, const char *name, const char *value) {
  E({
    check_new_attr(M(mh), name);
    M(mh).register_attribute(name, c10::StringType::get(), std::string(value));
  })
}

jt_error *jt_jit_attr_int(jt_module mh, const char *name, int64_t value) {
  E({
    check_new_attr(M(mh), name);
    M(mh).register_attribute(name, c10::IntType::get(), value);
  })
}

jt_error *jt_jit_attr_float(jt_module mh, const char *name, double value) {
  E({
    check_new_attr(M(mh), name);
    M(mh).register_attribute(name, c10::FloatType::get(), value);
  })
}

jt_error *jt_jit_attr_ints(jt_module mh, const char *name, const int64_t *v, int64_t n) {
  E({
    check_new_attr(M(mh), name);
    c10::List<int64_t> l;
    for (int64_t i = 0; i < n; i++) l.push_back(v[i]);
    M(mh).register_attribute(name, c10::ListType::ofInts(), l);
  })
}

jt_error *jt_jit_attr_floats(jt_module mh, const char *name, const double *v, int64_t n) {
  E({
    check_new_attr(M(mh), name);
    c10::List<double> l;
    for (int64_t i = 0; i < n; i++) l.push_back(v[i]);
    M(mh).register_attribute(name, c10::ListType::ofFloats(), l);
  })
}

jt_error *jt_jit_attr_strs(jt_module mh, const char *name, const char *const *v, int64_t n) {
  E({
    check_new_attr(M(mh), name);
    c10::List<std::string> l;
    for (int64_t i = 0; i < n; i++) l.push_back(std::string(v[i]));
    M(mh).register_attribute(name, c10::ListType::ofStrings(), l);
  })
}

int jt_jit_has_attr(jt_module m, const char *name) {
  try {
    return M(m).hasattr(name) ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

jt_error *jt_jit_constants(jt_module m, const char *method, int64_t *count, int64_t *numel) {
  E({
    auto g = M(m).get_method(method).graph()->copy();
    torch::jit::Inline(*g);
    *count = 0;
    *numel = 0;
    count_constants(g->block(), count, numel);
  })
}

jt_error *jt_jit_save(jt_module m, jt_write_fn fn, uintptr_t ctx) {
  E({
    SinkBuf buf(fn, ctx);
    std::ostream os(&buf);
    M(m).save(os);
    os.flush();
    TORCH_CHECK(!buf.failed() && os.good(), "writing the TorchScript archive failed");
  })
}

jt_module_result jt_jit_load(const char *path) {
  try {
    auto *m = new torch::jit::Module(torch::jit::load(std::string(path), at::Device(at::kCPU)));
    return jt_module_result{m, nullptr};
  }
  CATCH_RETURN(RET_MOD)
}

jt_error *jt_jit_run(jt_module m, const char *method, jt_tensor x, jt_tensor out) {
  E({
    c10::NoGradGuard no_grad;
    // The graph as recorded, without the executor's profiling and
    // optimisation passes: seconds less for a large graph's first call.
    torch::jit::GraphOptimizerEnabledGuard no_opt(false);
    auto r = M(m).get_method(method)({T(x)});
    TORCH_CHECK(r.isTensor(), method, " returned a ", r.tagKind(), ", not a tensor");
    const at::Tensor y = r.toTensor();
    at::Tensor &o = T(out);
    TORCH_CHECK(y.sizes() == o.sizes() && y.scalar_type() == o.scalar_type(), method, " returned ", y.scalar_type(),
                y.sizes(), ", not the ", o.scalar_type(), o.sizes(), " expected");
    o.copy_(y);
  })
}

jt_module_result jt_jit_optimize(jt_module mh) {
  try {
    torch::jit::Module &m = M(mh);
    TORCH_CHECK(m.find_method("forward"), "the module has no forward to optimise");
    TORCH_CHECK(!m.is_training(), "the module is in training mode: freezing needs evaluation mode");
    // freeze clones m (sharing its tensors, inlined as constants); m keeps
    // its attributes and methods.
    torch::jit::Module frozen = torch::jit::freeze(m);
    auto *o = new torch::jit::Module(torch::jit::optimize_for_inference(frozen));
    return jt_module_result{o, nullptr};
  }
  CATCH_RETURN(RET_MOD)
}

jt_error *jt_jit_forward(jt_module m, jt_tensor x, jt_tensor out, int optimize) {
  E({
    c10::InferenceMode guard;
    torch::jit::GraphOptimizerEnabledGuard opt(optimize != 0);
    auto r = M(m).forward({T(x)});
    TORCH_CHECK(r.isTensor(), "forward returned a ", r.tagKind(), ", not a tensor");
    const at::Tensor y = r.toTensor();
    at::Tensor &o = T(out);
    TORCH_CHECK(y.sizes() == o.sizes() && y.scalar_type() == o.scalar_type(), "forward returned ", y.scalar_type(),
                y.sizes(), ", not the ", o.scalar_type(), o.sizes(), " expected");
    o.copy_(y);
  })
}

int64_t jt_jit_handle_numel(jt_tensor t) { return T(t).numel(); }

}  // extern "C"
