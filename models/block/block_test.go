package block_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func keys(n nn.Node) []string {
	var out []string
	for _, e := range n.StateDict() {
		out = append(out, e.Name)
	}
	return out
}

func bn(prefix string) []string {
	return []string{prefix + ".weight", prefix + ".bias", prefix + ".running_mean", prefix + ".running_var", prefix + ".num_batches_tracked"}
}

func cat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Each block's state-dict keys, in order, are the reference's.
func TestStateDictKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    nn.Node
		want []string
	}{
		{"CBR", nn.Seq(block.CBR(3, 8, 3)...), cat([]string{"0.weight", "0.bias"}, bn("1"))},
		{"CBR/nobias/nonorm", nn.Seq(block.CBR(3, 8, 3, block.NoBias(), block.Norm(nil))...), []string{"0.weight"}},
		{"CBR/normlayer", nn.Seq(block.CBR(3, 64, 1, block.Norm(block.NormLayer))...), []string{"0.weight", "0.bias", "1.norm.weight", "1.norm.bias"}},
		{"ConvNormAct", block.NewConvNormAct(3, 8, 3, block.NoBias()), cat([]string{"conv.weight"}, bn("bn"))},
		{"ConvNormAct/names", block.NewConvNormAct(3, 8, 3, block.Names("conv_s1", "bn_s1")), cat([]string{"conv_s1.weight", "conv_s1.bias"}, bn("bn_s1"))},
		{"DoubleConv", block.NewDoubleConv(3, 8, 4), cat([]string{"double_conv.0.weight", "double_conv.0.bias"}, bn("double_conv.1"),
			[]string{"double_conv.3.weight", "double_conv.3.bias"}, bn("double_conv.4"))},
		{"Up", block.NewUp(16, 4, 8), cat([]string{"conv.double_conv.0.weight", "conv.double_conv.0.bias"}, bn("conv.double_conv.1"),
			[]string{"conv.double_conv.3.weight", "conv.double_conv.3.bias"}, bn("conv.double_conv.4"))},
		{"SE", block.NewSE(32), []string{"linear_1.weight", "linear_1.bias", "linear_2.weight", "linear_2.bias"}},
		{"SE/conv", block.NewSE(32, block.ConvForm(), block.Reduction(4)), []string{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}},
		{"SSE", block.NewSSE(32), []string{"conv.weight", "conv.bias"}},
		{"SCSE", block.NewSCSE(32), []string{"spatial_gate.linear_1.weight", "spatial_gate.linear_1.bias", "spatial_gate.linear_2.weight",
			"spatial_gate.linear_2.bias", "channel_gate.conv.weight", "channel_gate.conv.bias"}},
		{"AttentionGate", block.NewAttentionGate(8, 8, 4), cat([]string{"W_g.0.weight", "W_g.0.bias"}, bn("W_g.1"), []string{"W_x.0.weight", "W_x.0.bias"},
			bn("W_x.1"), []string{"psi.0.weight", "psi.0.bias"}, bn("psi.1"))},
		{"AttentionGate/instancenorm", block.NewAttentionGate(8, 8, 4, block.Norm(block.InstanceNorm)),
			[]string{"W_g.0.weight", "W_g.0.bias", "W_x.0.weight", "W_x.0.bias", "psi.0.weight", "psi.0.bias"}},
		{"ASPP", block.NewASPP(8, 4, [3]int64{6, 12, 18}), cat([]string{"aspp1.0.weight"}, bn("aspp1.1"), []string{"aspp2.0.weight"}, bn("aspp2.1"),
			[]string{"aspp3.0.weight"}, bn("aspp3.1"), []string{"aspp4.0.weight"}, bn("aspp4.1"), []string{"global_avg_pool.1.weight"},
			bn("global_avg_pool.2"), []string{"conv1.weight"}, bn("bn1"))},
		{"PyramidPool", block.NewPyramidPool(8, 4, 6), cat([]string{"conv.1.weight"}, bn("conv.2"))},
		{"LinkNetDecoder", block.NewLinkNetDecoder(16, 8), cat([]string{"conv1.weight", "conv1.bias"}, bn("norm1"), []string{"deconv2.weight", "deconv2.bias"},
			bn("norm2"), []string{"conv3.weight", "conv3.bias"}, bn("norm3"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.m.Free()
			require.NoError(t, tc.m.Err())
			assert.Equal(t, tc.want, keys(tc.m))
		})
	}
}

