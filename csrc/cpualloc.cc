// cpualloc.cc: libtorch's CPU allocator with a cache of large blocks.
// glibc serves allocations above its mmap threshold (32 MiB at most) with
// fresh mappings and unmaps them at free, so each training step faulted its
// activations' pages in again: 7 million minor faults for four unet 4×256²
// steps, a third of the step time on this project's VM. Blocks from 1 MiB
// up are kept at free and handed to the next request they fit (the smallest
// block at most twice its size: tighter fits raised peak memory more, as
// blocks sat idle while new ones were mapped), up to a limit
// (JMEDSEG_CPU_CACHE bytes, default a quarter of the machine's memory);
// smaller ones go straight back to malloc.
#include "jmedseg.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

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

void drop_all() {
  std::multimap<size_t, char *> old;
  {
    std::lock_guard<std::mutex> g(mu);
    old.swap(free_blocks);
    cached = 0;
  }
  for (auto &kv : old) std::free(kv.second);
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
}
