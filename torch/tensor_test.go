package torch_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/torch"
)

func TestCreationAndRoundTrip(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	f32 := torch.FromSlice([]float32{1, 2, 3, 4, 5, 6}, []int64{2, 3}, s)
	require.NoError(t, f32.Err())
	assert.Equal(t, []int64{2, 3}, f32.Shape())
	assert.Equal(t, torch.Float32, f32.DType())
	assert.Equal(t, torch.CPU, f32.Device())

	tests := []struct {
		name  string
		t     *torch.Tensor
		dtype torch.DType
		want  []float64
	}{
		{"zeros", torch.Zeros([]int64{2, 2}, s), torch.Float32, []float64{0, 0, 0, 0}},
		{"ones_f64", torch.Ones([]int64{3}, torch.Float64, s), torch.Float64, []float64{1, 1, 1}},
		{"full_i32", torch.Full([]int64{2}, 7, torch.Int32, s), torch.Int32, []float64{7, 7}},
		{"arange", torch.Arange(0, 5, 2, s), torch.Int64, []float64{0, 2, 4}},
		{"arange_float", torch.Arange(0, 1, 0.25, torch.Float64, s), torch.Float64, []float64{0, 0.25, 0.5, 0.75}},
		{"eye", torch.Eye(2, s), torch.Float32, []float64{1, 0, 0, 1}},
		{"from_i64", torch.FromSlice([]int64{-3, 1 << 40}, nil, s), torch.Int64, []float64{-3, 1 << 40}},
		{"from_i32", torch.FromSlice([]int32{5, -6}, nil, s), torch.Int32, []float64{5, -6}},
		{"from_u8", torch.FromSlice([]uint8{0, 255}, nil, s), torch.Uint8, []float64{0, 255}},
		{"from_bool", torch.FromSlice([]bool{true, false}, nil, s), torch.Bool, []float64{1, 0}},
		{"f16", f32.ToDType(torch.Float16), torch.Float16, []float64{1, 2, 3, 4, 5, 6}},
		{"bf16", f32.ToDType(torch.BFloat16), torch.BFloat16, []float64{1, 2, 3, 4, 5, 6}},
		{"scalar", torch.Scalar(2.5, s), torch.Float64, []float64{2.5}},
		{"convert_option", torch.FromSlice([]float64{1.5}, nil, torch.Float32, s), torch.Float32, []float64{1.5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, tc.t.Err())
			assert.Equal(t, tc.dtype, tc.t.DType())
			got, err := tc.t.Float64s()
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	i64, err := torch.FromSlice([]int64{1 << 60}, nil, s).Int64s()
	require.NoError(t, err)
	assert.Equal(t, []int64{1 << 60}, i64, "int64 survives without a trip through float")
	bs, err := torch.ToSlice[bool](torch.FromSlice([]float32{0, 2}, nil, s))
	require.NoError(t, err)
	assert.Equal(t, []bool{false, true}, bs)
}

func TestRandomIsSeeded(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	draw := func() []float64 {
		torch.ManualSeed(42)
		v, err := torch.Cat([]*torch.Tensor{
			torch.Rand([]int64{3}, torch.Float64, s), torch.Randn([]int64{3}, torch.Float64, s),
			torch.RandInt(0, 10, []int64{3}, s).ToDType(torch.Float64), torch.RandPerm(4, s).ToDType(torch.Float64),
		}, 0).Float64s()
		require.NoError(t, err)
		return v
	}
	a, b := draw(), draw()
	assert.Equal(t, a, b)
	for _, v := range a[:3] {
		assert.True(t, v >= 0 && v < 1)
	}

	state := torch.RNGState()
	require.NoError(t, state.Err())
	defer state.Free()
	x, _ := torch.Randn([]int64{4}, s).Float32s()
	require.NoError(t, torch.SetRNGState(state))
	y, _ := torch.Randn([]int64{4}, s).Float32s()
	assert.Equal(t, x, y, "restoring the RNG state repeats the draws")
}

func TestErrorsAreValuesNotCrashes(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	a := torch.Zeros([]int64{2, 3}, s)
	i := torch.Zeros([]int64{2, 3}, torch.Int64, s)
	tests := []struct {
		name    string
		t       *torch.Tensor
		wantMsg []string
		is      error
	}{
		{"shape mismatch", a.Matmul(a), []string{"matmul", "float32[2 3] cpu", "cannot be multiplied"}, nil},
		{"broadcast", a.Add(torch.Zeros([]int64{4}, s)), []string{"add", "float32[4] cpu", "size of tensor a (3)"}, nil},
		{"dtype", torch.Conv2d(torch.Zeros([]int64{1, 1, 3, 3}, torch.Int64, s), torch.Zeros([]int64{1, 1, 1, 1}, s), nil, [2]int64{1, 1}, [2]int64{0, 0}, [2]int64{1, 1}, 1), []string{"conv2d", "int64[1 1 3 3] cpu"}, nil},
		{"index", a.Select(0, 5), []string{"select", "out of range"}, torch.ErrIndex},
		{"dim", a.Softmax(4), []string{"softmax", "Dimension out of range"}, torch.ErrIndex},
		{"view", a.Transpose(0, 1).View(6), []string{"view", "stride"}, nil},
		{"from_slice", torch.FromSlice([]float32{1, 2, 3}, []int64{2, 2}), []string{"3 elements given for shape [2 2]"}, nil},
		{"cross_entropy target dtype", torch.CrossEntropy(torch.Zeros([]int64{2, 3}, s), torch.Zeros([]int64{2}, s), nil, torch.ReduceMean, -100, 0), []string{"cross_entropy"}, nil},
		{"cross_entropy class out of range", torch.CrossEntropy(torch.Zeros([]int64{2, 3}, s), torch.Full([]int64{2}, 7, torch.Int64, s), nil, torch.ReduceMean, -100, 0), []string{"cross_entropy", "out of bounds"}, nil},
		{"gather index dtype", a.Gather(1, a), []string{"gather"}, nil},
		{"int grad", torch.FromError(i.SetRequiresGrad(true)), []string{"requires_grad_", "floating point"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.t.Err()
			require.Error(t, err)
			var te *torch.Error
			require.True(t, errors.As(err, &te), "typed error: %v", err)
			for _, m := range tc.wantMsg {
				assert.Contains(t, err.Error(), m)
			}
			assert.NotContains(t, err.Error(), "Exception raised from", "no C++ backtrace in messages")
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
			// errors flow on through later operations, unchanged
			assert.Equal(t, err, tc.t.Relu().Add(a).Err())
		})
	}
}

// Asking for CUDA where libtorch has none is an ErrNoCUDA that names the
// device and the way out, never a silent fall-back to the CPU. Where CUDA is
// available the same calls must succeed instead.
func TestCUDADevice(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	a := torch.Zeros([]int64{2, 3}, s)
	tests := []struct {
		name    string
		t       *torch.Tensor
		wantMsg []string
	}{
		{"create", torch.Zeros([]int64{1}, torch.CUDA(0), s), []string{"cuda:0", "--device cpu"}},
		{"move", a.ToDevice(torch.CUDA(0)), []string{"CUDA"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.t.Err()
			if torch.CUDAAvailable() {
				require.NoError(t, err)
				assert.Equal(t, torch.CUDA(0), tc.t.Device())
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, torch.ErrNoCUDA)
			var te *torch.Error
			require.True(t, errors.As(err, &te), "typed error: %v", err)
			for _, m := range tc.wantMsg {
				assert.Contains(t, err.Error(), m)
			}
		})
	}
}

func TestUseAfterFree(t *testing.T) {
	a := torch.Ones([]int64{2})
	a.Free()
	a.Free() // twice is harmless
	err := a.Relu().Err()
	require.ErrorIs(t, err, torch.ErrFreed)
	assert.Contains(t, err.Error(), "relu")
	_, err = a.Float32s()
	require.ErrorIs(t, err, torch.ErrFreed)
	assert.Equal(t, "<freed tensor>", a.String())

	s := torch.NewScope()
	b := s.Track(torch.Ones([]int64{2}))
	s.Close()
	require.ErrorIs(t, b.Exp().Err(), torch.ErrFreed, "a closed scope frees its tensors")
	require.ErrorIs(t, b.SetRequiresGrad(true), torch.ErrFreed)

	var nilT *torch.Tensor
	require.Error(t, torch.Ones([]int64{1}).Add(nilT).Err())
}

func TestMustPanicsOnlyWhenAsked(t *testing.T) {
	a := torch.Zeros([]int64{2, 3})
	defer a.Free()
	bad := a.Matmul(a)
	assert.Panics(t, func() { torch.Must(bad) })
	assert.NotPanics(t, func() { torch.Must(a) })
}

func TestAutogradBasics(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	w := torch.FromSlice([]float64{1, -2, 3}, nil, torch.RequiresGrad)
	defer w.Free()
	assert.True(t, w.IsLeaf())
	assert.True(t, w.RequiresGrad())
	x := torch.FromSlice([]float64{0.5, 1, 2}, nil, s)

	y := w.Mul(x).Sum()
	require.NoError(t, y.Backward())
	g := s.Track(w.Grad())
	v, _ := g.Float64s()
	assert.Equal(t, []float64{0.5, 1, 2}, v)

	// gradients accumulate until zeroed
	require.NoError(t, w.Mul(x).Sum().Backward())
	v, _ = s.Track(w.Grad()).Float64s()
	assert.Equal(t, []float64{1, 2, 4}, v)
	require.NoError(t, w.ZeroGrad(false))
	v, _ = s.Track(w.Grad()).Float64s()
	assert.Equal(t, []float64{0, 0, 0}, v)
	require.NoError(t, w.ZeroGrad(true))
	assert.Nil(t, w.Grad())

	// a non-scalar output needs an explicit gradient
	z := w.MulScalar(2)
	require.Error(t, z.Backward())
	require.NoError(t, z.BackwardWith(torch.FromSlice([]float64{1, 0, 1}, nil, s), false, false))
	v, _ = s.Track(w.Grad()).Float64s()
	assert.Equal(t, []float64{2, 0, 2}, v)

	// detach cuts the graph; NoGrad records nothing
	assert.False(t, w.Detach().RequiresGrad())
	var inside *torch.Tensor
	torch.NoGrad(func() {
		assert.False(t, torch.GradEnabled())
		inside = w.MulScalar(3)
		torch.WithGrad(func() { assert.True(t, w.MulScalar(3).RequiresGrad()) })
	})
	assert.False(t, inside.RequiresGrad())
	assert.True(t, w.MulScalar(3).RequiresGrad(), "grad mode is restored after NoGrad")
	torch.InferenceMode(func() {
		assert.False(t, w.MulScalar(3).RequiresGrad())
	})

	// retain_grad on an intermediate
	h := w.MulScalar(2)
	require.NoError(t, h.RetainGrad())
	require.NoError(t, h.Sum().Backward())
	v, _ = s.Track(h.Grad()).Float64s()
	assert.Equal(t, []float64{1, 1, 1}, v)
}

// NoGrad must hold for the goroutine that asked for it, and for no other,
// however goroutines and OS threads are interleaved.
func TestNoGradIsPerGoroutine(t *testing.T) {
	w := torch.Ones([]int64{4}, torch.RequiresGrad)
	defer w.Free()
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				s := torch.NewScope()
				if g%2 == 0 {
					torch.NoGrad(func() {
						runtime.Gosched()
						if s.Track(w.MulScalar(2)).RequiresGrad() {
							errs <- "recorded a graph inside NoGrad"
						}
					})
				} else {
					runtime.Gosched()
					if !s.Track(w.MulScalar(2)).RequiresGrad() {
						errs <- "lost grad mode outside NoGrad"
					}
				}
				s.Close()
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

// Inference from several goroutines on shared weights gives the same
// answers as one goroutine; run with -race.
func TestConcurrentInference(t *testing.T) {
	torch.ManualSeed(3)
	w := torch.Randn([]int64{8, 3, 3, 3})
	defer w.Free()
	x := torch.Randn([]int64{2, 3, 16, 16})
	defer x.Free()
	forward := func() []float32 {
		s := torch.NewScope()
		defer s.Close()
		var out []float32
		torch.NoGrad(func() {
			y := torch.Conv2d(s.Track(x.Shallow()), w, nil, [2]int64{1, 1}, [2]int64{1, 1}, [2]int64{1, 1}, 1).Relu().MeanDims([]int64{2, 3}, false)
			var err error
			out, err = y.Float32s()
			if err != nil {
				panic(err)
			}
		})
		return out
	}
	want := forward()
	var wg sync.WaitGroup
	got := make([][]float32, 6)
	for g := range got {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				got[g] = forward()
			}
		}(g)
	}
	wg.Wait()
	for _, g := range got {
		assert.Equal(t, want, g)
	}
}

func TestDropoutStatistics(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	torch.ManualSeed(7)
	x := torch.Ones([]int64{100000}, s)
	y, err := torch.Dropout(x, 0.3, true).Float32s()
	require.NoError(t, err)
	zeros := 0
	for _, v := range y {
		if v == 0 {
			zeros++
		} else {
			assert.InDelta(t, 1/0.7, v, 1e-6)
		}
	}
	assert.InDelta(t, 0.3, float64(zeros)/float64(len(y)), 0.01)
	same, _ := torch.Dropout(x, 0.3, false).Float32s()
	assert.Equal(t, float32(1), same[0])
	// Dropout2d zeroes whole channels
	c, _ := torch.Dropout2d(torch.Ones([]int64{1, 64, 4, 4}, s), 0.5, true).Float32s()
	for ch := 0; ch < 64; ch++ {
		first := c[ch*16]
		for k := 1; k < 16; k++ {
			require.Equal(t, first, c[ch*16+k])
		}
	}
}

func TestInPlace(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	a := torch.FromSlice([]float64{1, 4, 9}, nil, s)
	b := torch.FromSlice([]float64{1, 2, 3}, nil, s)
	require.NoError(t, a.AddInPlace(b))         // 2 6 12
	require.NoError(t, a.MulScalarInPlace(0.5)) // 1 3 6
	require.NoError(t, a.AddcmulInPlace(b, b, 2))
	require.NoError(t, a.AddcdivInPlace(b, b, -1)) // 2 10 23
	require.NoError(t, a.SubInPlace(b))            // 1 8 20
	require.NoError(t, a.AddScaledInPlace(b, 3))   // 4 14 29
	require.NoError(t, a.DivInPlace(b))            // 4 7 29/3
	require.NoError(t, a.LerpInPlace(b, 0.5))
	v, _ := a.Float64s()
	assert.InDeltaSlice(t, []float64{2.5, 4.5, (29.0/3 + 3) / 2}, v, 1e-12)
	require.NoError(t, a.ClampInPlace(3, 5))
	v, _ = a.Float64s()
	assert.Equal(t, []float64{3, 4.5, 5}, v)
	require.NoError(t, a.CopyFrom(b))
	require.NoError(t, a.SqrtInPlace())
	require.NoError(t, a.MaximumInPlace(torch.Full([]int64{3}, 1.5, torch.Float64, s)))
	v, _ = a.Float64s()
	assert.InDeltaSlice(t, []float64{1.5, 1.5, 1.7320508075688772}, v, 1e-12)
	require.NoError(t, a.Fill(2))
	require.NoError(t, a.Zero())
	v, _ = a.Float64s()
	assert.Equal(t, []float64{0, 0, 0}, v)
	require.Error(t, a.AddInPlace(torch.Zeros([]int64{4}, torch.Float64, s)), "shape error is returned")
}

// settle runs the GC until cleanups of earlier tests' dropped tensors are
// done, so live counts can be compared.
func settle() {
	prev := int64(-1)
	for i := 0; i < 50; i++ {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
		n, _ := torch.Live()
		if n == prev {
			return
		}
		prev = n
	}
}

func TestScopesFreeWhatTheyOwn(t *testing.T) {
	settle()
	n0, _ := torch.Live()
	w := torch.Randn([]int64{4, 4}, torch.RequiresGrad)
	kept := func() *torch.Tensor {
		s := torch.NewScope()
		defer s.Close()
		x := torch.Randn([]int64{2, 4}, s)
		y := x.Matmul(w).Relu() // joins x's scope
		assert.Equal(t, s, y.Scope())
		z := x.Sum().Add(w) // first scoped operand decides
		assert.Equal(t, s, z.Scope())
		u := s.Track(w.MulScalar(2)) // only unscoped inputs: track the result
		assert.Equal(t, s, u.Scope())
		parts, err := y.Chunk(2, 1)
		require.NoError(t, err)
		assert.Equal(t, s, parts[1].Scope())
		return y.Sum().Keep()
	}()
	assert.Nil(t, kept.Scope())
	n, _ := torch.Live()
	assert.Equal(t, n0+2, n, "only the weight and the kept value remain")
	kept.Free()
	w.Free()
	n, _ = torch.Live()
	assert.Equal(t, n0, n)
}

func rss(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skip("no /proc/self/statm")
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// A thousand training-like steps leave the live-tensor count where it
// started and resident memory flat.
func TestTrainingStepsDoNotLeak(t *testing.T) {
	torch.ManualSeed(1)
	w := torch.Randn([]int64{8, 3, 3, 3}, torch.RequiresGrad)
	defer w.Free()
	b := torch.Zeros([]int64{8}, torch.RequiresGrad)
	defer b.Free()
	head := torch.Randn([]int64{2, 8, 1, 1}, torch.RequiresGrad)
	defer head.Free()
	params := []*torch.Tensor{w, b, head}
	step := func() {
		s := torch.NewScope()
		defer s.Close()
		x := torch.Randn([]int64{2, 3, 16, 16}, s)
		y := torch.RandInt(0, 2, []int64{2, 16, 16}, s)
		h := torch.Conv2d(x, w, b, [2]int64{1, 1}, [2]int64{1, 1}, [2]int64{1, 1}, 1)
		h = torch.BatchNorm(h, nil, nil, nil, nil, true, 0.1, 1e-5).Relu()
		logits := torch.Conv2d(h, head, nil, [2]int64{1, 1}, [2]int64{0, 0}, [2]int64{1, 1}, 1)
		loss := torch.CrossEntropy(logits, y, nil, torch.ReduceMean, -100, 0)
		require.NoError(t, loss.Backward())
		torch.NoGrad(func() {
			for _, p := range params {
				g := s.Track(p.Grad())
				require.NoError(t, p.AddScaledInPlace(g, -0.01))
				require.NoError(t, p.ZeroGrad(true))
			}
		})
	}
	for i := 0; i < 50; i++ { // warm up allocator caches
		step()
	}
	settle()
	n0, b0 := torch.Live()
	r0 := rss(t)
	leaked0 := torch.Leaked()
	for i := 0; i < 1000; i++ {
		step()
	}
	settle()
	n1, b1 := torch.Live()
	r1 := rss(t)
	assert.Equal(t, n0, n1, "live tensors")
	assert.Equal(t, b0, b1, "live bytes")
	assert.Less(t, r1-r0, int64(16<<20), "resident memory grew by %d bytes", r1-r0)
	assert.Equal(t, leaked0, torch.Leaked(), "no tensor reached the GC safety net")
}

func TestLeakSafetyNet(t *testing.T) {
	before := torch.Leaked()
	n0, _ := torch.Live()
	func() {
		for i := 0; i < 10; i++ {
			_ = torch.Zeros([]int64{16})
		}
	}()
	for i := 0; i < 20 && torch.Leaked() < before+10; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	assert.GreaterOrEqual(t, torch.Leaked(), before+10, "dropped tensors are counted as leaks")
	n1, _ := torch.Live()
	assert.LessOrEqual(t, n1, n0, "and released")
}

// Large CPU tensors come back from the block cache: a freed block serves
// the next tensor of its size or of down to half of it, not a smaller or a
// larger one, and turning the cache off frees what it holds.
func TestCPUCache(t *testing.T) {
	was := torch.SetCPUCache(1 << 30) // independent of JMEDSEG_CPU_CACHE
	defer torch.SetCPUCache(was)
	torch.EmptyCPUCache()
	kib := func(n int64) []int64 { return []int64{n << 8} } // n KiB of float32
	_, _, h0, m0 := torch.CPUCache()
	a := torch.Zeros(kib(8192))
	a.Free()
	bytes, blocks, _, _ := torch.CPUCache()
	assert.Equal(t, int64(1), blocks)
	assert.GreaterOrEqual(t, bytes, int64(8<<20))
	for _, tc := range []struct {
		name string
		kib  int64
		hit  bool
	}{
		{"same size", 8192, true},
		{"smaller", 4500, true},
		{"much smaller", 3000, false},
		{"larger", 9216, false},
	} {
		_, _, h1, m1 := torch.CPUCache()
		x := torch.Ones(kib(tc.kib))
		_, _, h2, m2 := torch.CPUCache()
		assert.Equal(t, tc.hit, h2 == h1+1, tc.name)
		assert.Equal(t, !tc.hit, m2 == m1+1, tc.name)
		// The reused block holds what the new tensor says.
		s := x.Sum()
		v, err := s.Item()
		require.NoError(t, err)
		assert.InDelta(t, float64(tc.kib<<8), v, 0.5, tc.name)
		s.Free()
		x.Free()
	}
	_, _, h3, m3 := torch.CPUCache()
	assert.Greater(t, h3, h0)
	assert.Greater(t, m3, m0)
	// Small tensors do not enter it.
	small := torch.Zeros([]int64{1000})
	_, n0, _, _ := torch.CPUCache()
	small.Free()
	_, n1, _, _ := torch.CPUCache()
	assert.Equal(t, n0, n1)
	// Off frees it; freed blocks then go back to malloc.
	torch.SetCPUCache(0)
	bytes, blocks, _, _ = torch.CPUCache()
	assert.Zero(t, bytes)
	assert.Zero(t, blocks)
	b := torch.Zeros(kib(4096))
	b.Free()
	_, blocks, _, _ = torch.CPUCache()
	assert.Zero(t, blocks)
	assert.Equal(t, int64(0), torch.SetCPUCache(-1))
}

// JMEDSEG_CPU_CACHE sets the cache's limit at start; a value that is not a
// byte count is named on stderr and the default kept.
func TestCPUCacheEnv(t *testing.T) {
	if os.Getenv("JMEDSEG_CPU_CACHE_CHILD") != "" {
		fmt.Printf("limit %d\n", torch.SetCPUCache(-1))
		return
	}
	for _, tc := range []struct{ env, want string }{
		{"12345678", "limit 12345678"},
		{"0", "limit 0"},
		{"lots", "JMEDSEG_CPU_CACHE=lots is not a byte count"},
		{"-1", "JMEDSEG_CPU_CACHE=-1 is not a byte count"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCPUCacheEnv$")
		cmd.Env = append(os.Environ(), "JMEDSEG_CPU_CACHE_CHILD=1", "JMEDSEG_CPU_CACHE="+tc.env)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), tc.want, tc.env)
	}
}
