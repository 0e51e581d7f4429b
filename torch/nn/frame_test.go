package nn_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func live() int64 { n, _ := torch.Live(); return n }

func TestFrameFreesIntermediates(t *testing.T) {
	tests := []struct {
		name string
		body func(x *torch.Tensor) *torch.Tensor
	}{
		{"chain", func(x *torch.Tensor) *torch.Tensor { return x.Exp().AddScalar(1).MulScalar(2) }},
		{"input returned", func(x *torch.Tensor) *torch.Tensor { _ = x.Exp(); return x }},
		{"in place", func(x *torch.Tensor) *torch.Tensor { return nn.ReluInPlace(x.Neg()) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Unscoped: the caller owns the result and nothing else remains.
			x := torch.Ones([]int64{2, 3})
			before := live()
			y := nn.Frame(x, tc.body)
			require.NoError(t, y.Err())
			assert.Nil(t, y.Scope())
			assert.Equal(t, before+1, live(), "only the result survives")
			y.Free()
			v, err := x.Float64s()
			require.NoError(t, err, "freeing the result leaves the input alone")
			assert.Equal(t, 6, len(v))
			x.Free()

			// Scoped: the result joins the input's scope.
			s := torch.NewScope()
			xs := torch.Ones([]int64{2, 3}, s)
			n := s.Len()
			ys := nn.Frame(xs, tc.body)
			assert.Same(t, s, ys.Scope())
			assert.Equal(t, n+1, s.Len())
			s.Close()
			assert.Equal(t, before-1, live())
		})
	}
}

func TestFrameNKeepsEveryResult(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := torch.Ones([]int64{4}, s)
	y := torch.Zeros([]int64{4})
	defer y.Free()
	before := live()
	outs := nn.FrameN([]*torch.Tensor{x, y}, func(xs []*torch.Tensor) []*torch.Tensor {
		a := xs[0].Add(xs[1])
		return []*torch.Tensor{a, a, xs[1]}
	})
	require.Len(t, outs, 3)
	for _, o := range outs {
		require.NoError(t, o.Err())
		assert.Same(t, s, o.Scope())
	}
	assert.NotSame(t, outs[0], outs[1], "a result listed twice comes back as two handles")
	assert.Equal(t, before+3, live())
	outs[2].Free()
	_, err := y.Float64s()
	assert.NoError(t, err)
}

func TestFramePassesErrors(t *testing.T) {
	bad := torch.FromError(assert.AnError)
	called := false
	y := nn.Frame(bad, func(x *torch.Tensor) *torch.Tensor { called = true; return x })
	assert.ErrorIs(t, y.Err(), assert.AnError)
	assert.False(t, called)
	z := nn.Frame2(torch.Ones([]int64{1}), bad, func(x, y *torch.Tensor) *torch.Tensor { return x })
	assert.ErrorIs(t, z.Err(), assert.AnError)
}

func TestFrameNKeepsTheResultCountOnErrors(t *testing.T) {
	bad := torch.FromError(assert.AnError)
	conv := nn.NewConv2d(1, 2, 1)
	defer conv.Free()
	ys := nn.FrameN([]*torch.Tensor{torch.Ones([]int64{1, 1, 2, 2}), bad}, func(xs []*torch.Tensor) []*torch.Tensor {
		a := conv.Forward(xs[0])
		return []*torch.Tensor{a, a.Add(xs[1]), xs[1].Relu()}
	})
	require.Len(t, ys, 3) // callers index encoder taps and branches
	for _, y := range ys {
		assert.ErrorIs(t, y.Err(), assert.AnError)
	}
}

func TestBatchNormRefusesOneValuePerChannelInTraining(t *testing.T) {
	bn := nn.NewBatchNorm2d(3)
	defer bn.Free()
	for _, tc := range []struct {
		shape []int64
		ok    bool
	}{{[]int64{1, 3, 1, 1}, false}, {[]int64{2, 3, 1, 1}, true}, {[]int64{1, 3, 2, 1}, true}} {
		y := bn.Forward(torch.Ones(tc.shape))
		if tc.ok {
			assert.NoError(t, y.Err(), tc.shape)
		} else {
			assert.ErrorContains(t, y.Err(), "more than 1 value per channel", tc.shape)
		}
		y.Free()
	}
	v, err := bn.RunningVar.Float64s() // the refused batch left no NaN behind
	require.NoError(t, err)
	for _, x := range v {
		assert.False(t, math.IsNaN(x))
	}
	bn.Eval()
	y := bn.Forward(torch.Ones([]int64{1, 3, 1, 1}))
	assert.NoError(t, y.Err(), "evaluation takes a single value")
	y.Free()
}

func TestPathAddsANameLevel(t *testing.T) {
	p := nn.NewPath("conv", nn.NewConv2d(2, 3, 1))
	defer p.Free()
	require.NoError(t, p.Err())
	var keys []string
	for _, e := range p.StateDict() {
		keys = append(keys, e.Name)
	}
	assert.Equal(t, []string{"conv.weight", "conv.bias"}, keys)
	x := torch.Ones([]int64{1, 2, 4, 4})
	defer x.Free()
	y := p.Forward(x)
	defer y.Free()
	assert.Equal(t, []int64{1, 3, 4, 4}, y.Shape())
}

func TestUnusedOptionIsAnError(t *testing.T) {
	tests := []struct {
		name string
		m    nn.Node
		want string
	}{
		{"conv ceil", nn.NewConv2d(1, 1, 3, nn.CeilMode()), "Conv2d does not take the option CeilMode"},
		{"bn stride", nn.NewBatchNorm2d(4, nn.Stride(2)), "BatchNorm does not take the option Stride"},
		{"linear two", nn.NewLinear(2, 2, nn.Padding(1), nn.Groups(2)), "Linear does not take the option Padding, Groups"},
		{"upsample eps", nn.NewUpsample(2, torch.Bilinear, nn.Eps(1)), "Upsample does not take the option Eps"},
		{"pool groups", nn.NewMaxPool2d(2, nn.Groups(2)), "MaxPool2d does not take the option Groups"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.m.Free()
			require.Error(t, tc.m.Err())
			assert.Contains(t, tc.m.Err().Error(), tc.want)
		})
	}
	ok := nn.NewConv2d(1, 1, 3, nn.Stride(2), nn.Padding(1), nn.Dilation(1), nn.Groups(1), nn.NoBias(), nn.Kernel(3))
	defer ok.Free()
	assert.NoError(t, ok.Err())
}
