// What the shim's C++ translation units share: jmedseg.cc and the files
// compiled into their own cgo packages (dist.cc, perf.cc, jmedseg_jit.cc).
// One handle layout and one way of turning C++ exceptions into error
// values, so that no file keeps a copy that could drift.
#pragma once

#include "jmedseg.h"

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>

namespace jmedseg_shim {

// Handle is what a jt_tensor points at; only jmedseg.cc makes them (its
// wrap, or jt_shallow from the other files), counting the bytes.
struct Handle {
  at::Tensor t;
  int64_t bytes;
};

// libtorch's set_num_threads reaches the calling thread's OpenMP setting
// only: a thread that ran a parallel op before keeps the count it saw then,
// so a goroutine's ops ran on as many threads as its OS thread happened to
// have (and training was not repeatable). jt_set_num_threads bumps the
// epoch; every tensor argument's lookup brings its thread up to date.
extern std::atomic<int> threads_epoch;
void threads_sync();
inline void threads_check() {
  static thread_local int seen = 0;
  int e = threads_epoch.load(std::memory_order_relaxed);
  if (C10_UNLIKELY(seen != e)) {
    seen = e;
    threads_sync();
  }
}

inline at::Tensor &T(jt_tensor h) {
  threads_check();
  return static_cast<Handle *>(h)->t;
}

// make_err makes an error value (malloc'd, freed by jt_error_free).
inline jt_error *make_err(int kind, const char *msg) {
  auto *e = static_cast<jt_error *>(std::malloc(sizeof(jt_error)));
  if (e == nullptr) return nullptr;  // nothing sensible left to do
  e->kind = kind;
  e->msg = strdup(msg);
  return e;
}

}  // namespace jmedseg_shim

// CATCH_RETURN turns every C++ exception into an error value handed to
// ret. c10::Error carries a backtrace in what(); users get the message
// without it.
#define CATCH_RETURN(ret)                                                            \
  catch (const c10::OutOfMemoryError &e) {                                           \
    ret(::jmedseg_shim::make_err(JT_ERR_OOM, e.what_without_backtrace()));           \
  }                                                                                  \
  catch (const c10::IndexError &e) {                                                 \
    ret(::jmedseg_shim::make_err(JT_ERR_INDEX, e.what_without_backtrace()));         \
  }                                                                                  \
  catch (const c10::ValueError &e) {                                                 \
    ret(::jmedseg_shim::make_err(JT_ERR_VALUE, e.what_without_backtrace()));         \
  }                                                                                  \
  catch (const c10::TypeError &e) {                                                  \
    ret(::jmedseg_shim::make_err(JT_ERR_TYPE, e.what_without_backtrace()));          \
  }                                                                                  \
  catch (const c10::Error &e) {                                                      \
    ret(::jmedseg_shim::make_err(JT_ERR_GENERIC, e.what_without_backtrace()));       \
  }                                                                                  \
  catch (const std::bad_alloc &e) {                                                  \
    ret(::jmedseg_shim::make_err(JT_ERR_OOM, e.what()));                             \
  }                                                                                  \
  catch (const std::exception &e) {                                                  \
    ret(::jmedseg_shim::make_err(JT_ERR_GENERIC, e.what()));                         \
  }                                                                                  \
  catch (...) {                                                                      \
    ret(::jmedseg_shim::make_err(JT_ERR_GENERIC, "unknown C++ exception"));          \
  }

// RET_ERR returns the error; RET_RES returns it as a failed jt_result.
#define RET_ERR(e) return (e)
#define RET_RES(e) return jt_result{nullptr, (e)}
