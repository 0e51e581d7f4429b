package nn_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/oracle/py"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// input describes one generated input of a parity case.
type input struct {
	shape []int64
	kind  byte  // 'f' float32 N(0,1), 'i' int64 in [0,hi), 'b' bool
	hi    int64 // for 'i'
}

func fin(shape ...int64) input           { return input{shape: shape, kind: 'f'} }
func iin(hi int64, shape ...int64) input { return input{shape: shape, kind: 'i', hi: hi} }
func bin(shape ...int64) input           { return input{shape: shape, kind: 'b'} }

type lcase struct {
	name  string
	build func() nn.Node
	ctor  string // Python expression that builds the same module
	call  string // Python call over m, a, b, ...; default "m(a)"
	ins   []input
	eval  bool
	prep  bool // randomise every float entry of the state dict in [0.5, 1.5)
	pysd  bool // also load a PyTorch-initialised state dict into Go
	fn    func(m nn.Node, x []*torch.Tensor) []*torch.Tensor
}

func fwd(m nn.Node, x []*torch.Tensor) []*torch.Tensor {
	return []*torch.Tensor{m.(nn.Module).Forward(x[0])}
}

// UNet pieces, as a model package would write them.
type doubleConv struct {
	nn.Base
	seq *nn.Sequential
}

func newDoubleConv(in, out int64) *doubleConv {
	d := &doubleConv{}
	d.seq = nn.Register(&d.Base, "double_conv", nn.Seq(
		nn.NewConv2d(in, out, 3, nn.Padding(1), nn.NoBias()), nn.NewBatchNorm2d(out), nn.ReLU(),
		nn.NewConv2d(out, out, 3, nn.Padding(1), nn.NoBias()), nn.NewBatchNorm2d(out), nn.ReLU()))
	return d
}

func (d *doubleConv) Forward(x *torch.Tensor) *torch.Tensor { return d.seq.Forward(x) }

type down struct {
	nn.Base
	seq *nn.Sequential
}

func newDown(in, out int64) *down {
	d := &down{}
	d.seq = nn.Register(&d.Base, "maxpool_conv", nn.Seq(nn.NewMaxPool2d(2), newDoubleConv(in, out)))
	return d
}

func (d *down) Forward(x *torch.Tensor) *torch.Tensor { return d.seq.Forward(x) }

func node[M nn.Node](f func() M) func() nn.Node { return func() nn.Node { return f() } }

