package models_test

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/oracle/py"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
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
	require.ErrorContains(t, m.Forward(torch.Zeros([]int64{1, 4, 64, 64}, s)).Err(), "setr: input has 4 channels, the model was built for 3")
	require.ErrorContains(t, m.Forward(torch.Zeros([]int64{3, 64, 64}, s)).Err(), "setr: want an input [N, C, H, W], got shape [3 64 64]")
}

// The test fields every registered model must declare. checkSpec is the
// one judge of them: every per-model test calls spec, so a model that
// leaves one out fails each of them by name, and none skips it.
func checkSpec(s models.Spec) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.Build == nil || s.Description == "" || s.RefParams <= 0 || s.Multiple <= 0 || s.DefaultWidth <= 0 {
		add("Build, Description, RefParams, Multiple and DefaultWidth must all be set")
	}
	if s.MinSize < 0 || s.Multiple > 0 && s.MinSize%s.Multiple != 0 {
		add("MinSize %d is not a multiple of Multiple %d", s.MinSize, s.Multiple)
	}
	if s.TestWidth <= 0 || s.TestWidth >= s.DefaultWidth {
		add("TestWidth %d: declare a small test width, 0 < TestWidth < DefaultWidth (%d)", s.TestWidth, s.DefaultWidth)
	}
	if len(s.TestSizes) < 2 {
		add("TestSizes %v: declare at least two test sizes", s.TestSizes)
	}
	smallest, reference := false, false
	for _, hw := range s.TestSizes {
		if err := s.CheckSize(hw[0], hw[1]); err != nil {
			add("TestSizes: %v", err)
		}
		smallest = smallest || hw == [2]int64{s.MinSide(), s.MinSide()}
		reference = reference || hw == [2]int64{512, 512}
	}
	if !smallest {
		add("TestSizes %v lack the smallest input, {%d, %d}", s.TestSizes, s.MinSide(), s.MinSide())
	}
	if !reference {
		add("TestSizes %v lack the reference's {512, 512}", s.TestSizes)
	}
	if err := py.CheckTwin(s.Twin); err != nil {
		add("Twin: %v", err)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("models: %s: %w", s.Name, errors.Join(errs...))
}

// spec returns name's registration, failing t unless it declares every
// test field.
func spec(t *testing.T, name string) models.Spec {
	t.Helper()
	s, ok := models.Lookup(name)
	require.True(t, ok, "%s is not registered", name)
	require.NoError(t, checkSpec(s))
	return s
}

// build makes name at its test width in float32.
func build(t *testing.T, s models.Spec, in, classes int64) nn.Module {
	t.Helper()
	m, err := models.New(s.Name, models.Config{InChannels: in, Classes: classes, Width: s.TestWidth})
	require.NoError(t, err)
	t.Cleanup(m.Free)
	return m
}

func sizeName(hw [2]int64) string { return fmt.Sprintf("%dx%d", hw[0], hw[1]) }

// batchFor is 2 (so batch statistics and per-sample independence are
// exercised) below the reference size and 1 at it.
func batchFor(hw [2]int64) int64 {
	if hw[0]*hw[1] >= 512*512 {
		return 1
	}
	return 2
}

// Every registered model declares its test width, sizes and PyTorch twin.
func TestSpecs(t *testing.T) {
	require.NotEmpty(t, models.Names())
	for _, name := range models.Names() {
		t.Run(name, func(t *testing.T) { spec(t, name) })
	}
}

// checkSpec catches each omission, so the per-model tests cannot run a
// model on defaults that hide it.
func TestCheckSpecCatchesOmissions(t *testing.T) {
	good, _ := models.Lookup("unet")
	require.NoError(t, checkSpec(good))
	for _, tc := range []struct {
		name, want string
		edit       func(s *models.Spec)
	}{
		{"no width", "TestWidth 0", func(s *models.Spec) { s.TestWidth = 0 }},
		{"reference width", "TestWidth 64", func(s *models.Spec) { s.TestWidth = s.DefaultWidth }},
		{"no sizes", "at least two", func(s *models.Spec) { s.TestSizes = nil }},
		{"one size", "at least two", func(s *models.Spec) { s.TestSizes = [][2]int64{{16, 16}} }},
		{"no smallest", "lack the smallest", func(s *models.Spec) { s.TestSizes = [][2]int64{{32, 32}, {512, 512}} }},
		{"below MinSize", "at least 32", func(s *models.Spec) { s.MinSize = 32 }},
		{"MinSize off the grid", "not a multiple", func(s *models.Spec) { s.MinSize = 24; s.TestSizes = [][2]int64{{48, 48}, {512, 512}} }},
		{"no reference", "lack the reference", func(s *models.Spec) { s.TestSizes = [][2]int64{{16, 16}, {64, 64}} }},
		{"bad size", "multiples of 16", func(s *models.Spec) { s.TestSizes = append(s.TestSizes, [2]int64{16, 40}) }},
		{"no twin", "Twin", func(s *models.Spec) { s.Twin = "" }},
		{"twin not there", "defines no class", func(s *models.Spec) { s.Twin = "unet.Missing" }},
		{"no build", "Build", func(s *models.Spec) { s.Build = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			s.TestSizes = append([][2]int64(nil), good.TestSizes...)
			tc.edit(&s)
			assert.ErrorContains(t, checkSpec(s), tc.want)
		})
	}
}

// Forward and backward at every declared size (a 2-image batch, one image
// at 512×512) at the test width, 1 input channel and 3 classes (neither
// default, so a hard-coded 3 or 2 shows): output shape, finite loss, a
// finite gradient on every parameter, no tensor left behind.
func TestForwardBackward(t *testing.T) {
	for _, name := range models.Names() {
		t.Run(name, func(t *testing.T) {
			s := spec(t, name)
			m := build(t, s, 1, 3)
			for _, hw := range s.TestSizes {
				t.Run(sizeName(hw), func(t *testing.T) { forwardBackward(t, m, max(batchFor(hw), s.MinTrainBatch), hw) })
			}
		})
	}
}

func forwardBackward(t *testing.T, m nn.Module, batch int64, hw [2]int64) {
	torch.ManualSeed(1)
	n0, _ := torch.Live()
	func() {
		s := torch.NewScope()
		defer s.Close()
		x := torch.Randn([]int64{batch, 1, hw[0], hw[1]}, s)
		y := torch.RandInt(0, 3, []int64{batch, hw[0], hw[1]}, s)
		logits := m.Forward(x)
		require.NoError(t, logits.Err())
		assert.Equal(t, []int64{batch, 3, hw[0], hw[1]}, logits.Shape())
		l := torch.CrossEntropy(logits, y, nil, torch.ReduceMean, -100, 0)
		v, err := l.Item()
		require.NoError(t, err)
		assert.False(t, math.IsNaN(v) || math.IsInf(v, 0), "loss %v", v)
		require.NoError(t, l.Backward())
		for _, p := range m.NamedParameters() {
			g := s.Track(p.Tensor.Grad())
			require.NotNil(t, g, "%s has no gradient", p.Name)
			n, err := g.Abs().Sum().Item()
			require.NoError(t, err)
			require.False(t, math.IsNaN(n) || math.IsInf(n, 0), "%s has a gradient of norm %v", p.Name, n)
		}
		require.NoError(t, m.ZeroGrad())
	}()
	n1, _ := torch.Live()
	assert.Equal(t, n0, n1, "forward and backward leave no tensors behind")
}
