// Debian's libtorch-dev 1.13 leaves out torch/csrc/distributed/autograd, but
// c10d/reducer.hpp includes this header for two names: the gradient callback
// type (checked with a static_assert) and the context pointer it holds in a
// shared_ptr (whose layout does not depend on the class). torch/cgo.go puts
// this directory on the include path; a libtorch that ships the real header
// (2.x) gets that one through #include_next.
#pragma once

#if defined(__has_include_next) && __has_include_next(<torch/csrc/distributed/autograd/context/context.h>)
#include_next <torch/csrc/distributed/autograd/context/context.h>
#else

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>

namespace torch {
namespace distributed {
namespace autograd {

class DistAutogradContext {
 public:
  using GradCallback = std::function<bool(at::Tensor &)>;
};

using ContextPtr = std::shared_ptr<DistAutogradContext>;

}  // namespace autograd
}  // namespace distributed
}  // namespace torch

#endif
