package torch_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/torch"
)

// relDiff is max|a−b| / max|b|.
func relDiff(t *testing.T, a, b *torch.Tensor) float64 {
	t.Helper()
	d := maxAbsDiff(t, a, b)
	m, err := b.Abs().Max().Item()
	require.NoError(t, err)
	return d / m
}

type convCase struct {
	name                      string
	x, w                      []int64
	bias                      bool
	stride, padding, dilation [2]int64
	groups                    int64
	layout                    string // "", "channels_last", "strided" (a non-contiguous slice)
}

var convCases = []convCase{
	// batch 1, 3×3 on a small map: at::conv2d's heuristic runs the native kernel
	{"batch1-3x3", []int64{1, 8, 12, 12}, []int64{16, 8, 3, 3}, true, [2]int64{1, 1}, [2]int64{1, 1}, [2]int64{1, 1}, 1, ""},
	{"batch1-dilated", []int64{1, 16, 10, 10}, []int64{8, 16, 3, 3}, false, [2]int64{1, 1}, [2]int64{4, 4}, [2]int64{4, 4}, 1, ""},
	{"batch1-dilated-past-edge", []int64{1, 4, 6, 6}, []int64{4, 4, 3, 3}, false, [2]int64{1, 1}, [2]int64{6, 6}, [2]int64{6, 6}, 1, ""},
	{"strided-rect", []int64{2, 3, 17, 11}, []int64{5, 3, 3, 5}, true, [2]int64{2, 1}, [2]int64{1, 2}, [2]int64{1, 1}, 1, ""},
	{"1x1", []int64{1, 32, 8, 8}, []int64{16, 32, 1, 1}, true, [2]int64{1, 1}, [2]int64{0, 0}, [2]int64{1, 1}, 1, ""},
	{"grouped", []int64{2, 8, 9, 9}, []int64{8, 2, 3, 3}, true, [2]int64{1, 1}, [2]int64{1, 1}, [2]int64{1, 1}, 4, ""},
	{"depthwise-7x7", []int64{1, 6, 16, 16}, []int64{6, 1, 7, 7}, false, [2]int64{1, 1}, [2]int64{3, 3}, [2]int64{1, 1}, 6, ""},
	{"channels-last", []int64{1, 8, 12, 12}, []int64{4, 8, 3, 3}, true, [2]int64{1, 1}, [2]int64{1, 1}, [2]int64{1, 1}, 1, "channels_last"},
	{"non-contiguous", []int64{2, 8, 12, 16}, []int64{4, 8, 3, 3}, true, [2]int64{1, 1}, [2]int64{1, 1}, [2]int64{1, 1}, 1, "strided"},
}

func (c convCase) inputs(s *torch.Scope) (x, w, b *torch.Tensor) {
	torch.ManualSeed(7)
	x = torch.Randn(c.x, s)
	w = torch.Randn(c.w, s)
	if c.bias {
		b = torch.Randn([]int64{c.w[0]}, s)
	}
	return inLayout(s, x, c.layout), w, b
}

// inLayout returns x as layout names it: "" as it is, "channels_last", or
// "strided" (a window of the width, 4 narrower: rows are not contiguous).
func inLayout(s *torch.Scope, x *torch.Tensor, layout string) *torch.Tensor {
	switch layout {
	case "channels_last":
		return s.Track(x.ContiguousAs(torch.ChannelsLastFormat))
	case "strided":
		return s.Track(x.Narrow(3, 2, x.Size(3)-4))
	}
	return x
}

// TestConv2dOneDNNEqualsConv2d: oneDNN runs for every float32 CPU case and
// gives at::conv2d's (PyTorch eager's) outputs and gradients to 1e-5.
func TestConv2dOneDNNEqualsConv2d(t *testing.T) {
	if !torch.OneDNNConv() {
		t.Skip("libtorch without MKLDNN")
	}
	for _, c := range convCases {
		t.Run(c.name, func(t *testing.T) {
			s := torch.NewScope()
			defer s.Close()
			before, _ := torch.Live()
			x, w, b := c.inputs(s)
			ref := s.Track(torch.Conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups))
			got, used := torch.Conv2dKernel(x, w, b, c.stride, c.padding, c.dilation, c.groups)
			s.Track(got)
			require.NoError(t, got.Err())
			assert.True(t, used, "oneDNN ran")
			assert.Equal(t, ref.Shape(), got.Shape())
			assert.LessOrEqual(t, relDiff(t, got, ref), 1e-5)
			if c.layout == "channels_last" {
				assert.True(t, got.IsContiguousAs(torch.ChannelsLastFormat), "oneDNN keeps channels-last")
			}

			// Gradients of x, w and b for a fixed upstream gradient.
			grads := func(conv func(x, w, b *torch.Tensor) *torch.Tensor) []*torch.Tensor {
				xs, ws := s.Track(x.Detach()), s.Track(w.Detach())
				params := []*torch.Tensor{xs, ws}
				var bs *torch.Tensor
				if b != nil {
					bs = s.Track(b.Detach())
					params = append(params, bs)
				}
				for _, p := range params {
					require.NoError(t, p.SetRequiresGrad(true))
				}
				y := s.Track(conv(xs, ws, bs))
				torch.ManualSeed(11)
				g := torch.Randn(y.Shape(), s)
				require.NoError(t, y.Mul(g).Sum().Backward())
				var out []*torch.Tensor
				for _, p := range params {
					out = append(out, s.Track(p.Grad()))
				}
				return out
			}
			want := grads(func(x, w, b *torch.Tensor) *torch.Tensor {
				return torch.Conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups)
			})
			have := grads(func(x, w, b *torch.Tensor) *torch.Tensor {
				return torch.Conv2dOneDNN(x, w, b, c.stride, c.padding, c.dilation, c.groups)
			})
			for i := range want {
				require.NoError(t, have[i].Err())
				assert.LessOrEqual(t, relDiff(t, have[i], want[i]), 1e-5, "gradient %d", i)
			}
			s.Close()
			after, _ := torch.Live()
			assert.Equal(t, before, after, "no handles leak")
		})
	}
}

