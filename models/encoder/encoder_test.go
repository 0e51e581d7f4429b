package encoder_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/models/encoder"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// Trainable parameter counts at the reference width 64 with 3 input
// channels. torchvision's counts with the classifier (ResNet-18 11,689,512,
// ResNet-34 21,797,672, ResNet-50 25,557,032, ResNet-101 44,549,160, VGG16
// 138,357,544, VGG16-BN 138,365,992) minus its fc (513,000 for 18/34,
// 2,049,000 for 50/101) or classifier (123,642,856); the deep-stem and
// GroupNorm counts are the twin's (testdata/twin.py), and ResNet-101 deep
// OS16 is what deeplab's 59,462,946 leaves after its ASPP and decoder.
func TestParameterCounts(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func() encoder.Encoder
		want int64
	}{
		{"resnet18", func() encoder.Encoder { return encoder.NewResNet(18) }, 11_689_512 - 513_000},
		{"resnet34", func() encoder.Encoder { return encoder.NewResNet(34) }, 21_797_672 - 513_000},
		{"resnet50", func() encoder.Encoder { return encoder.NewResNet(50) }, 25_557_032 - 2_049_000},
		{"resnet101", func() encoder.Encoder { return encoder.NewResNet(101) }, 44_549_160 - 2_049_000},
		{"resnet101/deep/os16", func() encoder.Encoder {
			return encoder.NewResNet(101, encoder.Stem(encoder.StemDeep), encoder.OutputStride(16), encoder.Multigrid(1, 2, 4))
		}, 42_623_680},
		{"resnet101/deepflat/os16", func() encoder.Encoder {
			return encoder.NewResNet(101, encoder.Stem(encoder.StemDeepFlat), encoder.OutputStride(16), encoder.Multigrid(1, 2, 4))
		}, 42_623_680},
		// ResUNet: the spec's 14,964,736 of layer4 fewer.
		{"resnet101/deep/to-layer3", func() encoder.Encoder {
			return encoder.NewResNet(101, encoder.Stem(encoder.StemDeep), encoder.OutputStride(16), encoder.Taps(0, 1, 2, 3))
		}, 42_623_680 - 14_964_736},
		// EANet's backbone; with its head this is the spec's computed 53,835,714.
		{"resnet101/eanet", func() encoder.Encoder {
			return encoder.NewResNet(101, encoder.Stem(encoder.StemDeepNorm), encoder.Norm(block.NormLayer),
				encoder.OutputStride(16), encoder.Layer4Dilations(1, 4, 8))
		}, 42_623_936},
		{"vgg16", func() encoder.Encoder { return encoder.NewVGG16() }, 138_357_544 - 123_642_856},
		{"vgg16bn", func() encoder.Encoder { return encoder.NewVGG16BN() }, 138_365_992 - 123_642_856},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.make()
			defer e.Free()
			require.NoError(t, e.Err())
			assert.Equal(t, tc.want, e.NumParams())
		})
	}
}

func keys(n nn.Node) []string {
	var out []string
	for _, e := range n.StateDict() {
		out = append(out, e.Name)
	}
	return out
}

