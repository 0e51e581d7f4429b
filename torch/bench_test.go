package torch_test

import (
	"testing"

	"github.com/jmedseg/jmedseg/torch"
)

// Per-op overhead: the same ops are timed from C++ (csrc/bench/op_bench.cc)
// and Python (bench/op_overhead.py) by `make bench-ops`.

func BenchmarkAddSmall(b *testing.B) {
	x := torch.Ones([]int64{2, 2})
	y := torch.Ones([]int64{2, 2})
	defer x.Free()
	defer y.Free()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		z := x.Add(y)
		z.Free()
	}
}

func BenchmarkAddSmallScoped(b *testing.B) {
	x := torch.Ones([]int64{2, 2})
	y := torch.Ones([]int64{2, 2})
	defer x.Free()
	defer y.Free()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := torch.NewScope()
		s.Track(x.Add(y)).Relu()
		s.Close()
	}
}

func BenchmarkReluSmall(b *testing.B) {
	x := torch.Ones([]int64{2, 2})
	defer x.Free()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x.Relu().Free()
	}
}

func BenchmarkConv2d64(b *testing.B) {
	x := torch.Randn([]int64{1, 16, 64, 64})
	w := torch.Randn([]int64{16, 16, 3, 3})
	defer x.Free()
	defer w.Free()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		torch.Conv2d(x, w, nil, [2]int64{1, 1}, [2]int64{1, 1}, [2]int64{1, 1}, 1).Free()
	}
}

func BenchmarkShape(b *testing.B) {
	x := torch.Ones([]int64{2, 3, 4})
	defer x.Free()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = x.Shape()
	}
}