// TestConv2dOneDNNFallsBack: where oneDNN does not apply, Conv2dOneDNN is
// at::conv2d, bit for bit, and bad arguments get conv2d's error.
func TestConv2dOneDNNFallsBack(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	one := [2]int64{1, 1}
	x := torch.Randn([]int64{1, 4, 8, 8}, s)
	w := torch.Randn([]int64{3, 4, 3, 3}, s)
	cases := []struct {
		name string
		run  func() (*torch.Tensor, bool)
		ref  func() *torch.Tensor
	}{
		{"float64", func() (*torch.Tensor, bool) {
			return torch.Conv2dKernel(s.Track(x.ToDType(torch.Float64)), s.Track(w.ToDType(torch.Float64)), nil, one, one, one, 1)
		}, func() *torch.Tensor {
			return torch.Conv2d(s.Track(x.ToDType(torch.Float64)), s.Track(w.ToDType(torch.Float64)), nil, one, one, one, 1)
		}},
		{"unbatched 3-D input", func() (*torch.Tensor, bool) {
			return torch.Conv2dKernel(s.Track(x.SqueezeDim(0)), w, nil, one, one, one, 1)
		}, func() *torch.Tensor { return torch.Conv2d(s.Track(x.SqueezeDim(0)), w, nil, one, one, one, 1) }},
		{"off on this goroutine", func() (r *torch.Tensor, used bool) {
			torch.WithoutOneDNNConv(func() { r, used = torch.Conv2dKernel(x, w, nil, one, one, one, 1) })
			return r, used
		}, func() *torch.Tensor { return torch.Conv2d(x, w, nil, one, one, one, 1) }},
		{"switched off", func() (*torch.Tensor, bool) {
			defer torch.SetOneDNNConv(torch.SetOneDNNConv(false))
			return torch.Conv2dKernel(x, w, nil, one, one, one, 1)
		}, func() *torch.Tensor { return torch.Conv2d(x, w, nil, one, one, one, 1) }},
		{"autocast bf16", func() (r *torch.Tensor, used bool) {
			require.NoError(t, torch.Autocast(torch.CPU, torch.BFloat16, func() {
				r, used = torch.Conv2dKernel(x, w, nil, one, one, one, 1)
			}))
			assert.Equal(t, torch.BFloat16, r.DType(), "autocast still casts")
			return r, used
		}, func() (r *torch.Tensor) {
			require.NoError(t, torch.Autocast(torch.CPU, torch.BFloat16, func() { r = torch.Conv2d(x, w, nil, one, one, one, 1) }))
			return r
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, used := c.run()
			s.Track(got)
			require.NoError(t, got.Err())
			assert.False(t, used)
			assert.Equal(t, 0.0, maxAbsDiff(t, got.ToDType(torch.Float64), s.Track(c.ref()).ToDType(torch.Float64)))
		})
	}

	bad := []struct {
		name, want string
		x, w       *torch.Tensor
		pad        [2]int64
	}{
		{"channels", "channels", x, torch.Randn([]int64{3, 5, 3, 3}, s), one},
		{"kernel larger than the padded input", "Kernel size can't be greater than actual input size", x, torch.Randn([]int64{3, 4, 11, 11}, s), [2]int64{0, 0}},
		{"negative padding", "negative padding", x, w, [2]int64{-1, 0}},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			y, used := torch.Conv2dKernel(c.x, c.w, nil, one, c.pad, one, 1)
			assert.False(t, used)
			require.Error(t, y.Err())
			assert.Contains(t, y.Err().Error(), c.want)
		})
	}
	assert.True(t, torch.OneDNNConv(), "the switch is back on")
	_, used := torch.Conv2dKernel(x, w, nil, one, one, one, 1)
	assert.True(t, used, "the thread's override is gone")
}
