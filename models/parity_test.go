package models_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/oracle"
	"github.com/jmedseg/jmedseg/internal/oracle/py"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// parityTol bounds |Go - PyTorch| / (1 + |PyTorch|) in float64.
const parityTol = 1e-8

// parityPixels is the largest test size (height × width) the parity test
// runs, 96×96: float64 forwards and backwards on both sides stay fast
// (dilated convolutions take libtorch's slow path in float64).
const parityPixels = 96 * 96

// parityJob is one model at one size, as twin_check.py reads it.
type parityJob struct {
	Name       string `json:"name"`
	Twin       string `json:"twin"`
	Width      int64  `json:"width"`
	InChannels int64  `json:"in_channels"`
	Classes    int64  `json:"classes"`
	Dir        string `json:"dir"`

	m nn.Module
	x *torch.Tensor
}

// Each registered model equals its PyTorch twin (Spec.Twin) given the same
// weights, at every test size of at most parityPixels, at the test width
// with 2 input channels and 3 classes, a batch of 2, in float64 and eval
// mode with perturbed BatchNorm statistics: same state-dict keys in the same
// order, same output, same gradient of sum(out · sin(0..n-1)) for the input
// and every parameter, to 1e-8. All models run in one Python process.
func TestMatchesPyTorch(t *testing.T) {
	py.Python(t) // skip (or fail on CI) before building anything
	root := t.TempDir()
	jobs := map[string][]*parityJob{}
	var all []*parityJob
	for _, name := range models.Names() {
		s, ok := models.Lookup(name)
		if !ok || checkSpec(s) != nil {
			continue // its subtest fails below
		}
		for _, hw := range s.TestSizes {
			if hw[0]*hw[1] > parityPixels {
				continue
			}
			j := &parityJob{Name: name + "/" + sizeName(hw), Twin: s.Twin, Width: s.TestWidth, InChannels: 2, Classes: 3,
				Dir: filepath.Join(root, name, sizeName(hw))}
			require.NoError(t, os.MkdirAll(j.Dir, 0o755))
			prepareParity(t, s, j, hw)
			jobs[name] = append(jobs[name], j)
			all = append(all, j)
		}
	}
	b, err := json.Marshal(all)
	require.NoError(t, err)
	jobsPath := filepath.Join(root, "jobs.json")
	require.NoError(t, os.WriteFile(jobsPath, b, 0o644))
	py.Run(t, "twin_check.py", jobsPath, fmt.Sprint(torch.NumThreads()))

	for _, name := range models.Names() {
		t.Run(name, func(t *testing.T) {
			spec(t, name)
			require.NotEmpty(t, jobs[name], "no test size of at most %d pixels", parityPixels)
			for _, j := range jobs[name] {
				t.Run(filepath.Base(j.Dir), func(t *testing.T) { compareParity(t, j) })
			}
		})
	}
}

// prepareParity builds the job's model in float64 with perturbed BatchNorm
// statistics, in eval mode, and writes its state (with the key order) and a
// random input to the job's directory.
func prepareParity(t *testing.T, s models.Spec, j *parityJob, hw [2]int64) {
	torch.ManualSeed(2)
	m, err := models.New(s.Name, models.Config{InChannels: j.InChannels, Classes: j.Classes, Width: j.Width})
	require.NoError(t, err)
	t.Cleanup(m.Free)
	require.NoError(t, m.ToDType(torch.Float64))
	for _, b := range m.NamedBuffers() {
		if b.Tensor.DType().IsFloat() {
			r := torch.Rand(b.Tensor.Shape(), torch.Float64)
			torch.NoGrad(func() { require.NoError(t, b.Tensor.AddInPlace(r)) })
			r.Free()
		}
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
}

// compareParity runs the job in Go and compares it with twin_check.py's
// out.safetensors: the output, the input's gradient and every parameter's.
func compareParity(t *testing.T, j *parityJob) {
	if b, err := os.ReadFile(filepath.Join(j.Dir, "error.txt")); err == nil {
		t.Fatalf("PyTorch twin %s failed:\n%s", j.Twin, b)
	}
	want, _, err := ckpt.ReadTensors(filepath.Join(j.Dir, "out.safetensors"))
	require.NoError(t, err)
	defer ckpt.Free(want)

	s := torch.NewScope()
	defer s.Close()
	x := s.Track(j.x.Detach())
	require.NoError(t, x.SetRequiresGrad(true))
	y := j.m.Forward(x)
	require.NoError(t, y.Err())
	wt := torch.Arange(0, float64(y.Numel()), 1, s).ToDType(torch.Float64).Sin().Reshape(y.Shape()...)
	require.NoError(t, y.Mul(wt).Sum().Backward())
	got := map[string]*torch.Tensor{"y": y, "grad_input": s.Track(x.Grad())}
	for _, p := range j.m.NamedParameters() {
		got["grad."+p.Name] = s.Track(p.Tensor.Grad())
	}
	var names []string
	for _, w := range want {
		names = append(names, w.Name)
	}
	require.Len(t, got, len(want), "PyTorch gave %v", names)
	for _, w := range want {
		g, ok := got[w.Name]
		require.True(t, ok, "%s from PyTorch has no Go counterpart", w.Name)
		require.NotNil(t, g, "%s is missing in Go", w.Name)
		require.Equal(t, w.Tensor.Shape(), g.Shape(), w.Name)
		wv, err := w.Tensor.Float64s()
		require.NoError(t, err)
		gv, err := g.Float64s()
		require.NoError(t, err)
		oracle.AssertClose(t, wv, gv, parityTol, "%s", w.Name)
	}
}
