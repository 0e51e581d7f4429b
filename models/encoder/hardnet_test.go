package encoder_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models/encoder"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// HarDNet-68's trainable parameters without the classifier, at the
// reference width, as the PyTorch twin (internal/oracle/py/twins/hardnet.py,
// HarDNet68) counts them; built only to the 1/4 tap, base.0..base.4.
func TestHarDNetParameterCounts(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    *encoder.HarDNet
		want int64
	}{
		{"all", encoder.NewHarDNet68(), 16_540_348},
		{"to 1/4", encoder.NewHarDNet68(encoder.Taps(0)), 207_328},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.e.Free()
			require.NoError(t, tc.e.Err())
			assert.Equal(t, tc.want, tc.e.NumParams())
		})
	}
}

// The first harmonic block links and sizes its layers as the reference's
// get_link does.
func TestHarDBlockLinks(t *testing.T) {
	b := encoder.NewHarDBlock(64, 14, 1.7, 8)
	defer b.Free()
	require.NoError(t, b.Err())
	assert.Equal(t, int64(124), b.OutChannels())
	var in, out []int64
	for _, p := range b.NamedParameters() {
		if s := p.Tensor.Shape(); len(s) == 4 {
			out, in = append(out, s[0]), append(in, s[1])
		}
	}
	assert.Equal(t, []int64{14, 24, 14, 40, 14, 24, 14, 68}, out)
	assert.Equal(t, []int64{64, 78, 24, 102, 40, 54, 24, 142}, in)
	require.ErrorContains(t, encoder.NewHarDBlock(0, 14, 1.7, 8).Err(), "must be positive")
}

// Keys are the reference's "base.N" ModuleList, built to the deepest tap.
func TestHarDNetStateDictKeys(t *testing.T) {
	for _, tc := range []struct {
		name        string
		e           *encoder.HarDNet
		first, last string
		has, hasNot []string
	}{
		{"all", encoder.NewHarDNet68(encoder.Width(8)), "base.0.conv.weight", "base.15.norm.num_batches_tracked",
			[]string{"base.1.norm.running_mean", "base.3.layers.7.conv.weight", "base.4.conv.weight", "base.6.layers.15.norm.bias",
				"base.11.layers.0.conv.weight", "base.14.layers.3.norm.running_var"},
			[]string{"base.2.weight", "base.3.layers.8.conv.weight", "base.16.conv.weight", "base.4.conv.bias"}},
		{"to 1/8", encoder.NewHarDNet68(encoder.Width(8), encoder.Taps(1)), "base.0.conv.weight", "base.9.norm.num_batches_tracked",
			[]string{"base.8.layers.15.conv.weight"}, []string{"base.11.layers.0.conv.weight"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.e.Free()
			require.NoError(t, tc.e.Err())
			k := keys(tc.e)
			assert.Equal(t, tc.first, k[0])
			assert.Equal(t, tc.last, k[len(k)-1])
			for _, h := range tc.has {
				assert.True(t, slices.Contains(k, h), "missing %s", h)
			}
			for _, h := range tc.hasNot {
				assert.False(t, slices.Contains(k, h), "unexpected %s", h)
			}
		})
	}
}

// Channels and reductions describe the taps Split returns, at any width.
func TestHarDNetTapShapes(t *testing.T) {
	const side = 64
	for _, tc := range []struct {
		name       string
		e          *encoder.HarDNet
		channels   []int64
		reductions []int64
	}{
		{"width 8", encoder.NewHarDNet68(encoder.Width(8)), []int64{16, 40, 80, 128}, []int64{4, 8, 16, 32}},
		{"width 4, 1 input, taps 1,3", encoder.NewHarDNet68(encoder.Width(4), encoder.InChannels(1), encoder.Taps(1, 3)),
			[]int64{20, 64}, []int64{8, 32}},
		{"width 2, tap 0", encoder.NewHarDNet68(encoder.Width(2), encoder.Taps(0)), []int64{4}, []int64{4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.e.Free()
			require.NoError(t, tc.e.Err())
			assert.Equal(t, tc.channels, tc.e.Channels())
			assert.Equal(t, tc.reductions, tc.e.Reductions())
			in := tc.e.NamedParameters()[0].Tensor.Size(1)
			s := torch.NewScope()
			defer s.Close()
			ys := tc.e.Split(torch.Randn([]int64{2, in, side, side}, s))
			require.Len(t, ys, len(tc.channels))
			for i, y := range ys {
				require.NoError(t, y.Err())
				assert.Equal(t, []int64{2, tc.channels[i], side / tc.reductions[i], side / tc.reductions[i]}, y.Shape(), "tap %d", i)
				assert.Equal(t, s, y.Scope(), "tap %d joins the input's scope", i)
			}
		})
	}
}

// Bad options are errors on the module tree and from Split, also where a
// model registers the parts under its own names.
func TestHarDNetErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    *encoder.HarDNet
		want string
	}{
		{"output stride", encoder.NewHarDNet68(encoder.OutputStride(16)), "HarDNet-68 does not take option OutputStride"},
		{"norm", encoder.NewHarDNet68(encoder.Norm(nil)), "HarDNet-68 does not take option Norm"},
		{"taps range", encoder.NewHarDNet68(encoder.Taps(1, 4)), "tap 4"},
		{"taps order", encoder.NewHarDNet68(encoder.Taps(2, 1)), "not strictly ascending"},
		{"width", encoder.NewHarDNet68(encoder.Width(0)), "width 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.e.Free()
			require.ErrorContains(t, tc.e.Err(), tc.want)
			s := torch.NewScope()
			defer s.Close()
			ys := tc.e.Split(torch.Zeros([]int64{1, 3, 32, 32}, s))
			require.Len(t, ys, 1)
			require.ErrorContains(t, ys[0].Err(), tc.want)
			var parent nn.Base
			for _, p := range tc.e.Parts() {
				parent.RegisterModule("hardnet"+p.Name, p.Node)
			}
			require.ErrorContains(t, parent.Err(), tc.want)
		})
	}
}

// Training-mode forward and backward: every parameter gets a gradient and
// nothing outlives the step's scope; an unscoped forward under NoGrad
// leaves only its taps and nothing for the safety net.
func TestHarDNetForwardBackwardAndLeaks(t *testing.T) {
	torch.ManualSeed(1)
	e := encoder.NewHarDNet68(encoder.Width(8))
	defer e.Free()
	require.NoError(t, e.Err())
	n0, b0 := torch.Live()
	func() {
		s := torch.NewScope()
		defer s.Close()
		var loss *torch.Tensor
		for _, y := range e.Split(torch.Randn([]int64{2, 3, 64, 64}, s)) {
			l := y.Square().Mean()
			if loss == nil {
				loss = l
			} else {
				loss = loss.Add(l)
			}
		}
		require.NoError(t, loss.Backward())
		for _, p := range e.NamedParameters() {
			require.NotNil(t, s.Track(p.Tensor.Grad()), "%s has no gradient", p.Name)
		}
		require.NoError(t, e.ZeroGrad())
	}()
	n1, b1 := torch.Live()
	assert.Equal(t, n0, n1, "live tensors")
	assert.Equal(t, b0, b1, "live bytes")

	e.Eval()
	x := torch.Randn([]int64{1, 3, 64, 64})
	defer x.Free()
	leaked0 := torch.SettleLeaks()
	n0, _ = torch.Live()
	torch.NoGrad(func() {
		ys := e.Split(x)
		n, _ := torch.Live()
		assert.Equal(t, n0+int64(len(ys)), n, "only the taps are alive")
		for _, y := range ys {
			require.NoError(t, y.Err())
			assert.Nil(t, y.Scope())
			y.Free()
		}
	})
	n1, _ = torch.Live()
	assert.Equal(t, n0, n1)
	assert.Equal(t, leaked0, torch.SettleLeaks(), "nothing left for the safety net")
}
