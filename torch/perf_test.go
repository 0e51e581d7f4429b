package torch_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/torch"
)

func maxAbsDiff(t *testing.T, a, b *torch.Tensor) float64 {
	t.Helper()
	d, err := a.Sub(b).Abs().Max().Item()
	require.NoError(t, err)
	return d
}

func TestContiguousAs(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := torch.Randn([]int64{2, 3, 4, 5}, s)
	cl := x.ContiguousAs(torch.ChannelsLastFormat)
	require.NoError(t, cl.Err())
	assert.Equal(t, x.Shape(), cl.Shape())
	assert.Equal(t, []int64{60, 1, 15, 3}, cl.Strides()) // NHWC
	assert.True(t, cl.IsContiguousAs(torch.ChannelsLastFormat))
	assert.False(t, x.IsContiguousAs(torch.ChannelsLastFormat))
	assert.Equal(t, 0.0, maxAbsDiff(t, x, cl))
	back := cl.ContiguousAs(torch.ContiguousFormat)
	assert.Equal(t, x.Strides(), back.Strides())
	// A convolution keeps the channels-last layout and the values.
	w := torch.Randn([]int64{4, 3, 3, 3}, s)
	y := torch.Conv2d(x, w, nil, [2]int64{1, 1}, [2]int64{1, 1}, [2]int64{1, 1}, 1)
	ycl := torch.Conv2d(cl, w.ContiguousAs(torch.ChannelsLastFormat), nil, [2]int64{1, 1}, [2]int64{1, 1}, [2]int64{1, 1}, 1)
	assert.True(t, ycl.IsContiguousAs(torch.ChannelsLastFormat))
	assert.Less(t, maxAbsDiff(t, y, ycl), 1e-5)
	err := torch.Randn([]int64{3, 4}, s).ContiguousAs(torch.ChannelsLastFormat).Err()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "4-D")
}

func TestAutocastBF16(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := torch.Randn([]int64{2, 3, 8, 8}, s)
	w := torch.Randn([]int64{4, 3, 3, 3}, s)
	ref := torch.Conv2d(x, w, nil, [2]int64{1, 1}, [2]int64{1, 1}, [2]int64{1, 1}, 1)
	var y *torch.Tensor
	require.NoError(t, torch.Autocast(torch.CPU, torch.BFloat16, func() {
		assert.True(t, torch.AutocastEnabled(torch.CPU))
		y = torch.Conv2d(x, w, nil, [2]int64{1, 1}, [2]int64{1, 1}, [2]int64{1, 1}, 1)
	}))
	assert.False(t, torch.AutocastEnabled(torch.CPU))
	require.NoError(t, y.Err())
	assert.Equal(t, torch.BFloat16, y.DType(), "the convolution ran in bfloat16")
	// bf16 keeps 8 bits of mantissa: a 27-term dot product of N(0,1) values
	// is off by a few hundredths at most.
	d := maxAbsDiff(t, ref, y.ToDType(torch.Float32))
	assert.Greater(t, d, 0.0)
	assert.Less(t, d, 0.25)
	// Outside the region the same call is float32 again.
	assert.Equal(t, torch.Float32, torch.Conv2d(x, w, nil, [2]int64{1, 1}, [2]int64{1, 1}, [2]int64{1, 1}, 1).DType())

	err := torch.Autocast(torch.CPU, torch.Float16, func() { t.Fatal("ran") })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bfloat16")
}

func TestForeachEqualsPerTensor(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	shapes := [][]int64{{3, 4}, {5}, {2, 2, 2}}
	mk := func() (xs, ys, zs []*torch.Tensor) {
		torch.ManualSeed(3)
		for _, sh := range shapes {
			xs = append(xs, torch.Randn(sh, s))
			ys = append(ys, torch.Randn(sh, s))
			zs = append(zs, torch.Randn(sh, s).Abs().AddScalar(0.5))
		}
		return
	}
	a, ay, az := mk()
	b, by, bz := mk()
	require.NoError(t, torch.ForeachScalar(torch.ForeachMulScalar, a, 0.9))
	require.NoError(t, torch.ForeachAddInPlace(a, ay, 0.1))
	require.NoError(t, torch.ForeachAddcmulInPlace(a, ay, az, 0.3))
	require.NoError(t, torch.ForeachAddcdivInPlace(a, ay, az, -0.2))
	require.NoError(t, torch.ForeachMaximumInPlace(a, az))
	require.NoError(t, torch.ForeachScalar(torch.ForeachAddScalar, a, 1e-3))
	require.NoError(t, torch.ForeachScalar(torch.ForeachDivScalar, a, 1.7))
	sq, err := torch.ForeachSqrt(a)
	require.NoError(t, err)
	sum, err := torch.ForeachAdd(sq, ay, 2)
	require.NoError(t, err)
	for i := range b {
		x := b[i]
		require.NoError(t, x.MulScalarInPlace(0.9))
		require.NoError(t, x.AddScaledInPlace(by[i], 0.1))
		require.NoError(t, x.AddcmulInPlace(by[i], bz[i], 0.3))
		require.NoError(t, x.AddcdivInPlace(by[i], bz[i], -0.2))
		require.NoError(t, x.MaximumInPlace(bz[i]))
		require.NoError(t, x.AddScalarInPlace(1e-3))
		require.NoError(t, x.DivScalarInPlace(1.7))
		// The same kernels run: bit for bit equal.
		assert.Equal(t, 0.0, maxAbsDiff(t, a[i], x), "tensor %d", i)
		assert.Equal(t, 0.0, maxAbsDiff(t, sum[i], x.Sqrt().AddScaled(by[i], 2)), "tensor %d", i)
	}
	require.NoError(t, torch.ForeachCopyInPlace(b, ay))
	assert.Equal(t, 0.0, maxAbsDiff(t, b[0], ay[0]))
	err = torch.ForeachAddInPlace(a, ay[:2], 1)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "has 2 tensors")
}