func layerCases() []lcase {
	act := func(name, py string, f func() *nn.Func) lcase {
		return lcase{name: name, build: node(f), ctor: py, ins: []input{fin(2, 3, 4, 5)}}
	}
	return []lcase{
		{name: "conv2d", build: node(func() *nn.Conv2d { return nn.NewConv2d(3, 4, 3, nn.Padding(1)) }), ctor: "nn.Conv2d(3, 4, 3, padding=1)", ins: []input{fin(2, 3, 8, 8)}},
		{name: "conv2d_groups", build: node(func() *nn.Conv2d {
			return nn.NewConv2d(4, 6, 3, nn.Stride(2), nn.Padding(1, 0), nn.Dilation(2, 1), nn.Groups(2), nn.NoBias())
		}), ctor: "nn.Conv2d(4, 6, 3, stride=2, padding=(1, 0), dilation=(2, 1), groups=2, bias=False)", ins: []input{fin(2, 4, 9, 8)}},
		{name: "conv1d", build: node(func() *nn.Conv1d { return nn.NewConv1d(3, 5, 3, nn.Padding(2), nn.Dilation(2)) }), ctor: "nn.Conv1d(3, 5, 3, padding=2, dilation=2)", ins: []input{fin(2, 3, 10)}},
		{name: "conv_transpose2d", build: node(func() *nn.ConvTranspose2d { return nn.NewConvTranspose2d(4, 3, 2, nn.Stride(2)) }), ctor: "nn.ConvTranspose2d(4, 3, 2, stride=2)", ins: []input{fin(2, 4, 5, 5)}},
		{name: "conv_transpose2d_outpad", build: node(func() *nn.ConvTranspose2d {
			return nn.NewConvTranspose2d(4, 2, 3, nn.Stride(2), nn.Padding(1), nn.OutputPadding(1))
		}), ctor: "nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)", ins: []input{fin(1, 4, 4, 5)}},
		{name: "batchnorm2d_train", build: node(func() *nn.BatchNorm { return nn.NewBatchNorm2d(3) }), ctor: "nn.BatchNorm2d(3)", ins: []input{fin(4, 3, 5, 5)}, prep: true},
		{name: "batchnorm2d_eval", build: node(func() *nn.BatchNorm { return nn.NewBatchNorm2d(3) }), ctor: "nn.BatchNorm2d(3)", ins: []input{fin(4, 3, 5, 5)}, prep: true, eval: true},
		{name: "batchnorm2d_cumulative", build: node(func() *nn.BatchNorm { return nn.NewBatchNorm2d(3, nn.Momentum(-1), nn.Eps(1e-3)) }), ctor: "nn.BatchNorm2d(3, momentum=None, eps=1e-3)", ins: []input{fin(4, 3, 5, 5)}},
		{name: "batchnorm1d", build: node(func() *nn.BatchNorm { return nn.NewBatchNorm1d(4) }), ctor: "nn.BatchNorm1d(4)", ins: []input{fin(6, 4)}, prep: true},
		{name: "batchnorm1d_3d_nostats", build: node(func() *nn.BatchNorm { return nn.NewBatchNorm1d(4, nn.TrackRunningStats(false)) }), ctor: "nn.BatchNorm1d(4, track_running_stats=False)", ins: []input{fin(3, 4, 5)}, eval: true},
		{name: "instancenorm2d", build: node(func() *nn.InstanceNorm2d { return nn.NewInstanceNorm2d(3, nn.Affine(true)) }), ctor: "nn.InstanceNorm2d(3, affine=True)", ins: []input{fin(2, 3, 6, 6)}, prep: true},
		{name: "groupnorm", build: node(func() *nn.GroupNorm { return nn.NewGroupNorm(2, 4) }), ctor: "nn.GroupNorm(2, 4)", ins: []input{fin(2, 4, 3, 3)}, prep: true},
		{name: "layernorm", build: node(func() *nn.LayerNorm { return nn.NewLayerNorm([]int64{5}) }), ctor: "nn.LayerNorm(5)", ins: []input{fin(2, 3, 5)}, prep: true},
		{name: "linear", build: node(func() *nn.Linear { return nn.NewLinear(5, 3) }), ctor: "nn.Linear(5, 3)", ins: []input{fin(4, 5)}},
		{name: "linear_nobias", build: node(func() *nn.Linear { return nn.NewLinear(5, 3, nn.NoBias()) }), ctor: "nn.Linear(5, 3, bias=False)", ins: []input{fin(2, 4, 5)}},
		{name: "dropout_eval", build: node(func() *nn.Dropout { return nn.NewDropout(0.5) }), ctor: "nn.Dropout(0.5)", ins: []input{fin(3, 4)}, eval: true},
		{name: "dropout2d_eval", build: node(func() *nn.Dropout { return nn.NewDropout2d(0.5) }), ctor: "nn.Dropout2d(0.5)", ins: []input{fin(2, 3, 4, 4)}, eval: true},
		{name: "maxpool2d", build: node(func() *nn.MaxPool2d { return nn.NewMaxPool2d(2) }), ctor: "nn.MaxPool2d(2)", ins: []input{fin(2, 3, 8, 8)}},
		{name: "maxpool2d_pad_ceil", build: node(func() *nn.MaxPool2d { return nn.NewMaxPool2d(3, nn.Stride(2), nn.Padding(1), nn.CeilMode()) }), ctor: "nn.MaxPool2d(3, 2, 1, ceil_mode=True)", ins: []input{fin(2, 3, 8, 7)}},
		{name: "maxpool2d_indices", build: node(func() *nn.MaxPool2d { return nn.NewMaxPool2d(2) }), ctor: "nn.MaxPool2d(2, return_indices=True)", ins: []input{fin(2, 3, 6, 6)},
			fn: func(m nn.Node, x []*torch.Tensor) []*torch.Tensor {
				o, i := m.(*nn.MaxPool2d).ForwardWithIndices(x[0])
				return []*torch.Tensor{o, i}
			}},
		{name: "maxunpool2d", build: node(func() *nn.MaxUnpool2d { return nn.NewMaxUnpool2d(2) }), ctor: "nn.MaxUnpool2d(2)", call: "m(*F.max_pool2d(a, 2, return_indices=True))", ins: []input{fin(2, 3, 6, 6)},
			fn: func(m nn.Node, x []*torch.Tensor) []*torch.Tensor {
				o, i := nn.NewMaxPool2d(2).ForwardWithIndices(x[0])
				return []*torch.Tensor{m.(*nn.MaxUnpool2d).Unpool(o, i, nil)}
			}},
		{name: "avgpool2d", build: node(func() *nn.AvgPool2d { return nn.NewAvgPool2d(3, nn.Stride(2), nn.Padding(1), nn.ExcludePadding()) }), ctor: "nn.AvgPool2d(3, 2, 1, count_include_pad=False)", ins: []input{fin(2, 3, 7, 8)}},
		{name: "adaptive_avgpool2d", build: node(func() *nn.AdaptiveAvgPool2d { return nn.NewAdaptiveAvgPool2d(3, 2) }), ctor: "nn.AdaptiveAvgPool2d((3, 2))", ins: []input{fin(2, 3, 7, 5)}},
		{name: "adaptive_maxpool2d", build: node(func() *nn.AdaptiveMaxPool2d { return nn.NewAdaptiveMaxPool2d(3, 2) }), ctor: "nn.AdaptiveMaxPool2d((3, 2))", ins: []input{fin(2, 3, 7, 5)}},
		{name: "upsample_nearest", build: node(func() *nn.Upsample { return nn.NewUpsample(2, torch.Nearest) }), ctor: "nn.Upsample(scale_factor=2, mode='nearest')", ins: []input{fin(1, 2, 3, 4)}},
		{name: "upsample_bilinear", build: node(func() *nn.Upsample { return nn.NewUpsample(2, torch.Bilinear) }), ctor: "nn.Upsample(scale_factor=2, mode='bilinear')", ins: []input{fin(1, 2, 3, 4)}},
		{name: "upsample_bilinear_align", build: node(func() *nn.Upsample { return nn.NewUpsample(2, torch.Bilinear, nn.AlignCorners()) }), ctor: "nn.Upsample(scale_factor=2, mode='bilinear', align_corners=True)", ins: []input{fin(1, 2, 3, 4)}},
		{name: "upsample_size", build: node(func() *nn.Upsample { return nn.NewUpsampleSize(5, 7, torch.Bilinear) }), ctor: "nn.Upsample(size=(5, 7), mode='bilinear')", ins: []input{fin(1, 2, 3, 4)}},
		act("relu", "nn.ReLU()", nn.ReLU),
		act("relu6", "nn.ReLU6()", nn.ReLU6),
		act("leaky_relu", "nn.LeakyReLU(0.1)", func() *nn.Func { return nn.LeakyReLU(0.1) }),
		act("gelu", "nn.GELU()", func() *nn.Func { return nn.GELU(false) }),
		act("gelu_tanh", "nn.GELU(approximate='tanh')", func() *nn.Func { return nn.GELU(true) }),
		act("elu", "nn.ELU(0.7)", func() *nn.Func { return nn.ELU(0.7) }),
		act("hardtanh", "nn.Hardtanh(-0.5, 0.5)", func() *nn.Func { return nn.Hardtanh(-0.5, 0.5) }),
		act("sigmoid", "nn.Sigmoid()", nn.Sigmoid),
		act("tanh", "nn.Tanh()", nn.Tanh),
		act("silu", "nn.SiLU()", nn.SiLU),
		act("softmax", "nn.Softmax(1)", func() *nn.Func { return nn.Softmax(1) }),
		act("log_softmax", "nn.LogSoftmax(-1)", func() *nn.Func { return nn.LogSoftmax(-1) }),
		act("flatten", "nn.Flatten()", func() *nn.Func { return nn.Flatten(1, -1) }),
		act("reflection_pad2d", "nn.ReflectionPad2d((1, 2, 2, 1))", func() *nn.Func { return nn.ReflectionPad2d(1, 2, 2, 1) }),
		{name: "identity", build: node(nn.NewIdentity), ctor: "nn.Identity()", ins: []input{fin(2, 3)}},
		{name: "embedding", build: node(func() *nn.Embedding { return nn.NewEmbedding(10, 4) }), ctor: "nn.Embedding(10, 4)", ins: []input{iin(10, 3, 5)}},
		{name: "mha_self", build: node(func() *nn.MultiheadAttention { return nn.NewMultiheadAttention(8, 2) }), ctor: "nn.MultiheadAttention(8, 2)", call: "m(a, a, a)", ins: []input{fin(5, 2, 8)},
			fn: func(m nn.Node, x []*torch.Tensor) []*torch.Tensor {
				o, w := m.(*nn.MultiheadAttention).Attend(x[0], x[0], x[0], nn.AttnOptions{NeedWeights: true})
				return []*torch.Tensor{o, w}
			}},
		{name: "mha_cross_masks", build: node(func() *nn.MultiheadAttention { return nn.NewMultiheadAttention(8, 4, nn.BatchFirst()) }), ctor: "nn.MultiheadAttention(8, 4, batch_first=True)",
			call: "m(a, b, b, key_padding_mask=c, attn_mask=d, average_attn_weights=False)", ins: []input{fin(2, 4, 8), fin(2, 6, 8), bin(2, 6), fin(4, 6)},
			fn: func(m nn.Node, x []*torch.Tensor) []*torch.Tensor {
				o, w := m.(*nn.MultiheadAttention).Attend(x[0], x[1], x[1], nn.AttnOptions{KeyPaddingMask: x[2], AttnMask: x[3], NeedWeights: true, PerHead: true})
				return []*torch.Tensor{o, w}
			}},
		{name: "transformer", build: node(func() *nn.TransformerEncoderLayer { return nn.NewTransformerEncoderLayer(8, 2, 16) }), ctor: "nn.TransformerEncoderLayer(8, 2, 16)", ins: []input{fin(5, 2, 8)}, eval: true, pysd: true},
		{name: "transformer_prenorm_gelu", build: node(func() *nn.TransformerEncoderLayer {
			return nn.NewTransformerEncoderLayer(8, 2, 16, nn.BatchFirst(), nn.NormFirst(), nn.GELUActivation())
		}), ctor: "nn.TransformerEncoderLayer(8, 2, 16, activation='gelu', batch_first=True, norm_first=True)", ins: []input{fin(2, 5, 8)}, eval: true},
		{name: "transformer_train_nodropout", build: node(func() *nn.TransformerEncoderLayer { return nn.NewTransformerEncoderLayer(8, 2, 16, nn.DropoutP(0)) }), ctor: "nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)", ins: []input{fin(5, 2, 8)}},
		{name: "unet_down", build: node(func() *down { return newDown(3, 4) }), ctor: "Down(3, 4)", ins: []input{fin(2, 3, 8, 8)}, pysd: true},
		{name: "unet_down_eval", build: node(func() *down { return newDown(3, 4) }), ctor: "Down(3, 4)", ins: []input{fin(2, 3, 8, 8)}, eval: true, prep: true, pysd: true},
		{name: "sequential_mlp", build: node(func() *nn.Sequential { return nn.Seq(nn.NewLinear(4, 8), nn.ReLU(), nn.NewLinear(8, 2)) }), ctor: "nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))", ins: []input{fin(3, 4)}, pysd: true},
	}
}