// State-dict keys are torchvision's (or the reference's), in its order.
func TestStateDictKeys(t *testing.T) {
	for _, tc := range []struct {
		name        string
		e           encoder.Encoder
		first, last string
		has, hasNot []string
	}{
		{"resnet50", encoder.NewResNet(50, encoder.Width(4)), "conv1.weight", "layer4.2.bn3.num_batches_tracked",
			[]string{"bn1.running_mean", "bn1.num_batches_tracked", "layer1.0.downsample.0.weight", "layer1.0.downsample.1.running_var",
				"layer2.3.conv2.weight", "layer3.5.bn2.bias"},
			[]string{"fc.weight", "layer1.1.downsample.0.weight", "layer3.6.conv1.weight"}},
		{"resnet18", encoder.NewResNet(18, encoder.Width(4)), "conv1.weight", "layer4.1.bn2.num_batches_tracked",
			[]string{"layer2.0.downsample.0.weight", "layer1.1.conv2.weight"},
			[]string{"layer1.0.downsample.0.weight", "layer1.0.conv3.weight"}},
		{"deep", encoder.NewResNet(101, encoder.Width(4), encoder.Stem(encoder.StemDeep), encoder.Taps(1)), "conv1.0.weight", "layer1.2.bn3.num_batches_tracked",
			[]string{"conv1.1.running_mean", "conv1.3.weight", "conv1.4.weight", "conv1.6.weight"},
			[]string{"bn1.weight", "conv1.7.weight", "conv1.7.running_mean", "layer2.0.conv1.weight"}},
		{"deepflat", encoder.NewResNet(101, encoder.Width(4), encoder.Stem(encoder.StemDeepFlat), encoder.Taps(1)), "conv1.weight", "layer1.2.bn3.num_batches_tracked",
			[]string{"bn1.running_var", "conv2.weight", "bn2.weight", "conv3.weight"},
			[]string{"bn3.weight"}},
		{"eanet", encoder.NewResNet(101, encoder.Width(4), encoder.Stem(encoder.StemDeepNorm), encoder.Norm(block.NormLayer), encoder.Taps(1)),
			"conv1.0.weight", "layer1.2.bn3.norm.bias",
			[]string{"conv1.1.norm.weight", "conv1.4.norm.bias", "conv1.6.weight", "bn1.norm.weight", "layer1.0.downsample.1.norm.weight"},
			[]string{"bn1.running_mean"}},
		{"vgg16", encoder.NewVGG16(encoder.Width(4)), "features.0.weight", "features.28.bias",
			[]string{"features.2.weight", "features.5.weight", "features.24.weight"},
			[]string{"features.1.weight", "features.30.weight"}},
		{"vgg16bn", encoder.NewVGG16BN(encoder.Width(4)), "features.0.weight", "features.41.num_batches_tracked",
			[]string{"features.1.running_mean", "features.3.weight", "features.7.weight", "features.40.weight"},
			[]string{"features.43.weight"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.e.Free()
			require.NoError(t, tc.e.Err())
			k := keys(tc.e)
			assert.Equal(t, tc.first, k[0])
			assert.Equal(t, tc.last, k[len(k)-1])
			for _, h := range tc.has {
				assert.Contains(t, k, h)
			}
			for _, h := range tc.hasNot {
				assert.NotContains(t, k, h)
			}
		})
	}
}

