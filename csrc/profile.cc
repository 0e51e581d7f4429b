// profile.cc: libtorch's legacy CPU operator profiler behind profile.h.
//
// cgo compiles it into package torch as a translation unit of its own
// (torch/profile_shim.cc). enableProfilerLegacy/disableProfilerLegacy and
// LegacyEvent have the same shape from libtorch 1.13 through 2.6; the
// Kineto profiler is not used, since Debian's libtorch is built without it.
#include "profile.h"

// A libtorch without the legacy profiler's header still builds: the calls
// then say so.
#if defined(__has_include)
#if __has_include(<torch/csrc/autograd/profiler_legacy.h>)
#define JQ_PROFILER 1
#endif
#endif

#ifdef JQ_PROFILER
#include <torch/csrc/autograd/profiler_legacy.h>
#endif

#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "shim_internal.h"

#ifdef JQ_PROFILER
namespace {

namespace prof = torch::autograd::profiler;

struct Op {
  int64_t calls = 0;
  double total_us = 0, self_us = 0;
};

char *dup(const std::string &s) {
  char *p = static_cast<char *>(std::malloc(s.size() + 1));
  if (p == nullptr) throw std::bad_alloc();
  std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

// summarise matches each thread's push and pop ranges (they nest) and sums
// every operator's time, less its callees' for the self time.
std::string summarise(const prof::thread_event_lists &lists) {
  std::map<std::string, Op> ops;
  struct Open {
    const prof::LegacyEvent *e;
    double child_us;
  };
  for (const auto &list : lists) {
    std::vector<Open> stack;
    for (const auto &e : list) {
      if (e.kind() == prof::EventKind::PushRange) {
        stack.push_back({&e, 0});
      } else if (e.kind() == prof::EventKind::PopRange && !stack.empty()) {
        Open o = stack.back();
        stack.pop_back();
        double us = o.e->cpuElapsedUs(e);
        Op &op = ops[o.e->name()];
        op.calls++;
        op.total_us += us;
        op.self_us += us - o.child_us;
        if (!stack.empty()) stack.back().child_us += us;
      }
    }
  }
  std::ostringstream out;
  for (const auto &[name, op] : ops) {
    out << name << '\t' << op.calls << '\t' << op.total_us << '\t' << op.self_us << '\n';
  }
  return out.str();
}

}  // namespace

extern "C" {

jt_error *jq_profile_start(void) {
  try {
    prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU));
    return nullptr;
  }
  CATCH_RETURN(RET_ERR)
}

jt_error *jq_profile_stop(int want_trace, char **summary, char **trace) {
  *summary = nullptr;
  if (trace != nullptr) *trace = nullptr;
  try {
    prof::thread_event_lists lists = prof::disableProfilerLegacy();
    std::string s = summarise(lists);
    std::string t;
    if (want_trace && trace != nullptr) {
      std::vector<prof::LegacyEvent *> events;
      for (auto &list : lists) {
        for (auto &e : list) events.push_back(&e);
      }
      std::ostringstream out;
      prof::writeProfilerEventsToStream(out, events);
      t = out.str();
    }
    char *sp = dup(s);
    if (want_trace && trace != nullptr) {
      try {
        *trace = dup(t);
      } catch (...) {
        std::free(sp);
        throw;
      }
    }
    *summary = sp;
    return nullptr;
  }
  CATCH_RETURN(RET_ERR)
}

#else  // no legacy profiler

extern "C" {

jt_error *jq_profile_start(void) {
  return jmedseg_shim::make_err(JT_ERR_GENERIC, "this libtorch has no legacy profiler (profiler_legacy.h)");
}

jt_error *jq_profile_stop(int, char **summary, char **trace) {
  *summary = nullptr;
  if (trace != nullptr) *trace = nullptr;
  return jmedseg_shim::make_err(JT_ERR_GENERIC, "this libtorch has no legacy profiler (profiler_legacy.h)");
}

#endif

void jq_free(char *p) { std::free(p); }

}  // extern "C"
