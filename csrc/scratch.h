// scratch.h: short-lived working memory for one call into a kernel library
// (oneDNN's scratchpads and blocked copies), implemented in cpualloc.cc.
#pragma once

#include <cstddef>

namespace jmedseg_alloc {

struct Arena;

// Scratch lends the calling scope a grow-only block: take carves it, and at
// the scope's end the whole block goes back to a pool for the next call,
// resized once to what this call took when it had to grow. Such buffers
// come in many sizes (a few per layer) and are freed at once; kept as
// freed tensor blocks in the block cache they sat idle, one per size, at
// the training peak (unet 8×128²: 1995 MiB with Winograd's buffers in the
// cache, 1389 MiB with no Winograd). With the cache off nothing is kept.
class Scratch {
 public:
  Scratch();
  ~Scratch();
  Scratch(const Scratch &) = delete;
  Scratch &operator=(const Scratch &) = delete;
  // take returns bytes of 64-byte aligned memory, valid until the Scratch
  // ends; it throws c10::Error when memory runs out.
  void *take(size_t bytes);

 private:
  Arena *a_;
};

}  // namespace jmedseg_alloc
