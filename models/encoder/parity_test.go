package encoder_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/oracle/py"
	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/models/encoder"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// parityTol is the float64 tolerance of outputs, gradients and running
// statistics against the PyTorch twin, relative to 1+|want|. The same
// libtorch kernels run in the same order on both sides, so the measured
// difference is 0.
const parityTol = 1e-9

// Every encoder layout equals its PyTorch twin (internal/oracle/py/encoder_twins.py) given the
// same weights, in float64: the same state-dict keys in the same order, the
// same taps, the same gradient for every parameter, and in training mode
// the same running statistics afterwards.
func TestMatchesPyTorch(t *testing.T) {
	py.Python(t) // skip (or fail on CI) before building anything
	var cases []*twinCase
	for _, tc := range []struct {
		name string
		cfg  map[string]any
		e    func() encoder.Encoder
	}{
		{"resnet18", map[string]any{"kind": "resnet", "depth": 18, "stem": "standard", "os": 32, "taps": []int{0, 1, 2, 3, 4}},
			func() encoder.Encoder { return encoder.NewResNet(18, encoder.Width(4), encoder.Taps(0, 1, 2, 3, 4)) }},
		{"resnet34/os8", map[string]any{"kind": "resnet", "depth": 34, "stem": "standard", "os": 8, "taps": []int{1, 4}},
			func() encoder.Encoder {
				return encoder.NewResNet(34, encoder.Width(4), encoder.OutputStride(8), encoder.Taps(1, 4))
			}},
		{"resnet50", map[string]any{"kind": "resnet", "depth": 50, "stem": "standard", "os": 32, "taps": []int{1, 2, 3, 4}},
			func() encoder.Encoder { return encoder.NewResNet(50, encoder.Width(4)) }},
		{"resnet50/train", map[string]any{"kind": "resnet", "depth": 50, "stem": "standard", "os": 16, "taps": []int{2, 4}, "train": true},
			func() encoder.Encoder {
				return encoder.NewResNet(50, encoder.Width(4), encoder.OutputStride(16), encoder.Taps(2, 4))
			}},
		{"resnet101/deep/os16/multigrid", map[string]any{"kind": "resnet", "depth": 101, "stem": "deep", "os": 16, "multigrid": []int{1, 2, 4}, "taps": []int{0, 1, 3, 4}, "width": 2},
			func() encoder.Encoder {
				return encoder.NewResNet(101, encoder.Width(2), encoder.Stem(encoder.StemDeep), encoder.OutputStride(16),
					encoder.Multigrid(1, 2, 4), encoder.Taps(0, 1, 3, 4))
			}},
		{"resnet50/deep/os8/multigrid", map[string]any{"kind": "resnet", "depth": 50, "stem": "deep", "os": 8, "multigrid": []int{1, 2, 4}, "taps": []int{1, 2, 3, 4}},
			func() encoder.Encoder {
				return encoder.NewResNet(50, encoder.Width(4), encoder.Stem(encoder.StemDeep), encoder.OutputStride(8), encoder.Multigrid(1, 2, 4))
			}},
		{"resnet50/deepflat", map[string]any{"kind": "resnet", "depth": 50, "stem": "deepflat", "os": 16, "multigrid": []int{1, 2, 4}, "taps": []int{1, 4}},
			func() encoder.Encoder {
				return encoder.NewResNet(50, encoder.Width(4), encoder.Stem(encoder.StemDeepFlat), encoder.OutputStride(16),
					encoder.Multigrid(1, 2, 4), encoder.Taps(1, 4))
			}},
		{"resnet50/eanet/train", map[string]any{"kind": "resnet", "depth": 50, "stem": "deepnorm", "norm": "normlayer", "os": 16, "layer4": []int{1, 4, 8}, "taps": []int{4}, "train": true, "width": 16},
			func() encoder.Encoder {
				return encoder.NewResNet(50, encoder.Width(16), encoder.Stem(encoder.StemDeepNorm), encoder.Norm(block.NormLayer),
					encoder.OutputStride(16), encoder.Layer4Dilations(1, 4, 8), encoder.Taps(4))
			}},
		{"vgg16bn", map[string]any{"kind": "vgg", "bn": true, "taps": []int{0, 1, 2, 3, 4}},
			func() encoder.Encoder { return encoder.NewVGG16BN(encoder.Width(4)) }},
		{"vgg16bn/train", map[string]any{"kind": "vgg", "bn": true, "taps": []int{1, 3}, "train": true},
			func() encoder.Encoder { return encoder.NewVGG16BN(encoder.Width(4), encoder.Taps(1, 3)) }},
		{"vgg16", map[string]any{"kind": "vgg", "bn": false, "taps": []int{0, 2, 4}},
			func() encoder.Encoder { return encoder.NewVGG16(encoder.Width(4), encoder.Taps(0, 2, 4)) }},
	} {
		cfg := map[string]any{"in": 3, "width": 4, "norm": "bn", "train": false}
		for k, v := range tc.cfg {
			cfg[k] = v
		}
		cases = append(cases, prepare(t, tc.name, cfg, tc.e))
	}
	// One Python process for every case: importing torch is most of a
	// case's time.
	var dirs []string
	for _, c := range cases {
		dirs = append(dirs, c.dir)
	}
	py.Run(t, "encoder_twins.py", dirs...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.compare(t) })
	}
}

// twinCase is one encoder with its input, written for the twin.
type twinCase struct {
	name, dir string
	e         encoder.Encoder
	x         *torch.Tensor
	s         *torch.Scope
}

