package nn_test

import (
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
	"github.com/jmedseg/jmedseg/torch/optim"
)

func stats(t *testing.T, x *torch.Tensor) (lo, hi, mean, std float64) {
	v, err := x.Float64s()
	require.NoError(t, err)
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, f := range v {
		lo, hi = math.Min(lo, f), math.Max(hi, f)
		mean += f
	}
	mean /= float64(len(v))
	for _, f := range v {
		std += (f - mean) * (f - mean)
	}
	return lo, hi, mean, math.Sqrt(std / float64(len(v)))
}

func TestDefaultInitialisation(t *testing.T) {
	torch.ManualSeed(1)
	conv := nn.NewConv2d(16, 64, 3)
	defer conv.Free()
	lin := nn.NewLinear(300, 200)
	defer lin.Free()
	ct := nn.NewConvTranspose2d(8, 32, 4) // fan_in = 32·16
	defer ct.Free()
	cases := []struct {
		name  string
		x     *torch.Tensor
		bound float64
	}{
		{"conv weight", conv.Weight, 1 / math.Sqrt(16*9)}, // kaiming_uniform(a=√5): bound = 1/√fan_in
		{"conv bias", conv.Bias, 1 / math.Sqrt(16*9)},
		{"linear weight", lin.Weight, 1 / math.Sqrt(300)},
		{"linear bias", lin.Bias, 1 / math.Sqrt(300)},
		{"conv transpose weight", ct.Weight, 1 / math.Sqrt(32*16)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lo, hi, mean, std := stats(t, c.x)
			require.GreaterOrEqual(t, lo, -c.bound)
			require.LessOrEqual(t, hi, c.bound)
			require.Greater(t, hi, 0.9*c.bound, "samples fill the range")
			require.Less(t, lo, -0.9*c.bound)
			require.InDelta(t, 0, mean, 0.2*c.bound)
			require.InEpsilon(t, c.bound/math.Sqrt(3), std, 0.15, "uniform std")
		})
	}
	bn := nn.NewBatchNorm2d(5)
	defer bn.Free()
	for _, c := range []struct {
		x    *torch.Tensor
		want float64
	}{{bn.Weight, 1}, {bn.Bias, 0}, {bn.RunningMean, 0}, {bn.RunningVar, 1}, {bn.NumBatchesTracked, 0}} {
		lo, hi, _, _ := stats(t, c.x)
		require.Equal(t, c.want, lo)
		require.Equal(t, c.want, hi)
	}
	require.Equal(t, torch.Int64, bn.NumBatchesTracked.DType())
	emb := nn.NewEmbedding(100, 50)
	defer emb.Free()
	_, _, mean, std := stats(t, emb.Weight)
	require.InDelta(t, 0, mean, 0.05)
	require.InDelta(t, 1, std, 0.05)
	mha := nn.NewMultiheadAttention(32, 4)
	defer mha.Free()
	b := math.Sqrt(6.0 / (32 + 96))
	lo, hi, _, _ := stats(t, mha.InProjWeight)
	require.True(t, lo >= -b && hi <= b && hi > 0.9*b)
	lo, hi, _, _ = stats(t, mha.InProjBias)
	require.Equal(t, 0.0, lo+hi)
}

