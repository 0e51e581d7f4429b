// op_bench: the per-op cost of the same calls the Go benchmarks make, from
// C++ directly on ATen (the floor) and through the shim's C ABI (what cgo
// adds on top is the rest). Prints ns/op per line.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <functional>

#include "jmedseg.h"

static void timeit(const char *name, int n, const std::function<void()> &f) {
  for (int i = 0; i < n / 10; i++) f();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; i++) f();
  auto t1 = std::chrono::steady_clock::now();
  double ns = std::chrono::duration<double, std::nano>(t1 - t0).count() / n;
  std::printf("%-28s %10.0f ns/op\n", name, ns);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 200000;
  at::set_num_threads(1);
  auto x = at::ones({2, 2}), y = at::ones({2, 2});
  timeit("aten add 2x2", n, [&] { auto z = at::add(x, y); });
  timeit("aten relu 2x2", n, [&] { auto z = at::relu(x); });
  jt_result a = jt_ones(nullptr, 0, 6, 0, -1), b = jt_ones(nullptr, 0, 6, 0, -1);
  int64_t s[2] = {2, 2};
  jt_free(a.t);
  jt_free(b.t);
  a = jt_ones(s, 2, 6, 0, -1);
  b = jt_ones(s, 2, 6, 0, -1);
  timeit("C ABI add 2x2", n, [&] { jt_free(jt_binary(JT_ADD, a.t, b.t).t); });
  timeit("C ABI relu 2x2", n, [&] { jt_free(jt_unary(JT_RELU, a.t).t); });
  auto cx = at::randn({1, 16, 64, 64}), cw = at::randn({16, 16, 3, 3});
  timeit("aten conv2d 16x64x64", n / 200, [&] { auto z = at::conv2d(cx, cw, {}, 1, 1); });
  jt_free(a.t);
  jt_free(b.t);
  return 0;
}