// Parameter counts at the reference sizes: deeplab's ASPP on 2048
// channels, PSPNet's 512-channel bin, CE-Net's first LinkNet decoder, an
// Attention U-Net gate, scseunet's deepest SCSE.
func TestParameterCounts(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    nn.Node
		want int64
	}{
		// 4 branches + pool branch (2048·256 + 3·2048·256·9 + 2048·256), 5
		// BatchNorms of 256, the 1×1 fuse 1280·256 and its BatchNorm.
		{"ASPP", block.NewASPP(2048, 256, [3]int64{6, 12, 18}), 2048*256*2 + 3*2048*256*9 + 5*512 + 1280*256 + 512},
		{"PyramidPool", block.NewPyramidPool(2048, 512, 6), 2048*512 + 1024},
		{"LinkNetDecoder", block.NewLinkNetDecoder(516, 256), 516*129 + 129 + 258 + 129*129*9 + 129 + 258 + 129*256 + 256 + 512},
		{"AttentionGate", block.NewAttentionGate(512, 512, 256), 2*(512*256+256+512) + 256 + 1 + 2},
		{"SCSE", block.NewSCSE(512), 512*32 + 32 + 32*512 + 512 + 512 + 1},
		{"DoubleConv", block.NewDoubleConv(1024, 256, 512), 1024*512*9 + 512 + 1024 + 512*256*9 + 256 + 512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.m.Free()
			require.NoError(t, tc.m.Err())
			assert.Equal(t, tc.want, tc.m.NumParams())
		})
	}
}

func TestNormLayerGroups(t *testing.T) {
	for c, g := range map[int64]int64{2048: 32, 512: 32, 511: 16, 256: 16, 128: 8, 64: 4, 63: 1, 32: 1} {
		assert.Equal(t, g, block.NormLayerGroups(c), "%d channels", c)
	}
}