func genInput(rng *rand.Rand, in input, s *torch.Scope) *torch.Tensor {
	n := int64(1)
	for _, d := range in.shape {
		n *= d
	}
	switch in.kind {
	case 'i':
		v := make([]int64, n)
		for i := range v {
			v[i] = rng.Int63n(in.hi)
		}
		return torch.FromSlice(v, in.shape, s)
	case 'b':
		v := make([]bool, n)
		for i := range v {
			v[i] = rng.Intn(4) == 0
		}
		v[0] = false // keep one key per row visible
		for i := int64(0); i < n; i += in.shape[len(in.shape)-1] {
			v[i] = false
		}
		return torch.FromSlice(v, in.shape, s)
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return torch.FromSlice(v, in.shape, s)
}

func readOut(t *testing.T, path string) map[string]*torch.Tensor {
	ts, _, err := ckpt.ReadTensors(path)
	require.NoError(t, err)
	m := map[string]*torch.Tensor{}
	for _, n := range ts {
		m[n.Name] = n.Tensor
	}
	t.Cleanup(func() { ckpt.Free(ts) })
	return m
}

// worst is the largest |want-got|/(1+|want|) and where it is.
func worst(t *testing.T, want, got *torch.Tensor) (float64, int) {
	require.Equal(t, want.Shape(), got.Shape())
	w, err := want.Float64s()
	require.NoError(t, err)
	g, err := got.Float64s()
	require.NoError(t, err)
	m, at := 0.0, -1
	for i := range w {
		if math.IsInf(w[i], 0) && w[i] == g[i] {
			continue
		}
		d := math.Abs(w[i]-g[i]) / (1 + math.Abs(w[i]))
		if d > m || math.IsNaN(d) {
			m, at = d, i
		}
	}
	return m, at
}

// layerTol is the float32 parity tolerance, relative to 1+|value|.
const layerTol = 2e-5

var measured = map[string]float64{}

func assertNear(t *testing.T, what string, want, got *torch.Tensor) {
	t.Helper()
	require.NoError(t, got.Err(), what)
	d, at := worst(t, want, got)
	if d > measured[t.Name()] {
		measured[t.Name()] = d
	}
	require.LessOrEqual(t, d, layerTol, "%s: element %d differs by %g", what, at, d)
}

func TestLayersMatchPyTorch(t *testing.T) {
	py.Python(t) // skip (or fail on CI) before building anything
	torch.ManualSeed(7)
	cases := layerCases()
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(3))
	type job struct {
		Name  string `json:"name"`
		Ctor  string `json:"ctor"`
		Call  string `json:"call"`
		Train bool   `json:"train"`
		PySD  bool   `json:"pysd"`
	}
	var jobs []job
	for _, c := range cases {
		m := c.build()
		require.NoError(t, m.Err(), c.name)
		if c.prep {
			for _, e := range m.StateDict() {
				if e.Tensor.DType().IsFloat() {
					require.NoError(t, nn.Uniform(e.Tensor, 0.5, 1.5))
				}
			}
		}
		require.NoError(t, ckpt.WriteTensors(filepath.Join(dir, c.name+".w.safetensors"), m.StateDict(), nil))
		m.Free()
		var xs []nn.Named
		s := torch.NewScope()
		for i, in := range c.ins {
			xs = append(xs, nn.Named{Name: fmt.Sprintf("in%d", i), Tensor: genInput(rng, in, s)})
		}
		require.NoError(t, ckpt.WriteTensors(filepath.Join(dir, c.name+".x.safetensors"), xs, nil))
		s.Close()
		call := c.call
		if call == "" {
			call = "m(a)"
		}
		jobs = append(jobs, job{Name: c.name, Ctor: c.ctor, Call: call, Train: !c.eval, PySD: c.pysd})
	}
	b, err := json.Marshal(jobs)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cases.json"), b, 0o644))
	py.Run(t, "nn_oracle.py", filepath.Join(dir, "cases.json"), dir, fmt.Sprint(torch.NumThreads()))
	var keys map[string][]string
	b, err = os.ReadFile(filepath.Join(dir, "keys.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &keys))

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := torch.NewScope()
			defer s.Close()
			m := c.build()
			defer m.Free()
			m.Train(!c.eval)
			names := []string{}
			for _, e := range m.StateDict() {
				names = append(names, e.Name)
			}
			require.Equal(t, keys[c.name], names, "state_dict keys and order")
			_, rep, err := ckpt.Load(filepath.Join(dir, c.name+".w.safetensors"), m, true)
			require.NoError(t, err)
			require.True(t, rep.OK())
			ins, _, err := ckpt.ReadTensors(filepath.Join(dir, c.name+".x.safetensors"))
			require.NoError(t, err)
			xs := make([]*torch.Tensor, len(ins))
			for i, n := range ins {
				xs[i] = s.Track(n.Tensor)
				if xs[i].DType().IsFloat() {
					require.NoError(t, xs[i].SetRequiresGrad(true))
				}
			}
			want := readOut(t, filepath.Join(dir, c.name+".out.safetensors"))
			f := c.fn
			if f == nil {
				f = fwd
			}
			outs := f(m, xs)
			for i, o := range outs {
				s.Track(o)
				w, ok := want[fmt.Sprintf("out.%d", i)]
				require.True(t, ok, "PyTorch gave no output %d", i)
				assertNear(t, fmt.Sprintf("output %d", i), w, o)
			}
			y := outs[0]
			wt := torch.Arange(1, float64(y.Numel())+1, 1, s).ToDType(torch.Float64).Sin().Reshape(y.Shape()...).ToDType(y.DType())
			require.NoError(t, y.Mul(wt).Sum().Backward())
			for i, x := range xs {
				w, ok := want[fmt.Sprintf("gin.%d", i)]
				if !ok {
					continue
				}
				g := s.Track(x.Grad())
				require.NotNil(t, g, "input %d has no gradient", i)
				assertNear(t, fmt.Sprintf("grad of input %d", i), w, g)
			}
			for _, p := range m.NamedParameters() {
				w, ok := want["gp."+p.Name]
				g := p.Tensor.Grad()
				if !ok {
					require.Nil(t, g, "%s has a gradient in Go only", p.Name)
					continue
				}
				require.NotNil(t, g, "%s has no gradient", p.Name)
				s.Track(g)
				assertNear(t, "grad of "+p.Name, w, g)
			}
			for _, e := range m.StateDict() {
				assertNear(t, "state after the call: "+e.Name, want["sd."+e.Name], e.Tensor)
			}
			if !c.pysd {
				return
			}
			// Python to Go: a PyTorch-initialised state dict loads and gives PyTorch's outputs.
			m2 := c.build()
			defer m2.Free()
			m2.Train(!c.eval)
			var sd []nn.Named
			for k, v := range want {
				if len(k) > 5 && k[:5] == "pysd." {
					sd = append(sd, nn.Named{Name: k[5:], Tensor: v})
				}
			}
			rep, err = m2.LoadStateDict(sd, true)
			require.NoError(t, err)
			require.True(t, rep.OK())
			torch.NoGrad(func() {
				for i, o := range f(m2, xs) {
					s.Track(o)
					assertNear(t, fmt.Sprintf("output %d with PyTorch's weights", i), want[fmt.Sprintf("pyout.%d", i)], o)
				}
			})
		})
	}
	worstAll, at := 0.0, ""
	for k, v := range measured {
		if v > worstAll {
			worstAll, at = v, k
		}
	}
	t.Logf("largest relative difference from PyTorch: %.3g (%s)", worstAll, at)
}