// Channels and reductions describe the taps Split returns, at every output
// stride.
func TestTapShapes(t *testing.T) {
	const side = 64
	for _, tc := range []struct {
		name       string
		e          encoder.Encoder
		channels   []int64
		reductions []int64
	}{
		{"resnet18/os32/all", encoder.NewResNet(18, encoder.Width(4), encoder.Taps(0, 1, 2, 3, 4)),
			[]int64{4, 4, 8, 16, 32}, []int64{2, 4, 8, 16, 32}},
		{"resnet34/os16", encoder.NewResNet(34, encoder.Width(4), encoder.OutputStride(16)),
			[]int64{4, 8, 16, 32}, []int64{4, 8, 16, 16}},
		{"resnet50/os8/multigrid", encoder.NewResNet(50, encoder.Width(4), encoder.OutputStride(8), encoder.Multigrid(1, 2, 4)),
			[]int64{16, 32, 64, 128}, []int64{4, 8, 8, 8}},
		{"resnet50/deep/os16/1,4", encoder.NewResNet(50, encoder.Width(4), encoder.Stem(encoder.StemDeep), encoder.OutputStride(16), encoder.Taps(1, 4)),
			[]int64{16, 128}, []int64{4, 16}},
		{"resnet50/deepnorm/0,3", encoder.NewResNet(50, encoder.Width(4), encoder.Stem(encoder.StemDeepNorm), encoder.Norm(block.NormLayer), encoder.Taps(0, 3)),
			[]int64{8, 64}, []int64{2, 16}},
		{"resnet101/deepflat/os16", encoder.NewResNet(101, encoder.Width(2), encoder.Stem(encoder.StemDeepFlat), encoder.OutputStride(16), encoder.Multigrid(1, 2, 4), encoder.Taps(0, 4)),
			[]int64{4, 64}, []int64{2, 16}},
		{"vgg16", encoder.NewVGG16(encoder.Width(4)), []int64{4, 8, 16, 32, 32}, []int64{1, 2, 4, 8, 16}},
		{"vgg16bn/2,3", encoder.NewVGG16BN(encoder.Width(4), encoder.InChannels(1), encoder.Taps(2, 3)), []int64{16, 32}, []int64{4, 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.e.Free()
			require.NoError(t, tc.e.Err())
			assert.Equal(t, tc.channels, tc.e.Channels())
			assert.Equal(t, tc.reductions, tc.e.Reductions())
			in := int64(3)
			if strings.Contains(tc.name, "vgg16bn") {
				in = 1
			}
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

// Bad arguments and options a constructor does not use are errors on the
// module tree, also where a model registers the parts under its own names.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    encoder.Encoder
		want string
	}{
		{"depth", encoder.NewResNet(152), "depth 152"},
		{"output stride", encoder.NewResNet(50, encoder.OutputStride(12)), "output stride 12"},
		{"multigrid at 32", encoder.NewResNet(50, encoder.Multigrid(1, 2, 4)), "need output stride 16 or 8"},
		{"layer4 at 32", encoder.NewResNet(50, encoder.Layer4Dilations(1, 4, 8)), "need output stride 16 or 8"},
		{"multigrid length", encoder.NewResNet(50, encoder.OutputStride(16), encoder.Multigrid(1, 2)), "layer4 has 3 blocks"},
		{"both", encoder.NewResNet(50, encoder.OutputStride(16), encoder.Multigrid(1, 2, 4), encoder.Layer4Dilations(1, 4, 8)), "exclude each other"},
		{"zero dilation", encoder.NewResNet(50, encoder.OutputStride(16), encoder.Multigrid(1, 0, 4)), "must be positive"},
		{"taps order", encoder.NewResNet(18, encoder.Taps(3, 1)), "not strictly ascending"},
		{"taps range", encoder.NewResNet(18, encoder.Taps(1, 5)), "tap 5"},
		{"no taps", encoder.NewResNet(18, encoder.Taps()), "no taps"},
		{"width", encoder.NewResNet(18, encoder.Width(0)), "width 0"},
		{"stem", encoder.NewResNet(18, encoder.Stem(encoder.StemKind(9))), "unknown stem"},
		{"nil norm", encoder.NewResNet(18, encoder.Norm(nil)), "needs a normalisation"},
		{"vgg output stride", encoder.NewVGG16(encoder.OutputStride(16)), "VGG16 does not take option OutputStride"},
		{"vgg norm", encoder.NewVGG16BN(encoder.Norm(block.NormLayer)), "VGG16-BN does not take option Norm"},
		{"vgg taps", encoder.NewVGG16(encoder.Taps(5)), "tap 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.e.Free()
			require.ErrorContains(t, tc.e.Err(), tc.want)
			// Split says so too, and a model holding the parts sees it.
			s := torch.NewScope()
			defer s.Close()
			ys := tc.e.Split(torch.Zeros([]int64{1, 3, 32, 32}, s))
			require.Len(t, ys, 1)
			require.ErrorContains(t, ys[0].Err(), tc.want)
			var parent nn.Base
			for _, p := range tc.e.Parts() {
				parent.RegisterModule("first"+p.Name, p.Node)
			}
			require.ErrorContains(t, parent.Err(), tc.want)
		})
	}
	// A block with bad sizes.
	require.ErrorContains(t, encoder.NewBottleneck(0, 4, 1, 1, nil).Err(), "must be positive")
	require.ErrorContains(t, encoder.NewBasicBlock(4, 4, 1, 0, nil).Err(), "must be positive")
}

// D-LinkNet and CE-Net register the parts under their own names; Split
// works from there.
func TestPartsUnderOtherNames(t *testing.T) {
	r := encoder.NewResNet(34, encoder.Width(4))
	names := map[string]string{"conv1": "firstconv", "bn1": "firstbn", "maxpool": "firstmaxpool",
		"layer1": "encoder1", "layer2": "encoder2", "layer3": "encoder3", "layer4": "encoder4"}
	var m struct{ nn.Base }
	for _, p := range r.Parts() {
		require.Contains(t, names, p.Name)
		m.RegisterModule(names[p.Name], p.Node)
	}
	defer m.Free()
	require.NoError(t, m.Err())
	assert.Equal(t, r.NumParams(), m.NumParams())
	k := keys(&m)
	assert.Equal(t, "firstconv.weight", k[0])
	assert.Contains(t, k, "encoder1.0.conv1.weight")
	assert.Contains(t, k, "firstbn.running_mean")
	m.Eval() // reaches the encoder's modules through the new parents
	s := torch.NewScope()
	defer s.Close()
	ys := r.Split(torch.Randn([]int64{1, 3, 64, 64}, s))
	require.Len(t, ys, 4)
	require.NoError(t, ys[3].Err())
	assert.Equal(t, int64(0), mustItem(t, r.Layer(1).At(0).(*encoder.BasicBlock).NamedBuffers()[2].Tensor), "eval mode: no batches counted")
	assert.Nil(t, r.Layer(5))
}

func mustItem(t *testing.T, x *torch.Tensor) int64 {
	v, err := x.Item()
	require.NoError(t, err)
	return int64(v)
}

// Forward and backward in training mode on a small batch: every parameter
// gets a gradient and nothing outlives the step's scope.
func TestForwardBackward(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func() encoder.Encoder
	}{
		{"resnet18", func() encoder.Encoder { return encoder.NewResNet(18, encoder.Width(4), encoder.Taps(0, 1, 2, 3, 4)) }},
		{"resnet50/deep/os8", func() encoder.Encoder {
			return encoder.NewResNet(50, encoder.Width(4), encoder.Stem(encoder.StemDeep), encoder.OutputStride(8), encoder.Multigrid(1, 2, 4))
		}},
		{"resnet50/eanet", func() encoder.Encoder {
			return encoder.NewResNet(50, encoder.Width(4), encoder.Stem(encoder.StemDeepNorm), encoder.Norm(block.NormLayer),
				encoder.OutputStride(16), encoder.Layer4Dilations(1, 4, 8))
		}},
		{"vgg16bn", func() encoder.Encoder { return encoder.NewVGG16BN(encoder.Width(4)) }},
		{"vgg16", func() encoder.Encoder { return encoder.NewVGG16(encoder.Width(4), encoder.Taps(4)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			torch.ManualSeed(1)
			e := tc.make()
			defer e.Free()
			require.NoError(t, e.Err())
			n0, b0 := torch.Live()
			func() {
				s := torch.NewScope()
				defer s.Close()
				x := torch.Randn([]int64{2, 3, 64, 64}, s)
				var loss *torch.Tensor
				for _, y := range e.Split(x) {
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
		})
	}
}

// An unscoped forward under NoGrad leaves only its taps, and nothing for
// the garbage collector's safety net.
func TestUnscopedForwardLeavesNothing(t *testing.T) {
	for _, e := range []encoder.Encoder{
		encoder.NewResNet(50, encoder.Width(4), encoder.Stem(encoder.StemDeep), encoder.OutputStride(16), encoder.Multigrid(1, 2, 4), encoder.Taps(0, 1, 4)),
		encoder.NewResNet(18, encoder.Width(4)),
		encoder.NewVGG16BN(encoder.Width(4)),
	} {
		require.NoError(t, e.Err())
		e.Eval()
		x := torch.Randn([]int64{1, 3, 64, 64})
		leaked0 := torch.SettleLeaks()
		n0, _ := torch.Live()
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
		n1, _ := torch.Live()
		assert.Equal(t, n0, n1)
		assert.Equal(t, leaked0, torch.SettleLeaks(), "nothing left for the safety net")
		x.Free()
		e.Free()
	}
}