func TestGrads(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	p := torch.Randn([]int64{3}, torch.RequiresGrad)
	q := torch.Randn([]int64{2}, torch.RequiresGrad)
	defer p.Free()
	defer q.Free()
	require.NoError(t, s.Track(p.Mul(p)).Sum().Backward())
	gs, err := torch.Grads([]*torch.Tensor{p, q})
	require.NoError(t, err)
	require.Len(t, gs, 2)
	require.NotNil(t, gs[0])
	assert.Nil(t, gs[1])
	defer gs[0].Free()
	assert.Equal(t, 0.0, maxAbsDiff(t, gs[0], s.Track(p.MulScalar(2))))
}

func TestCUDAGraphNeedsCUDA(t *testing.T) {
	_, err := torch.NewCUDAGraph(torch.CPU)
	require.Error(t, err)
	if !torch.CUDAAvailable() {
		assert.False(t, torch.CUDAGraphsBuilt() && torch.CUDADeviceCount() > 0)
	}
}

// On CUDA (scripts/gpu-check.sh): autocast in both dtypes, the multi-tensor
// updates, and a CUDA graph whose replay equals eager execution on new
// input. Skipped without a GPU.
func TestCUDAPerf(t *testing.T) {
	if !torch.CUDAAvailable() {
		t.Skip("no CUDA device")
	}
	dev := torch.CUDA(0)
	s := torch.NewScope()
	defer s.Close()
	x := torch.Randn([]int64{2, 3, 16, 16}, dev, s)
	w := torch.Randn([]int64{4, 3, 3, 3}, dev, s)
	conv := func(x *torch.Tensor) *torch.Tensor {
		return torch.Conv2d(x, w, nil, [2]int64{1, 1}, [2]int64{1, 1}, [2]int64{1, 1}, 1)
	}
	ref := conv(x)
	for _, dt := range []torch.DType{torch.BFloat16, torch.Float16} {
		var y *torch.Tensor
		require.NoError(t, torch.Autocast(dev, dt, func() { y = conv(x) }))
		assert.Equal(t, dt, y.DType())
		assert.Less(t, maxAbsDiff(t, ref, y.ToDType(torch.Float32)), 0.25, "%s", dt)
	}
	a := []*torch.Tensor{torch.Randn([]int64{5}, dev, s), torch.Randn([]int64{3, 2}, dev, s)}
	b := []*torch.Tensor{a[0].Clone(), a[1].Clone()}
	require.NoError(t, torch.ForeachAddcmulInPlace(a, b, b, 0.5))
	for i := range a {
		assert.Less(t, maxAbsDiff(t, a[i], b[i].Add(b[i].Mul(b[i]).MulScalar(0.5))), 1e-6)
	}
	if !torch.CUDAGraphsBuilt() {
		t.Log("this build has no CUDA graphs (CUDA runtime headers missing at build time)")
		return
	}
	g, err := torch.NewCUDAGraph(dev)
	require.NoError(t, err)
	defer g.Free()
	static := torch.Zeros([]int64{2, 3, 16, 16}, dev)
	defer static.Free()
	require.NoError(t, g.Warmup(func() { conv(static).Relu().Free() }))
	var out *torch.Tensor
	require.NoError(t, g.Capture(func() { out = conv(static).Relu() }))
	defer out.Free()
	require.NoError(t, static.CopyFrom(x))
	require.NoError(t, g.Replay())
	assert.Less(t, maxAbsDiff(t, out, ref.Relu()), 1e-5)
}
