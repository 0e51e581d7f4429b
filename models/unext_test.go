package models_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/oracle/py"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// unextParityJob prepares a parity job for a model built outside the
// registry (a quirk option), as prepareParity does for registered ones but
// with running statistics set near the identity (means 0.1·N(0, 1),
// variances 0.5 + U(0, 1)): prepareParity's added U(0, 1) to the means
// switches off every ReLU after unext's first stage at a small width, which
// would leave the shifted-MLP blocks, and the quirk, untested.
func unextParityJob(t *testing.T, m nn.Module, twin string, hw [2]int64) *parityJob {
	j := &parityJob{Name: twin, Twin: twin, Width: 4, InChannels: 2, Classes: 3, Dir: filepath.Join(t.TempDir(), "job")}
	require.NoError(t, os.MkdirAll(j.Dir, 0o755))
	require.NoError(t, m.ToDType(torch.Float64))
	for _, b := range m.NamedBuffers() {
		if !b.Tensor.DType().IsFloat() {
			continue
		}
		require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
			v := torch.Rand(b.Tensor.Shape(), torch.Float64, s).AddScalar(0.5)
			if strings.HasSuffix(b.Name, "running_mean") {
				v = torch.Randn(b.Tensor.Shape(), torch.Float64, s).MulScalar(0.1)
			}
			var err error
			torch.NoGrad(func() { err = b.Tensor.CopyFrom(v) })
			return err
		}))
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
	return j
}

// The reference's shift quirk (both shifts along the height) equals its
// PyTorch twin, and differs from the published shifts of the default.
func TestUNextReferenceShift(t *testing.T) {
	py.Python(t)
	torch.ManualSeed(3)
	c := models.Config{InChannels: 2, Classes: 3, Width: 4}
	quirk := models.NewUNext(c, models.UNextOptions{ReferenceShift: true})
	require.NoError(t, quirk.Err())
	t.Cleanup(quirk.Free)
	j := unextParityJob(t, quirk, "unext.UNextReferenceShift", [2]int64{64, 96})
	b, err := json.Marshal([]*parityJob{j})
	require.NoError(t, err)
	jobs := filepath.Join(filepath.Dir(j.Dir), "jobs.json")
	require.NoError(t, os.WriteFile(jobs, b, 0o644))
	py.Run(t, "twin_check.py", jobs, "1")
	compareParity(t, j)
	s := torch.NewScope()
	defer s.Close()
	for _, p := range quirk.NamedParameters() {
		g, err := s.Track(p.Tensor.Grad()).Abs().Max().Item()
		require.NoError(t, err)
		assert.NotZero(t, g, "%s has a zero gradient: the parity test does not reach it", p.Name)
	}

	sound := models.NewUNext(c, models.UNextOptions{})
	require.NoError(t, sound.Err())
	t.Cleanup(sound.Free)
	require.NoError(t, sound.ToDType(torch.Float64))
	_, err = sound.LoadStateDict(quirk.StateDict(), true)
	require.NoError(t, err)
	sound.Eval()
	var d float64
	torch.NoGrad(func() {
		d, err = s.Track(sound.Forward(j.x)).Sub(s.Track(quirk.Forward(j.x))).Abs().Max().Item()
	})
	require.NoError(t, err)
	assert.Greater(t, d, 1e-6, "the shift axis makes no difference")
}

// An input whose sides are not multiples of 32 is an error naming unext
// and the sizes it takes, not a libtorch shape error.
func TestUNextSizeError(t *testing.T) {
	m, err := models.New("unext", models.Config{Width: 4})
	require.NoError(t, err)
	defer m.Free()
	s := torch.NewScope()
	defer s.Close()
	for _, hw := range [][2]int64{{48, 64}, {16, 16}, {64, 100}} {
		err := m.Forward(torch.Zeros([]int64{1, 3, hw[0], hw[1]}, s)).Err()
		require.ErrorContains(t, err, "unext takes")
		require.ErrorContains(t, err, "multiples of 32")
	}
}
