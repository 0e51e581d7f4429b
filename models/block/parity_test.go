package block_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/oracle/py"
	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// parityTol is the float64 tolerance of outputs and gradients against the
// PyTorch twin, relative to 1+|want|.
const parityTol = 1e-9

// psp holds PSPNet's pools as the model does (layer5a..layer5d) and
// applies block.Pyramid.
type psp struct {
	nn.Base
	pools []*block.PyramidPool
}

func newPSP(in, out int64, bins ...int64) *psp {
	p := &psp{}
	for i, b := range bins {
		p.pools = append(p.pools, nn.Register(&p.Base, "layer5"+string(rune('a'+i)), block.NewPyramidPool(in, out, b)))
	}
	return p
}

func (p *psp) Forward(x *torch.Tensor) *torch.Tensor { return block.Pyramid(x, p.pools...) }

// Every block equals its twin in internal/oracle/py/block_twins.py (the reference's layout
// in PyTorch) given the same weights and inputs, in float64: keys and their
// order, output, the gradients of every parameter and input, and in
// training mode the running statistics afterwards.
func TestMatchesPyTorch(t *testing.T) {
	py.Python(t) // skip (or fail on CI) before building anything
	type c = map[string]any
	var cases []*twinCase
	for _, tc := range []struct {
		name string
		cfg  c
		m    func() nn.Node
		in   [][]int64
	}{
		{"CBR", c{"kind": "cbr", "in": 3, "out": 8, "k": 3},
			func() nn.Node { return nn.Seq(block.CBR(3, 8, 3)...) }, [][]int64{{2, 3, 9, 10}}},
		{"CBR/train", c{"kind": "cbr", "in": 3, "out": 8, "k": 3, "train": true},
			func() nn.Node { return nn.Seq(block.CBR(3, 8, 3)...) }, [][]int64{{2, 3, 9, 10}}},
		{"CBR/stride-dilation-groups-nobias", c{"kind": "cbr", "in": 4, "out": 8, "k": 3, "stride": 2, "dilation": 2, "groups": 2, "bias": false},
			func() nn.Node {
				return nn.Seq(block.CBR(4, 8, 3, block.Stride(2), block.Dilation(2), block.Groups(2), block.NoBias())...)
			}, [][]int64{{2, 4, 11, 12}}},
		{"CBR/kernel1x3-relu6-gn", c{"kind": "cbr", "in": 4, "out": 8, "k": 3, "kernel": []int{1, 3}, "norm": "gn4", "act": "relu6", "train": true},
			func() nn.Node {
				return nn.Seq(block.CBR(4, 8, 3, block.Kernel(1, 3), block.Norm(block.GroupNorm(4)), block.Act(block.ReLU6))...)
			}, [][]int64{{2, 4, 7, 8}}},
		{"CBR/normlayer-noact-padding0", c{"kind": "cbr", "in": 4, "out": 128, "k": 3, "norm": "normlayer", "act": nil, "padding": []int{0, 0}},
			func() nn.Node {
				return nn.Seq(block.CBR(4, 128, 3, block.Norm(block.NormLayer), block.Act(nil), block.Padding(0))...)
			}, [][]int64{{2, 4, 7, 8}}},
		{"CBR/nonorm", c{"kind": "cbr", "in": 4, "out": 8, "k": 1, "norm": nil},
			func() nn.Node { return nn.Seq(block.CBR(4, 8, 1, block.Norm(nil))...) }, [][]int64{{2, 4, 5, 5}}},
		{"ConvNormAct/hardnet", c{"kind": "convnormact", "in": 4, "out": 8, "k": 3, "stride": 2, "bias": false, "act": "relu6", "names": []string{"conv", "norm"}},
			func() nn.Node {
				return block.NewConvNormAct(4, 8, 3, block.Stride(2), block.NoBias(), block.Act(block.ReLU6), block.Names("conv", "norm"))
			}, [][]int64{{2, 4, 9, 9}}},
		{"ConvNormAct/basicconv", c{"kind": "convnormact", "in": 4, "out": 8, "k": 3, "dilation": 3, "bias": false, "act": nil},
			func() nn.Node {
				return block.NewConvNormAct(4, 8, 3, block.Dilation(3), block.NoBias(), block.Act(nil))
			}, [][]int64{{2, 4, 9, 9}}},
		{"DoubleConv", c{"kind": "doubleconv", "in": 3, "out": 8, "mid": 4},
			func() nn.Node { return block.NewDoubleConv(3, 8, 4) }, [][]int64{{2, 3, 8, 8}}},
		{"DoubleConv/train", c{"kind": "doubleconv", "in": 3, "out": 8, "train": true},
			func() nn.Node { return block.NewDoubleConv(3, 8, 0) }, [][]int64{{2, 3, 8, 8}}},
		{"Up", c{"kind": "up", "in": 12, "out": 4, "mid": 6},
			func() nn.Node { return block.NewUp(12, 4, 6) }, [][]int64{{2, 8, 4, 5}, {2, 4, 8, 10}}},
		{"Up/align-pad", c{"kind": "up", "in": 12, "out": 4, "mid": 6, "align": true},
			func() nn.Node { return block.NewUp(12, 4, 6, block.AlignCorners()) }, [][]int64{{2, 8, 4, 5}, {2, 4, 9, 11}}},
		{"SE", c{"kind": "se", "c": 32},
			func() nn.Node { return block.NewSE(32) }, [][]int64{{2, 32, 5, 6}}},
		{"SE/conv-softmaxall", c{"kind": "se", "c": 32, "r": 4, "conv": true, "gate": "softmaxall"},
			func() nn.Node {
				return block.NewSE(32, block.Reduction(4), block.ConvForm(), block.Gate(block.SoftmaxAll))
			}, [][]int64{{2, 32, 5, 6}}},
		{"SSE", c{"kind": "sse", "c": 8},
			func() nn.Node { return block.NewSSE(8) }, [][]int64{{2, 8, 5, 6}}},
		{"SCSE", c{"kind": "scse", "c": 32},
			func() nn.Node { return block.NewSCSE(32) }, [][]int64{{2, 32, 5, 6}}},
		{"SCSE/softmaxall", c{"kind": "scse", "c": 32, "r": 8, "gate": "softmaxall"},
			func() nn.Node { return block.NewSCSE(32, block.Reduction(8), block.Gate(block.SoftmaxAll)) }, [][]int64{{2, 32, 5, 6}}},
		{"AttentionGate", c{"kind": "attgate", "fg": 8, "fl": 6, "fint": 4},
			func() nn.Node { return block.NewAttentionGate(8, 6, 4) }, [][]int64{{2, 8, 6, 6}, {2, 6, 6, 6}}},
		{"AttentionGate/train", c{"kind": "attgate", "fg": 8, "fl": 6, "fint": 4, "train": true},
			func() nn.Node { return block.NewAttentionGate(8, 6, 4) }, [][]int64{{2, 8, 6, 6}, {2, 6, 6, 6}}},
		{"AttentionGate/instancenorm", c{"kind": "attgate", "fg": 8, "fl": 6, "fint": 4, "norm": "in"},
			func() nn.Node { return block.NewAttentionGate(8, 6, 4, block.Norm(block.InstanceNorm)) }, [][]int64{{2, 8, 6, 6}, {2, 6, 6, 6}}},
		{"ASPP", c{"kind": "aspp", "in": 8, "out": 8, "rates": []int{1, 2, 3}},
			func() nn.Node { return block.NewASPP(8, 8, [3]int64{1, 2, 3}) }, [][]int64{{2, 8, 7, 8}}},
		{"PSP", c{"kind": "psp", "in": 8, "out": 4, "bins": []int{1, 2, 3, 6}},
			func() nn.Node { return newPSP(8, 4, 1, 2, 3, 6) }, [][]int64{{2, 8, 12, 12}}},
		{"PSP/train", c{"kind": "psp", "in": 8, "out": 4, "bins": []int{1, 2, 3, 6}, "train": true},
			func() nn.Node { return newPSP(8, 4, 1, 2, 3, 6) }, [][]int64{{2, 8, 12, 12}}},
		{"LinkNetDecoder", c{"kind": "linknet", "in": 16, "out": 8},
			func() nn.Node { return block.NewLinkNetDecoder(16, 8) }, [][]int64{{2, 16, 5, 6}}},
		{"LinkNetDecoder/train", c{"kind": "linknet", "in": 16, "out": 8, "train": true},
			func() nn.Node { return block.NewLinkNetDecoder(16, 8) }, [][]int64{{2, 16, 5, 6}}},
	} {
		cases = append(cases, prepare(t, tc.name, tc.cfg, tc.m, tc.in))
	}
	runTwins(t, cases)
	for _, pc := range cases {
		t.Run(pc.name, func(t *testing.T) { pc.compare(t) })
	}
}

// twinCase is one block with its inputs, written for the twin.
type twinCase struct {
	name string
	dir  string
	m    nn.Node
	xs   []*torch.Tensor
	s    *torch.Scope
}

// runTwins runs every case's twin (internal/oracle/py/block_twins.py) in
// one Python process: its start-up, importing torch, is most of a case's
// time.
func runTwins(t *testing.T, cases []*twinCase) {
	t.Helper()
	var dirs []string
	for _, c := range cases {
		dirs = append(dirs, c.dir)
	}
	py.Run(t, "block_twins.py", dirs...)
}

// prepare builds a case's block in float64 and writes its state and
// inputs for the twin; the block and scope are freed when t ends.
func prepare(t *testing.T, name string, cfg map[string]any, mk func() nn.Node, shapes [][]int64) *twinCase {
	t.Helper()
	torch.ManualSeed(5)
	m := mk()
	t.Cleanup(m.Free)
	require.NoError(t, m.Err(), name)
	require.NoError(t, m.ToDType(torch.Float64))
	s := torch.NewScope()
	t.Cleanup(s.Close)
	// Statistics and affine parameters away from their initial values, so
	// that eval mode and the norms' parameters are really tested.
	torch.NoGrad(func() {
		for _, b := range m.NamedBuffers() {
			switch {
			case strings.HasSuffix(b.Name, "running_mean"):
				require.NoError(t, b.Tensor.AddInPlace(s.Track(torch.Randn(b.Tensor.Shape(), torch.Float64)).MulScalar(0.3)))
			case strings.HasSuffix(b.Name, "running_var"):
				require.NoError(t, b.Tensor.MulInPlace(s.Track(torch.Rand(b.Tensor.Shape(), torch.Float64)).AddScalar(0.5)))
			}
		}
		for _, p := range m.NamedParameters() {
			if p.Tensor.Dim() == 1 {
				require.NoError(t, p.Tensor.AddInPlace(s.Track(torch.Randn(p.Tensor.Shape(), torch.Float64)).MulScalar(0.2)))
			}
		}
	})
	train, _ := cfg["train"].(bool)
	m.Train(train)
	dir := t.TempDir()
	order, _ := json.Marshal(keys(m))
	cb, _ := json.Marshal(cfg)
	require.NoError(t, ckpt.Save(filepath.Join(dir, "state.safetensors"), m, map[string]string{"order": string(order), "config": string(cb)}))
	var xs []*torch.Tensor
	var named []nn.Named
	for i, sh := range shapes {
		x := torch.Randn(sh, torch.Float64, s)
		require.NoError(t, x.SetRequiresGrad(true))
		xs = append(xs, x)
		named = append(named, nn.Named{Name: fmt.Sprintf("x%d", i), Tensor: x})
	}
	require.NoError(t, ckpt.WriteTensors(filepath.Join(dir, "input.safetensors"), named, nil))
	return &twinCase{name: name, dir: dir, m: m, xs: xs, s: s}
}

// compare checks the Go block against what its twin wrote.
func (c *twinCase) compare(t *testing.T) {
	if b, err := os.ReadFile(filepath.Join(c.dir, "error.txt")); err == nil {
		t.Fatalf("twin failed:\n%s", b)
	}
	want, _, err := ckpt.ReadTensors(filepath.Join(c.dir, "out.safetensors"))
	require.NoError(t, err)
	defer ckpt.Free(want)
	m, xs, s := c.m, c.xs, c.s
	var y *torch.Tensor
	switch m := m.(type) {
	case nn.Merger:
		y = m.Merge(xs...)
	case nn.Module:
		y = m.Forward(xs[0])
	}
	require.NoError(t, y.Err())
	wt := torch.Arange(0, float64(y.Numel()), 1, s).ToDType(torch.Float64).Sin().Reshape(y.Shape()...)
	require.NoError(t, y.Mul(wt).Sum().Backward())
	got := map[string]*torch.Tensor{"y": y}
	for _, p := range m.NamedParameters() {
		got["grad."+p.Name] = s.Track(p.Tensor.Grad())
	}
	for i, x := range xs {
		got[fmt.Sprintf("gin.%d", i)] = s.Track(x.Grad())
	}
	for _, b := range m.NamedBuffers() {
		if b.Tensor.DType().IsFloat() {
			got["buf."+b.Name] = b.Tensor
		}
	}
	require.Len(t, got, len(want))
	worst := 0.0
	for _, w := range want {
		g, ok := got[w.Name]
		require.True(t, ok, w.Name)
		require.NotNil(t, g, w.Name)
		require.Equal(t, w.Tensor.Shape(), g.Shape(), w.Name)
		wv, err := w.Tensor.Float64s()
		require.NoError(t, err)
		gv, err := g.Float64s()
		require.NoError(t, err)
		nz := 0
		for i := range wv {
			if wv[i] != 0 {
				nz++
			}
			diff := math.Abs(wv[i] - gv[i])
			worst = math.Max(worst, diff/(1+math.Abs(wv[i])))
			if !(diff <= parityTol*(1+math.Abs(wv[i]))) {
				t.Fatalf("%s: element %d differs: want %v got %v (|diff| %g)", w.Name, i, wv[i], gv[i], diff)
			}
		}
		if w.Name == "y" {
			require.Greater(t, nz, len(wv)/10, "output mostly zeros: the comparison would say little")
		}
	}
	t.Logf("%d tensors, largest relative difference %.2g", len(want), worst)
}
