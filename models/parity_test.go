package models_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
// runs besides the model's smallest input, 96×96: float64 forwards and backwards on both sides stay fast
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
	Train      bool   `json:"train"`

	m nn.Module
	x *torch.Tensor
}

// Each registered model equals its PyTorch twin (Spec.Twin) given the same
// weights, at the test width with 2 input channels and 3 classes, a batch of
// 2, in float64: same state-dict keys in the same order, same output, same
// gradient of sum(out · sin(0..n-1)) for the input and every parameter, to
// 1e-8. In eval mode (running statistics) at the smallest test size, and in
// training mode (batch statistics, dropout off on both sides) at every test
// size of at most parityPixels, where no parameter may have a gradient that
// is zero on both sides: equal zeros would test nothing, and batch
// statistics keep the ReLUs of a narrow test model alive. All models run in
// one Python process.
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
		for i, hw := range s.TestSizes {
			if hw[0]*hw[1] > parityPixels && hw != [2]int64{s.MinSide(), s.MinSide()} {
				continue // the smallest input always runs (cenet's is 192×192)
			}
			for _, train := range []bool{false, true} {
				if !train && i > 0 {
					continue
				}
				mode := "eval"
				if train {
					mode = "train"
				}
				j := &parityJob{Name: name + "/" + mode + "/" + sizeName(hw), Twin: s.Twin, Width: s.TestWidth, InChannels: 2, Classes: 3,
					Dir: filepath.Join(root, name, mode, sizeName(hw)), Train: train}
				require.NoError(t, os.MkdirAll(j.Dir, 0o755))
				prepareParity(t, s, j, hw)
				jobs[name] = append(jobs[name], j)
				all = append(all, j)
			}
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
			var dead map[string]bool // zero in every training-mode job so far
			for _, j := range jobs[name] {
				t.Run(strings.TrimPrefix(j.Name, name+"/"), func(t *testing.T) {
					zero := compareParity(t, j)
					if !j.Train {
						return
					}
					if dead == nil {
						dead = zero
						return
					}
					for k := range dead {
						if !zero[k] {
							delete(dead, k)
						}
					}
				})
			}
			// Equal zeros prove nothing: every weight must get a gradient at
			// some test size (attention over a 1×1 map has none, a bias before
			// a batch norm has none in training mode; biases are compared
			// either way).
			var names []string
			for k := range dead {
				if !strings.HasSuffix(k, ".bias") {
					names = append(names, k)
				}
			}
			slices.Sort(names)
			require.Empty(t, names, "weights whose gradient is zero on both sides at every training-mode test size, so parity does not test them")
		})
	}
}

// prepareParity builds the job's model in float64 with random BatchNorm
// statistics near the identity (running means 0.1·N(0,1), variances
// 0.5+U(0,1)) and every all-zero parameter (zero-initialised attention
// scales and output convolutions) filled with 0.1·N(0,1) so the branches
// behind it get gradients, in the job's mode, and writes its state (with
// the key order) and a random input to the job's directory.
func prepareParity(t *testing.T, s models.Spec, j *parityJob, hw [2]int64) {
	torch.ManualSeed(2)
	m, err := models.New(s.Name, models.Config{InChannels: j.InChannels, Classes: j.Classes, Width: j.Width})
	require.NoError(t, err)
	t.Cleanup(m.Free)
	require.NoError(t, m.ToDType(torch.Float64))
	set := func(dst *torch.Tensor, src *torch.Tensor) {
		defer src.Free()
		torch.NoGrad(func() { require.NoError(t, dst.CopyFrom(src)) })
	}
	for _, b := range m.NamedBuffers() {
		switch {
		case strings.HasSuffix(b.Name, "running_mean"):
			set(b.Tensor, torch.Randn(b.Tensor.Shape(), torch.Float64).MulScalar(0.1))
		case strings.HasSuffix(b.Name, "running_var"):
			set(b.Tensor, torch.Rand(b.Tensor.Shape(), torch.Float64).AddScalar(0.5))
		}
	}
	for _, p := range m.NamedParameters() {
		v, err := p.Tensor.Float64s()
		require.NoError(t, err)
		if !slices.ContainsFunc(v, func(f float64) bool { return f != 0 }) {
			set(p.Tensor, torch.Randn(p.Tensor.Shape(), torch.Float64).MulScalar(0.1))
		}
	}
	if j.Train {
		m.Train(true)
		for _, sub := range m.NamedModules() { // batch statistics, but no randomness
			switch d := sub.Node.(type) {
			case *nn.Dropout:
				d.P = 0
			case *nn.MultiheadAttention:
				d.Dropout = 0
			}
		}
	} else {
		m.Eval()
	}
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
// It returns the parameters whose gradient is zero on both sides.
func compareParity(t *testing.T, j *parityJob) map[string]bool {
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
	dead := map[string]bool{}
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
		if strings.HasPrefix(w.Name, "grad.") && !slices.ContainsFunc(wv, func(f float64) bool { return f != 0 }) {
			dead[strings.TrimPrefix(w.Name, "grad.")] = true
		}
	}
	return dead
}
