"""Per-op cost of the Go benchmarks' ops from Python, on the same libtorch."""
import sys
import timeit

import torch

torch.set_num_threads(1)
n = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
x, y = torch.ones(2, 2), torch.ones(2, 2)
cx, cw = torch.randn(1, 16, 64, 64), torch.randn(16, 16, 3, 3)
F = torch.nn.functional
for name, stmt, k in [("python add 2x2", lambda: x + y, n), ("python relu 2x2", lambda: torch.relu(x), n),
                      ("python conv2d 16x64x64", lambda: F.conv2d(cx, cw, padding=1), n // 200)]:
    stmt()
    t = timeit.timeit(stmt, number=k)
    print(f"{name:<28} {t / k * 1e9:10.0f} ns/op")