// Bad sizes and options a block does not take are errors on the module,
// seen by a parent and by Forward.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    nn.Node
		want string
	}{
		{"CBR option", nn.Seq(block.CBR(3, 8, 3, block.Reduction(4))...), "CBR does not take option Reduction"},
		{"CBR size", nn.Seq(block.CBR(3, 0, 3)...), "out 0 must be positive"},
		{"CBR groups", nn.Seq(block.CBR(3, 8, 3, block.Groups(2))...), "not divisible into 2 groups"},
		{"ConvNormAct option", block.NewConvNormAct(3, 8, 3, block.Gate(block.SoftmaxAll)), "ConvNormAct does not take option Gate"},
		{"DoubleConv option", block.NewDoubleConv(3, 8, 0, block.Stride(2)), "DoubleCBR does not take option Stride"},
		{"Up option", block.NewUp(16, 8, 8, block.Names("a", "b")), "Up does not take option Names"},
		{"Up size", block.NewUp(16, 8, 0), "mid 0 must be positive"},
		{"SE option", block.NewSE(32, block.NoBias()), "SE does not take option NoBias"},
		{"SE reduction", block.NewSE(8), "8 channels reduced 16 times"},
		{"SCSE reduction", block.NewSCSE(8), "8 channels reduced 16 times"},
		{"SSE option", block.NewSSE(8, block.ConvForm()), "SSE does not take option ConvForm"},
		{"AttentionGate option", block.NewAttentionGate(8, 8, 4, block.Act(block.ReLU6)), "AttentionGate does not take option Act"},
		{"AttentionGate norm", block.NewAttentionGate(8, 8, 4, block.Norm(nil)), "needs a normalisation"},
		{"ASPP", block.NewASPP(8, 4, [3]int64{6, 0, 18}), "rate 2 0 must be positive"},
		{"PyramidPool", block.NewPyramidPool(8, 4, 0), "bin 0 must be positive"},
		{"LinkNetDecoder", block.NewLinkNetDecoder(10, 4), "not a multiple of 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.m.Free()
			require.ErrorContains(t, tc.m.Err(), tc.want)
			var parent nn.Base
			parent.RegisterModule("child", tc.m)
			require.ErrorContains(t, parent.Err(), tc.want)
			s := torch.NewScope()
			defer s.Close()
			x := torch.Zeros([]int64{1, 8, 8, 8}, s)
			var y *torch.Tensor
			switch m := tc.m.(type) {
			case nn.Merger:
				y = m.Merge(x, x)
			case nn.Module:
				y = m.Forward(x)
			}
			require.Error(t, y.Err())
		})
	}
	s := torch.NewScope()
	defer s.Close()
	x := torch.Zeros([]int64{1, 8, 8, 8}, s)
	require.ErrorContains(t, block.NewAttentionGate(8, 8, 4).Merge(x).Err(), "Merge takes (g, x), got 1 inputs")
	require.ErrorContains(t, block.NewUp(16, 8, 8).Merge(x, x, x).Err(), "Merge takes (x, skip), got 3 inputs")
}

// Calling a block on an unscoped input under NoGrad leaves only the
// result, and nothing for the garbage collector's safety net.
func TestUnscopedForwardLeavesNothing(t *testing.T) {
	mods := []nn.Node{
		nn.Seq(block.CBR(8, 8, 3)...), block.NewConvNormAct(8, 8, 3, block.Act(block.ReLU6)), block.NewDoubleConv(8, 8, 4),
		block.NewUp(16, 8, 8), block.NewSE(8, block.Reduction(4)), block.NewSCSE(8, block.Reduction(2), block.Gate(block.SoftmaxAll)),
		block.NewAttentionGate(8, 8, 4), block.NewASPP(8, 4, [3]int64{1, 2, 3}), block.NewPyramidPool(8, 4, 2), block.NewLinkNetDecoder(8, 4),
	}
	leaked0 := torch.SettleLeaks()
	for _, m := range mods {
		require.NoError(t, m.Err())
		m.Eval()
		x := torch.Randn([]int64{1, 8, 8, 8})
		n0, _ := torch.Live()
		torch.NoGrad(func() {
			var y *torch.Tensor
			switch m := m.(type) {
			case nn.Merger:
				y = m.Merge(x, x)
			case nn.Module:
				y = m.Forward(x)
			}
			require.NoError(t, y.Err())
			assert.Nil(t, y.Scope())
			n, _ := torch.Live()
			assert.Equal(t, n0+1, n, "%T: only the result is alive", m)
			y.Free()
		})
		x.Free()
		m.Free()
	}
	assert.Equal(t, leaked0, torch.SettleLeaks(), "nothing left for the safety net")
}

func TestPadTo(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := torch.Ones([]int64{1, 1, 3, 4}, s)
	y := block.PadTo(x, torch.Zeros([]int64{1, 1, 6, 5}, s))
	require.NoError(t, y.Err())
	assert.Equal(t, []int64{1, 1, 6, 5}, y.Shape())
	v, _ := y.Float64s()
	assert.Equal(t, 12.0, sum(v))
	assert.Equal(t, 0.0, v[0], "one row on top (3/2), one column left of none (1/2)")
	same := block.PadTo(x, x)
	assert.NotSame(t, x, same, "a new handle")
	same.Free()
	assert.True(t, x.Valid())
}

func sum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}
