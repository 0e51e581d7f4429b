// cpualloc.cc: libtorch's CPU allocator with a cache of large blocks.
// glibc serves allocations above its mmap threshold (32 MiB at most) with
// fresh mappings and unmaps them at free, so each training step faulted its
// activations' pages in again: 7 million minor faults for four unet 4×256²
// steps, a third of the step time on this project's VM. Blocks from 1 MiB
// up are kept at free and handed to the next request they fit (the smallest
// block at most twice its size: tighter fits raised peak memory more, as
// blocks sat idle while new ones were mapped), up to a limit
// (JMEDSEG_CPU_CACHE bytes, default a quarter of the machine's memory);
// smaller ones go straight back to malloc. Kernels' working memory has its
// own pool (Scratch, scratch.h), outside the cache.
#include "jmedseg.h"
#include "scratch.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

namespace jmedseg_alloc {
namespace {

constexpr size_t kHeader = 64;  // the block's size, before the data; keeps libtorch's 64-byte alignment
constexpr size_t kMin = 1 << 20;
constexpr size_t kGrain = 64 << 10;

std::mutex mu;
std::multimap<size_t, char *> free_blocks;  // by block size
size_t cached = 0;                          // bytes in free_blocks
std::atomic<int64_t> limit{0};
std::atomic<int64_t> hits{0}, misses{0};

int64_t default_limit() {
  if (const char *e = std::getenv("JMEDSEG_CPU_CACHE")) {
    char *end = nullptr;
    long long v = std::strtoll(e, &end, 10);
    if (end != e && *end == '\0' && v >= 0) return v;
    std::fprintf(stderr, "jmedseg: JMEDSEG_CPU_CACHE=%s is not a byte count (0 or more); using the default\n", e);
  }
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page / 4 : int64_t(4) << 30;
}

size_t size_of(char *base) { return *reinterpret_cast<size_t *>(base); }

}  // namespace

// Arena is one Scratch pool entry: chunks, the last one being carved.
struct Arena {
  struct Chunk {
    char *p;
    size_t size;
  };
  std::vector<Chunk> chunks;
  size_t used = 0;   // bytes taken from chunks.back()
  size_t taken = 0;  // bytes taken in this lease, all chunks
  size_t want = 0;   // the first chunk's size when it is next made

  size_t held() const {
    size_t n = 0;
    for (auto &c : chunks) n += c.size;
    return n;
  }
  void free_chunks() {
    for (auto &c : chunks) std::free(c.p);
    chunks.clear();
    used = 0;
  }
};

namespace {

std::vector<Arena *> idle_arenas;  // under mu
constexpr size_t kMaxIdleArenas = 4;

void drop_all() {
  std::multimap<size_t, char *> old;
  std::vector<Arena *> arenas;
  {
    std::lock_guard<std::mutex> g(mu);
    old.swap(free_blocks);
    cached = 0;
    arenas.swap(idle_arenas);
  }
  for (auto &kv : old) std::free(kv.second);
  for (Arena *a : arenas) {
    a->free_chunks();
    delete a;
  }
}

void release(void *data) {
  if (data == nullptr) return;
  char *base = static_cast<char *>(data) - kHeader;
  size_t size = size_of(base);
  if (size >= kMin) {
    std::lock_guard<std::mutex> g(mu);
    if (static_cast<int64_t>(cached + size) <= limit.load(std::memory_order_relaxed)) {
      free_blocks.emplace(size, base);
      cached += size;
      return;
    }
  }
  std::free(base);
}

char *take(size_t size) {
  std::lock_guard<std::mutex> g(mu);
  auto it = free_blocks.lower_bound(size);
  if (it == free_blocks.end() || it->first > 2 * size) return nullptr;
  char *base = it->second;
  cached -= it->first;
  free_blocks.erase(it);
  return base;
}

// allocate_block is the allocator's allocate.
c10::DataPtr allocate_block(size_t n) {
  size_t size = n + kHeader;
  bool large = size >= kMin;
  if (large) size = (size + kGrain - 1) / kGrain * kGrain;
  char *base = nullptr;
  if (large && limit.load(std::memory_order_relaxed) > 0) {
    base = take(size);
    (base != nullptr ? hits : misses).fetch_add(1, std::memory_order_relaxed);
  }
  if (base == nullptr) {
    void *p = nullptr;
    if (posix_memalign(&p, kHeader, size) != 0) {
      drop_all();  // the cache may hold what this request needs
      if (posix_memalign(&p, kHeader, size) != 0) p = nullptr;
    }
    TORCH_CHECK(p != nullptr, "CPU out of memory: tried to allocate ", n, " bytes");
    base = static_cast<char *>(p);
    *reinterpret_cast<size_t *>(base) = size;
  }
  void *data = base + kHeader;
  return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
}

struct Caching final : c10::Allocator {
  // allocate is const in libtorch 1.13 and not in 2.x: each overrides one.
  c10::DataPtr allocate(size_t n) const { return allocate_block(n); }
  c10::DataPtr allocate(size_t n) { return allocate_block(n); }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
  // libtorch 2.x's Allocator has it (pure virtual); 1.13's does not.
  void copy_data(void *dest, const void *src, std::size_t count) const { std::memcpy(dest, src, count); }
};

Caching allocator;

// Installed when the library loads, before any tensor exists: a tensor made
// by another allocator carries its own deleter, so it would be safe anyway.
struct Install {
  Install() {
    limit.store(default_limit());
    c10::SetCPUAllocator(&allocator, /*priority=*/1);
  }
} install;

}  // namespace

Scratch::Scratch() {
  {
    std::lock_guard<std::mutex> g(mu);
    if (!idle_arenas.empty()) {
      a_ = idle_arenas.back();
      idle_arenas.pop_back();
      return;
    }
  }
  a_ = new Arena;
}

void *Scratch::take(size_t bytes) {
  bytes = (bytes + kHeader - 1) / kHeader * kHeader;
  if (bytes == 0) bytes = kHeader;
  a_->taken += bytes;
  if (a_->chunks.empty() || a_->used + bytes > a_->chunks.back().size) {
    // A new chunk; the ones before stay valid (their pointers are in use).
    size_t size = std::max(bytes, a_->chunks.empty() ? a_->want : 0);
    size = (size + kGrain - 1) / kGrain * kGrain;
    void *p = nullptr;
    if (posix_memalign(&p, kHeader, size) != 0) {
      drop_all();
      if (posix_memalign(&p, kHeader, size) != 0) p = nullptr;
    }
    TORCH_CHECK(p != nullptr, "CPU out of memory: tried to allocate ", size, " bytes of kernel scratch");
    a_->chunks.push_back({static_cast<char *>(p), size});
    a_->used = 0;
  }
  char *p = a_->chunks.back().p + a_->used;
  a_->used += bytes;
  return p;
}

Scratch::~Scratch() {
  Arena *a = a_;
  if (a->chunks.size() > 1) {
    // Grew: next time one chunk of what this call took.
    a->want = a->taken;
    a->free_chunks();
  }
  a->used = 0;
  a->taken = 0;
  if (limit.load(std::memory_order_relaxed) == 0) a->free_chunks();
  {
    std::lock_guard<std::mutex> g(mu);
    if (idle_arenas.size() < kMaxIdleArenas) {
      idle_arenas.push_back(a);
      return;
    }
  }
  a->free_chunks();
  delete a;
}

}  // namespace jmedseg_alloc

extern "C" {
int64_t jt_cpu_cache_set_limit(int64_t v) {
  if (v < 0) return jmedseg_alloc::limit.load();
  int64_t prev = jmedseg_alloc::limit.exchange(v);
  if (v < prev) jmedseg_alloc::drop_all();
  return prev;
}
int64_t jt_cpu_cache_stats(int64_t *blocks, int64_t *hits, int64_t *misses) {
  std::lock_guard<std::mutex> g(jmedseg_alloc::mu);
  if (blocks != nullptr) *blocks = static_cast<int64_t>(jmedseg_alloc::free_blocks.size());
  if (hits != nullptr) *hits = jmedseg_alloc::hits.load();
  if (misses != nullptr) *misses = jmedseg_alloc::misses.load();
  return static_cast<int64_t>(jmedseg_alloc::cached);
}
void jt_cpu_cache_empty(void) { jmedseg_alloc::drop_all(); }
int64_t jt_cpu_scratch_bytes(void) {
  std::lock_guard<std::mutex> g(jmedseg_alloc::mu);
  int64_t n = 0;
  for (auto *a : jmedseg_alloc::idle_arenas) n += static_cast<int64_t>(a->held());
  return n;
}
}
