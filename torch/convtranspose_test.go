package torch_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/torch"
)

// TestConvTranspose2dOneDNN: a strided transposed convolution runs as the
// 1×1 convolution and pixel shuffle (kernel = stride) or the convolution of
// the spread-out input, with at::conv_transpose2d's outputs and gradients
// (float64 the reference, to 1e-5 of their scale); every other one is
// at::conv_transpose2d itself.
func TestConvTranspose2dOneDNN(t *testing.T) {
	if !torch.OneDNNConv() {
		t.Skip("libtorch without MKLDNN")
	}
	zero, one := [2]int64{0, 0}, [2]int64{1, 1}
	cases := []struct {
		name                         string
		x, w                         []int64
		bias                         bool
		stride, padding, outPad, dil [2]int64
		groups                       int64
		layout                       string
		form                         int // 0 at::conv_transpose2d, 1 the 1×1 form, 2 spread out
	}{
		{"2x2 stride 2", []int64{2, 6, 5, 7}, []int64{6, 4, 2, 2}, true, [2]int64{2, 2}, zero, zero, one, 1, "", 1},
		{"2x2 stride 2 no bias, batch 1", []int64{1, 16, 8, 8}, []int64{16, 8, 2, 2}, false, [2]int64{2, 2}, zero, zero, one, 1, "", 1},
		{"4x4 stride 4", []int64{3, 5, 4, 3}, []int64{5, 2, 4, 4}, true, [2]int64{4, 4}, zero, zero, one, 1, "", 1},
		{"channels-last", []int64{2, 8, 6, 6}, []int64{8, 3, 2, 2}, true, [2]int64{2, 2}, zero, zero, one, 1, "channels_last", 1},
		{"non-contiguous", []int64{2, 8, 6, 10}, []int64{8, 3, 2, 2}, true, [2]int64{2, 2}, zero, zero, one, 1, "strided", 1},
		{"3x3 stride 2 padded", []int64{2, 4, 5, 5}, []int64{4, 3, 3, 3}, true, [2]int64{2, 2}, one, one, one, 1, "", 2},
		{"3x3 stride 2 padded, 32 channels (Winograd)", []int64{2, 32, 16, 15}, []int64{32, 32, 3, 3}, true, [2]int64{2, 2}, one, one, one, 1, "", 2},
		{"4x4 stride 2", []int64{1, 4, 5, 5}, []int64{4, 3, 4, 4}, true, [2]int64{2, 2}, one, zero, one, 1, "", 2},
		{"2x2 stride 2 output padding", []int64{2, 4, 5, 4}, []int64{4, 3, 2, 2}, false, [2]int64{2, 2}, zero, one, one, 1, "channels_last", 2},
		{"rectangular stride", []int64{1, 4, 5, 5}, []int64{4, 3, 2, 1}, true, [2]int64{2, 1}, zero, zero, one, 1, "", 2},
		{"padding past the kernel", []int64{1, 4, 5, 5}, []int64{4, 3, 2, 2}, true, [2]int64{2, 2}, [2]int64{2, 2}, zero, one, 1, "", 0},
		{"grouped", []int64{1, 4, 5, 5}, []int64{4, 1, 2, 2}, true, [2]int64{2, 2}, zero, zero, one, 2, "", 0},
		{"dilated", []int64{1, 4, 5, 5}, []int64{4, 3, 3, 3}, true, [2]int64{2, 2}, zero, zero, [2]int64{2, 2}, 1, "", 0},
		{"stride 1", []int64{1, 4, 5, 5}, []int64{4, 3, 1, 1}, true, one, zero, zero, one, 1, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := torch.NewScope()
			defer s.Close()
			before, _ := torch.Live()
			torch.ManualSeed(3)
			x0, w0 := torch.Randn(c.x, torch.Float64, s), torch.Randn(c.w, torch.Float64, s)
			var b0 *torch.Tensor
			if c.bias {
				b0 = torch.Randn([]int64{c.w[1] * c.groups}, torch.Float64, s)
			}
			// grads runs conv on detached copies (dtype) and returns the output
			// and the gradients of x, w and b for a fixed upstream gradient.
			grads := func(dtype torch.DType, conv func(x, w, b *torch.Tensor) *torch.Tensor) []*torch.Tensor {
				x := inLayout(s, s.Track(s.Track(x0.ToDType(dtype)).Detach()), c.layout)
				params := []*torch.Tensor{x, s.Track(s.Track(w0.ToDType(dtype)).Detach())}
				if b0 != nil {
					params = append(params, s.Track(s.Track(b0.ToDType(dtype)).Detach()))
				} else {
					params = append(params, nil)
				}
				for _, p := range params {
					if p != nil {
						require.NoError(t, p.SetRequiresGrad(true))
					}
				}
				y := s.Track(conv(params[0], params[1], params[2]))
				require.NoError(t, y.Err())
				torch.ManualSeed(11)
				g := s.Track(torch.Randn(y.Shape(), torch.Float64, s).ToDType(dtype))
				require.NoError(t, y.Mul(g).Sum().Backward())
				out := []*torch.Tensor{s.Track(y.ToDType(torch.Float64))}
				for _, p := range params {
					if p != nil {
						out = append(out, s.Track(s.Track(p.Grad()).ToDType(torch.Float64)))
					}
				}
				return out
			}
			ref := grads(torch.Float64, func(x, w, b *torch.Tensor) *torch.Tensor {
				return torch.ConvTranspose2d(x, w, b, c.stride, c.padding, c.outPad, c.dil, c.groups)
			})
			var form int
			have := grads(torch.Float32, func(x, w, b *torch.Tensor) *torch.Tensor {
				y, used := torch.ConvTranspose2dWhich(x, w, b, c.stride, c.padding, c.outPad, c.dil, c.groups)
				form = used
				return y
			})
			assert.Equal(t, c.form, form, "the form that ran")
			for i := range ref {
				require.NoError(t, have[i].Err(), "tensor %d", i)
				require.Equal(t, ref[i].Shape(), have[i].Shape(), "tensor %d", i)
				assert.LessOrEqual(t, relDiff(t, have[i], ref[i]), 1e-5, "output, then gradients: %d", i)
			}
			s.Close()
			after, _ := torch.Live()
			assert.Equal(t, before, after, "no handles leak")
		})
	}

	// Off: at::conv_transpose2d, bit for bit; a bad bias gets its error.
	s := torch.NewScope()
	defer s.Close()
	x, w := torch.Randn([]int64{1, 4, 3, 3}, s), torch.Randn([]int64{4, 2, 2, 2}, s)
	two := [2]int64{2, 2}
	ref := s.Track(torch.ConvTranspose2d(x, w, nil, two, zero, zero, one, 1))
	func() {
		defer torch.SetOneDNNConv(torch.SetOneDNNConv(false))
		y, used := torch.ConvTranspose2dWhich(x, w, nil, two, zero, zero, one, 1)
		s.Track(y)
		assert.Zero(t, used)
		assert.Equal(t, 0.0, maxAbsDiff(t, y, ref))
	}()
	y, _ := torch.ConvTranspose2dWhich(x, w, torch.Randn([]int64{3}, s), two, zero, zero, one, 1)
	require.Error(t, y.Err(), "bias of 3 for 2 output channels")
}