func TestInitialisers(t *testing.T) {
	torch.ManualSeed(2)
	w := torch.Empty([]int64{256, 128, 3, 3})
	defer w.Free()
	fanIn, fanOut := 128.0*9, 256.0*9
	cases := []struct {
		name      string
		init      func() error
		mean, std float64
		bound     float64 // 0: unbounded
	}{
		{"kaiming_uniform", func() error { return nn.KaimingUniform(w, 0, nn.FanIn, nn.GainReLU) }, 0, math.Sqrt(2 / fanIn), math.Sqrt(6 / fanIn)},
		{"kaiming_normal_fan_out", func() error { return nn.KaimingNormal(w, 0, nn.FanOut, nn.GainReLU) }, 0, math.Sqrt(2 / fanOut), 0},
		{"xavier_uniform", func() error { return nn.XavierUniform(w, 1) }, 0, math.Sqrt(2 / (fanIn + fanOut)), math.Sqrt(6 / (fanIn + fanOut))},
		{"xavier_normal_gain", func() error { return nn.XavierNormal(w, nn.CalculateGain(nn.GainTanh, 0)) }, 0, 5.0 / 3 * math.Sqrt(2/(fanIn+fanOut)), 0},
		{"normal", func() error { return nn.Normal(w, 0.5, 0.02) }, 0.5, 0.02, 0},
		{"uniform", func() error { return nn.Uniform(w, -2, 4) }, 1, 6 / math.Sqrt(12), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.NoError(t, c.init())
			lo, hi, mean, std := stats(t, w)
			require.InDelta(t, c.mean, mean, 0.01*math.Max(1, c.std*10))
			require.InEpsilon(t, c.std, std, 0.02)
			if c.bound > 0 {
				require.GreaterOrEqual(t, lo, -c.bound)
				require.LessOrEqual(t, hi, c.bound)
			}
		})
	}
	for _, c := range []struct {
		f    func(*torch.Tensor) error
		want float64
	}{{nn.Zeros, 0}, {nn.Ones, 1}, {func(x *torch.Tensor) error { return nn.Constant(x, 0.25) }, 0.25}} {
		require.NoError(t, c.f(w))
		lo, hi, _, _ := stats(t, w)
		require.Equal(t, c.want, lo)
		require.Equal(t, c.want, hi)
	}
	v := torch.Empty([]int64{3})
	defer v.Free()
	require.ErrorContains(t, nn.KaimingUniform(v, 0, nn.FanIn, nn.GainReLU), "at least 2 dimensions")
	require.InDelta(t, math.Sqrt(2/1.0001), nn.CalculateGain(nn.GainLeakyReLU, 0.01), 1e-12)
}

func TestRegistrationAndModes(t *testing.T) {
	m := newDown(3, 4)
	defer m.Free()
	require.NoError(t, m.Err())
	var names []string
	for _, p := range m.NamedParameters() {
		names = append(names, p.Name)
	}
	require.Equal(t, []string{
		"maxpool_conv.1.double_conv.0.weight", "maxpool_conv.1.double_conv.1.weight", "maxpool_conv.1.double_conv.1.bias",
		"maxpool_conv.1.double_conv.3.weight", "maxpool_conv.1.double_conv.4.weight", "maxpool_conv.1.double_conv.4.bias",
	}, names)
	var bufs []string
	for _, b := range m.NamedBuffers() {
		bufs = append(bufs, b.Name)
	}
	require.Contains(t, bufs, "maxpool_conv.1.double_conv.4.num_batches_tracked")
	require.Equal(t, int64(3*4*9+4+4+4*4*9+4+4), m.NumParams())
	mods := m.NamedModules()
	require.Equal(t, "maxpool_conv", mods[0].Name)
	require.Equal(t, "maxpool_conv.1.double_conv.5", mods[len(mods)-1].Name)

	require.True(t, m.Training())
	m.Eval()
	for _, c := range mods {
		require.False(t, c.Node.Training(), c.Name)
	}
	m.Train(true)
	require.True(t, mods[3].Node.Training())

	require.NoError(t, m.Freeze())
	for _, p := range m.Parameters() {
		require.False(t, p.RequiresGrad())
	}
	require.NoError(t, m.Unfreeze())
	require.True(t, m.Parameters()[0].RequiresGrad())

	// construction errors are values, reported with their path
	bad := &down{}
	bad.seq = nn.Register(&bad.Base, "x", nn.Seq(nn.NewConv2d(3, 4, 3, nn.Groups(2))))
	require.ErrorContains(t, bad.Err(), "x: 0: nn: 3 input and 4 output channels are not divisible into 2 groups")
	dup := &down{}
	nn.Register(&dup.Base, "a", nn.ReLU())
	nn.Register(&dup.Base, "a", nn.ReLU())
	require.ErrorContains(t, dup.Err(), `module "a": name already used by a module`)
	dot := &down{}
	dot.RegisterBuffer("a.b", torch.Zeros([]int64{1}))
	require.ErrorContains(t, dot.Err(), "contains a dot")
}

func TestToDTypeKeepsIdentity(t *testing.T) {
	m := newDown(2, 3)
	defer m.Free()
	w := m.Parameters()[0]
	opt, err := optim.NewSGD(optim.SGDConfig{LR: 0.1}, optim.Params(m.Parameters()))
	require.NoError(t, err)
	defer opt.Free()
	require.NoError(t, m.ToDType(torch.Float64))
	require.Equal(t, torch.Float64, w.DType(), "the tensor the field holds changed in place")
	require.True(t, w.RequiresGrad())
	require.True(t, w.IsLeaf())
	for _, b := range m.NamedBuffers() {
		if b.Name[len(b.Name)-len("num_batches_tracked"):] == "num_batches_tracked" {
			require.Equal(t, torch.Int64, b.Tensor.DType())
		} else {
			require.Equal(t, torch.Float64, b.Tensor.DType())
		}
	}
	require.NoError(t, m.To(torch.CPU))
	s := torch.NewScope()
	defer s.Close()
	y := m.Forward(torch.Randn([]int64{2, 2, 4, 4}, torch.Float64, s))
	require.NoError(t, y.Sum().Backward())
	require.NoError(t, opt.Step(), "the optimizer still holds the parameters")
	require.ErrorContains(t, m.ToDType(torch.Int64), "not a floating-point dtype")
}

// TestNoLeaks trains a model with attention and batch norm for many steps:
// the live tensor count stays flat and nothing reaches the GC safety net.
// settle runs the GC and gives its cleanups time to run.
func settle() {
	for i := 0; i < 3; i++ {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNoLeaks(t *testing.T) {
	torch.ManualSeed(3)
	type model struct {
		nn.Base
		enc  *nn.Sequential
		attn *nn.TransformerEncoderLayer
		head *nn.Linear
	}
	m := &model{}
	m.enc = nn.Register(&m.Base, "enc", nn.Seq(newDoubleConv(1, 8), nn.NewMaxPool2d(2), nn.NewDropout(0.1)))
	m.attn = nn.Register(&m.Base, "attn", nn.NewTransformerEncoderLayer(8, 2, 16, nn.BatchFirst()))
	m.head = nn.Register(&m.Base, "head", nn.NewLinear(8, 2))
	require.NoError(t, m.Err())
	defer m.Free()
	opt, err := optim.NewAdam(optim.AdamConfig{LR: 1e-3, AMSGrad: true}, optim.Params(m.Parameters()))
	require.NoError(t, err)
	defer opt.Free()
	step := func() {
		require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
			x := torch.Randn([]int64{2, 1, 8, 8}, s)
			h := m.enc.Forward(x).Flatten(2, -1).Transpose(1, 2) // [2, 16, 8]
			y := m.head.Forward(m.attn.Forward(h))
			if err := opt.ZeroGrad(); err != nil {
				return err
			}
			if err := y.Square().Mean().Backward(); err != nil {
				return err
			}
			if _, err := optim.ClipGradNorm(m.Parameters(), 1, 2); err != nil {
				return err
			}
			return opt.Step()
		}))
		// unscoped inputs: every intermediate is freed, the caller owns the result
		x := torch.Randn([]int64{1, 1, 8, 8})
		torch.NoGrad(func() { m.enc.Forward(x).Free() })
		x.Free()
	}
	for i := 0; i < 3; i++ {
		step() // optimizer state appears
	}
	settle()
	leaked := torch.Leaked()
	live, bytes := torch.Live()
	for i := 0; i < 30; i++ {
		step()
	}
	settle()
	live2, bytes2 := torch.Live()
	require.Equal(t, live, live2, "live tensors")
	require.Equal(t, bytes, bytes2, "live bytes")
	require.Equal(t, leaked, torch.Leaked(), "tensors caught by the GC safety net")
}