// prepare builds a case's encoder in float64 with realistic statistics
// and writes its state and input for the twin; the encoder and scope are
// freed when t ends.
func prepare(t *testing.T, name string, cfg map[string]any, mk func() encoder.Encoder) *twinCase {
	t.Helper()
	torch.ManualSeed(3)
	e := mk()
	t.Cleanup(e.Free)
	require.NoError(t, e.Err(), name)
	require.NoError(t, e.ToDType(torch.Float64))
	s := torch.NewScope()
	t.Cleanup(s.Close)
	calibrate(t, e, s)
	train, _ := cfg["train"].(bool)
	e.Train(train)
	dir := t.TempDir()
	order, _ := json.Marshal(keys(e))
	cb, _ := json.Marshal(cfg)
	require.NoError(t, ckpt.Save(filepath.Join(dir, "state.safetensors"), e, map[string]string{"order": string(order), "config": string(cb)}))
	x := torch.Randn([]int64{2, 3, 64, 64}, torch.Float64, s)
	require.NoError(t, ckpt.WriteTensors(filepath.Join(dir, "input.safetensors"), []nn.Named{{Name: "x", Tensor: x}}, nil))
	return &twinCase{name: name, dir: dir, e: e, x: x, s: s}
}

// compare checks the Go encoder against what its twin wrote: taps,
// parameter gradients and float buffers.
func (c *twinCase) compare(t *testing.T) {
	if b, err := os.ReadFile(filepath.Join(c.dir, "error.txt")); err == nil {
		t.Fatalf("twin failed:\n%s", b)
	}
	want, _, err := ckpt.ReadTensors(filepath.Join(c.dir, "out.safetensors"))
	require.NoError(t, err)
	defer ckpt.Free(want)
	e, s := c.e, c.s
	ys := e.Split(c.x)
	got := map[string]*torch.Tensor{}
	var loss *torch.Tensor
	for i, y := range ys {
		require.NoError(t, y.Err())
		requireLively(t, y, i)
		got["y"+itoa(i)] = y
		wt := torch.Arange(0, float64(y.Numel()), 1, s).ToDType(torch.Float64).Sin().Reshape(y.Shape()...)
		l := y.Mul(wt).Sum()
		if loss == nil {
			loss = l
		} else {
			loss = loss.Add(l)
		}
	}
	require.NoError(t, loss.Backward())
	for _, p := range e.NamedParameters() {
		got["grad."+p.Name] = s.Track(p.Tensor.Grad())
	}
	for _, b := range e.NamedBuffers() {
		if b.Tensor.DType().IsFloat() {
			got["buf."+b.Name] = b.Tensor
		}
	}
	require.Len(t, got, len(want))
	worst := 0.0
	for _, w := range want {
		g, ok := got[w.Name]
		require.True(t, ok, w.Name)
		require.Equal(t, w.Tensor.Shape(), g.Shape(), w.Name)
		wv, err := w.Tensor.Float64s()
		require.NoError(t, err)
		gv, err := g.Float64s()
		require.NoError(t, err)
		for i := range wv {
			worst = math.Max(worst, math.Abs(wv[i]-gv[i])/(1+math.Abs(wv[i])))
		}
		requireClose(t, wv, gv, w.Name)
	}
	t.Logf("%d tensors, largest relative difference %.2g", len(want), worst)
}

// calibrate gives e's normalisations realistic statistics and affine
// parameters, so that deep eval-mode taps are neither all zero nor huge:
// running statistics from one training-mode batch (momentum 1), varied by
// ±20 %, and weights and biases away from 1 and 0.
func calibrate(t *testing.T, e encoder.Encoder, s *torch.Scope) {
	t.Helper()
	var bns []*nn.BatchNorm
	for _, m := range e.NamedModules() {
		if bn, ok := m.Node.(*nn.BatchNorm); ok {
			bns = append(bns, bn)
			bn.Momentum = 1
		}
	}
	torch.NoGrad(func() {
		e.Train(true)
		for _, y := range e.Split(torch.Randn([]int64{2, 3, 64, 64}, torch.Float64, s)) {
			require.NoError(t, y.Err())
		}
		for _, b := range e.NamedBuffers() {
			if strings.HasSuffix(b.Name, "running_var") {
				require.NoError(t, b.Tensor.MulInPlace(s.Track(torch.Rand(b.Tensor.Shape(), torch.Float64)).MulScalar(0.4).AddScalar(0.8)))
			}
		}
		for _, p := range e.NamedParameters() {
			if strings.Contains(p.Name, "bn") || strings.Contains(p.Name, "norm") || strings.Contains(p.Name, "features") && p.Tensor.Dim() == 1 {
				require.NoError(t, p.Tensor.AddInPlace(s.Track(torch.Randn(p.Tensor.Shape(), torch.Float64)).MulScalar(0.1)))
			}
		}
	})
	for _, bn := range bns {
		bn.Momentum = 0.1
	}
}

// requireLively fails on a tap too dead to compare (mostly zeros).
func requireLively(t *testing.T, y *torch.Tensor, i int) {
	t.Helper()
	v, err := y.Float64s()
	require.NoError(t, err)
	nz := 0
	for _, x := range v {
		if x != 0 {
			nz++
		}
	}
	require.Greater(t, float64(nz), 0.2*float64(len(v)), "tap %d is %d%% zeros", i, 100-100*nz/len(v))
}

func requireClose(t *testing.T, want, got []float64, name string) {
	t.Helper()
	require.Len(t, got, len(want), name)
	for i := range want {
		if d := math.Abs(want[i] - got[i]); !(d <= parityTol*(1+math.Abs(want[i]))) {
			t.Fatalf("%s: element %d differs: want %v got %v (|diff| %g)", name, i, want[i], got[i], d)
		}
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }
