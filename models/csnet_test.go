package models_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/oracle/py"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// twinParityCase is a model built by hand (with options the registry's
// Build does not pass, or edited weights) and the PyTorch twin class it
// must equal.
type twinParityCase struct {
	name, twin string
	width      int64
	build      func(c models.Config) nn.Module
	edit       func(t *testing.T, m nn.Module) // after the float64 conversion; may be nil
}

// runTwinParity checks each case against its twin as TestMatchesPyTorch
// checks registered models (float64, eval mode, perturbed BatchNorm
// statistics, 2 input channels, 3 classes, a batch of 2, outputs and every
// gradient to parityTol), at each size, in one Python process.
func runTwinParity(t *testing.T, cases []twinParityCase, sizes [][2]int64) {
	py.Python(t)
	root := t.TempDir()
	var jobs []*parityJob
	for _, c := range cases {
		for _, hw := range sizes {
			j := &parityJob{Name: c.name + "/" + sizeName(hw), Twin: c.twin, Width: c.width, InChannels: 2, Classes: 3,
				Dir: filepath.Join(root, c.name, sizeName(hw))}
			require.NoError(t, os.MkdirAll(j.Dir, 0o755))
			torch.ManualSeed(2)
			m := c.build(models.Config{InChannels: j.InChannels, Classes: j.Classes, Width: j.Width})
			require.NoError(t, m.Err())
			t.Cleanup(m.Free)
			require.NoError(t, m.ToDType(torch.Float64))
			for _, b := range m.NamedBuffers() {
				if b.Tensor.DType().IsFloat() {
					r := torch.Rand(b.Tensor.Shape(), torch.Float64)
					torch.NoGrad(func() { require.NoError(t, b.Tensor.AddInPlace(r)) })
					r.Free()
				}
			}
			if c.edit != nil {
				c.edit(t, m)
			}
			m.Eval()
			var order []string
			for _, n := range m.StateDict() {
				order = append(order, n.Name)
			}
			ob, err := json.Marshal(order)
			require.NoError(t, err)
			require.NoError(t, ckpt.Save(filepath.Join(j.Dir, "state.safetensors"), m, map[string]string{"order": string(ob)}))
			x := torch.Randn([]int64{2, j.InChannels, hw[0], hw[1]}, torch.Float64)
			t.Cleanup(x.Free)
			require.NoError(t, ckpt.WriteTensors(filepath.Join(j.Dir, "input.safetensors"), []nn.Named{{Name: "x", Tensor: x}}, nil))
			j.m, j.x = m, x
			jobs = append(jobs, j)
		}
	}
	b, err := json.Marshal(jobs)
	require.NoError(t, err)
	p := filepath.Join(root, "jobs.json")
	require.NoError(t, os.WriteFile(p, b, 0o644))
	py.Run(t, "twin_check.py", p, fmt.Sprint(torch.NumThreads()))
	for _, j := range jobs {
		t.Run(j.Name, func(t *testing.T) {
			compareParity(t, j)
			if !t.Failed() {
				t.Logf("worst |Go - PyTorch| / (1 + |PyTorch|): %.2g", worstParity(t, j))
			}
		})
	}
}

// worstParity is the largest relative difference over the output and every
// gradient of a job whose twin has run.
func worstParity(t *testing.T, j *parityJob) float64 {
	want, _, err := ckpt.ReadTensors(filepath.Join(j.Dir, "out.safetensors"))
	require.NoError(t, err)
	defer ckpt.Free(want)
	require.NoError(t, j.m.ZeroGrad())
	s := torch.NewScope()
	defer s.Close()
	x := s.Track(j.x.Detach())
	require.NoError(t, x.SetRequiresGrad(true))
	y := j.m.Forward(x)
	wt := torch.Arange(0, float64(y.Numel()), 1, s).ToDType(torch.Float64).Sin().Reshape(y.Shape()...)
	require.NoError(t, y.Mul(wt).Sum().Backward())
	got := map[string]*torch.Tensor{"y": y, "grad_input": s.Track(x.Grad())}
	for _, p := range j.m.NamedParameters() {
		got["grad."+p.Name] = s.Track(p.Tensor.Grad())
	}
	worst := 0.0
	for _, w := range want {
		wv, err := w.Tensor.Float64s()
		require.NoError(t, err)
		gv, err := got[w.Name].Float64s()
		require.NoError(t, err)
		for i := range wv {
			worst = math.Max(worst, math.Abs(wv[i]-gv[i])/(1+math.Abs(wv[i])))
		}
	}
	return worst
}

// setParam fills the named parameter with v.
func setParam(t *testing.T, m nn.Module, name string, v float64) {
	for _, p := range m.NamedParameters() {
		if p.Name == name {
			require.NoError(t, nn.Constant(p.Tensor, v))
			return
		}
	}
	t.Fatalf("no parameter %s", name)
}

// CS-Net's attention scales start at zero, which hides the attention from
// the registry's parity test (its weights get no gradient); with them set,
// the model equals its twin, by default and with the reference's quirks
// (batch element 0's maxima, a final sigmoid).
func TestCSNetAttentionAndQuirksMatchPyTorch(t *testing.T) {
	gammas := func(t *testing.T, m nn.Module) {
		setParam(t, m, "affinity_attention.sab.gamma", 0.7)
		setParam(t, m, "affinity_attention.cab.gamma", -0.4)
	}
	build := func(o models.CSNetOptions) func(c models.Config) nn.Module {
		return func(c models.Config) nn.Module { return models.NewCSNet(c, o) }
	}
	runTwinParity(t, []twinParityCase{
		{name: "csnet", twin: "csnet.CSNet", width: 4, build: build(models.CSNetOptions{}), edit: gammas},
		{name: "csnet-reference", twin: "csnet.CSNetReference", width: 4,
			build: build(models.CSNetOptions{BatchZeroMaxima: true, Sigmoid: true}), edit: gammas},
	}, [][2]int64{{16, 16}, {32, 48}})
}

// Options reach the model: Sigmoid returns the sigmoid of the default's
// logits, and the reference's maxima change nothing but rounding.
func TestCSNetOptions(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	c := models.Config{InChannels: 3, Classes: 2, Width: 4}
	x := torch.Randn([]int64{2, 3, 32, 32}, s)
	var outs []*torch.Tensor
	for _, o := range []models.CSNetOptions{{}, {BatchZeroMaxima: true}, {Sigmoid: true}} {
		torch.ManualSeed(3)
		m := models.NewCSNet(c, o)
		require.NoError(t, m.Err())
		defer m.Free()
		setParam(t, m, "affinity_attention.cab.gamma", 0.5)
		m.Eval()
		var y *torch.Tensor
		torch.NoGrad(func() { y = m.Forward(x) })
		require.NoError(t, y.Err())
		outs = append(outs, y)
	}
	d, err := outs[0].Sub(outs[1]).Abs().Max().Item()
	require.NoError(t, err)
	require.Less(t, d, 1e-4)
	d, err = outs[2].Sub(outs[0].Sigmoid()).Abs().Max().Item()
	require.NoError(t, err)
	require.Less(t, d, 1e-6, "Sigmoid returns sigmoid(logits)")
}
