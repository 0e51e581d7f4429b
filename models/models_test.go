package models_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/oracle"
	"github.com/jmedseg/jmedseg/internal/oracle/py"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// Every registered model has exactly the reference's trainable parameter
// count with default arguments.
func TestReferenceParameterCounts(t *testing.T) {
	for _, name := range models.Names() {
		t.Run(name, func(t *testing.T) {
			spec, _ := models.Lookup(name)
			m, err := models.New(name, models.Config{})
			require.NoError(t, err)
			defer m.Free()
			assert.Equal(t, spec.RefParams, m.NumParams())
		})
	}
}

func TestUNetStateDictKeys(t *testing.T) {
	m, err := models.New("unet", models.Config{Width: 4})
	require.NoError(t, err)
	defer m.Free()
	var keys []string
	for _, n := range m.StateDict() {
		keys = append(keys, n.Name)
	}
	for _, k := range []string{"inc.double_conv.0.weight", "inc.double_conv.1.num_batches_tracked",
		"down1.maxpool_conv.1.double_conv.0.weight", "down4.maxpool_conv.1.double_conv.4.running_var",
		"up1.conv.double_conv.3.weight", "outc.conv.bias"} {
		assert.Contains(t, keys, k)
	}
	assert.Equal(t, "inc.double_conv.0.weight", keys[0])
	assert.Equal(t, "outc.conv.bias", keys[len(keys)-1])
}

func TestErrors(t *testing.T) {
	_, err := models.New("nope", models.Config{})
	require.ErrorContains(t, err, `unknown model "nope"`)
	_, err = models.New("unet", models.Config{Classes: -1})
	require.ErrorContains(t, err, "must be positive")
	_, err = models.New("setr", models.Config{Width: 20})
	require.ErrorContains(t, err, "multiple of 16")
	spec, _ := models.Lookup("setr")
	require.Error(t, spec.CheckSize(100, 128))
	require.NoError(t, spec.CheckSize(128, 64))

	m, err := models.New("setr", models.Config{Width: 32})
	require.NoError(t, err)
	defer m.Free()
	s := torch.NewScope()
	defer s.Close()
	require.ErrorContains(t, m.Forward(torch.Zeros([]int64{1, 3, 48, 64}, s)).Err(), "multiples of 32")
	require.ErrorContains(t, m.Forward(torch.Zeros([]int64{1, 3, 32 * 32, 32 * 17}, s)).Err(), "position table holds 512")
	require.ErrorContains(t, m.Forward(torch.Zeros([]int64{1, 4, 64, 64}, s)).Err(), "linear")
}

var small = map[string]int64{"unet": 4, "attunet": 4, "deeplab": 4, "setr": 32}

// Forward and backward at 128×128 (a 2-image batch) and 512×512 (one image,
// the reference size) on small widths: output shape, finite loss, a
// gradient on every parameter, no leaked tensors.
func TestForwardBackward(t *testing.T) {
	for _, tc := range []struct {
		name        string
		batch, side int64
	}{{"128", 2, 128}, {"512", 1, 512}} {
		for _, name := range models.Names() {
			t.Run(name+"/"+tc.name, func(t *testing.T) { forwardBackward(t, name, tc.batch, tc.side) })
		}
	}
}

func forwardBackward(t *testing.T, name string, batch, side int64) {
	torch.ManualSeed(1)
	m, err := models.New(name, models.Config{InChannels: 3, Classes: 3, Width: small[name]})
	require.NoError(t, err)
	defer m.Free()
	n0, _ := torch.Live()
	func() {
		s := torch.NewScope()
		defer s.Close()
		x := torch.Randn([]int64{batch, 3, side, side}, s)
		y := torch.RandInt(0, 3, []int64{batch, side, side}, s)
		logits := m.Forward(x)
		require.NoError(t, logits.Err())
		assert.Equal(t, []int64{batch, 3, side, side}, logits.Shape())
		l := torch.CrossEntropy(logits, y, nil, torch.ReduceMean, -100, 0)
		v, err := l.Item()
		require.NoError(t, err)
		assert.False(t, math.IsNaN(v) || math.IsInf(v, 0))
		require.NoError(t, l.Backward())
		for _, p := range m.NamedParameters() {
			g := s.Track(p.Tensor.Grad())
			require.NotNil(t, g, "%s has no gradient", p.Name)
		}
		require.NoError(t, m.ZeroGrad())
	}()
	n1, _ := torch.Live()
	assert.Equal(t, n0, n1, "forward and backward leave no tensors behind")
}

// Each model equals its PyTorch twin (bench/models) given the same weights:
// same state-dict keys in the same order, same output, same gradients.
func TestMatchesPyTorch(t *testing.T) {
	py.Python(t)
	twins := map[string]string{"unet": "unet.UNet", "attunet": "attunet.AttUNet", "deeplab": "deeplab.DeepLab", "setr": "setr.SETR"}
	for _, name := range models.Names() {
		if _, ok := small[name]; !ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			torch.ManualSeed(2)
			m, err := models.New(name, models.Config{InChannels: 3, Classes: 2, Width: small[name]})
			require.NoError(t, err)
			defer m.Free()
			require.NoError(t, m.ToDType(torch.Float64))
			// Perturb BN statistics so eval mode is a real test of them.
			s := torch.NewScope()
			defer s.Close()
			for _, b := range m.NamedBuffers() {
				if b.Tensor.DType().IsFloat() {
					torch.NoGrad(func() { require.NoError(t, b.Tensor.AddInPlace(s.Track(torch.Rand(b.Tensor.Shape(), torch.Float64)))) })
				}
			}
			m.Eval()
			dir := t.TempDir()
			var order []string
			for _, n := range m.StateDict() {
				order = append(order, n.Name)
			}
			ob, _ := json.Marshal(order)
			require.NoError(t, ckpt.Save(filepath.Join(dir, "state.safetensors"), m, map[string]string{"order": string(ob)}))
			x := torch.Randn([]int64{1, 3, 64, 64}, torch.Float64, s)
			require.NoError(t, ckpt.WriteTensors(filepath.Join(dir, "input.safetensors"), []nn.Named{{Name: "x", Tensor: x}}, nil))

			jobs, _ := json.Marshal([]map[string]any{{"name": name, "twin": twins[name], "width": small[name], "in_channels": 3, "classes": 2, "dir": dir}})
			require.NoError(t, os.WriteFile(filepath.Join(dir, "jobs.json"), jobs, 0o644))
			py.Run(t, "twin_check.py", filepath.Join(dir, "jobs.json"), "1")
			if b, err := os.ReadFile(filepath.Join(dir, "error.txt")); err == nil {
				t.Fatalf("twin_check.py: %s", b)
			}
			want, _, err := ckpt.ReadTensors(filepath.Join(dir, "out.safetensors"))
			require.NoError(t, err)
			defer ckpt.Free(want)

			y := m.Forward(x)
			wt := torch.Arange(0, float64(y.Numel()), 1, s).ToDType(torch.Float64).Sin().Reshape(y.Shape()...)
			require.NoError(t, y.Mul(wt).Sum().Backward())
			got := map[string]*torch.Tensor{"y": y}
			for _, p := range m.NamedParameters() {
				got["grad."+p.Name] = s.Track(p.Tensor.Grad())
			}
			require.Len(t, got, len(want)-1) // want also holds grad_input
			for _, w := range want {
				if w.Name == "grad_input" {
					continue
				}
				g, ok := got[w.Name]
				require.True(t, ok, w.Name)
				wv, err := w.Tensor.Float64s()
				require.NoError(t, err)
				gv, err := g.Float64s()
				require.NoError(t, err)
				oracle.AssertClose(t, wv, gv, 1e-8, "%s", w.Name)
			}
		})
	}
}

func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }
