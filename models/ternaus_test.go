package models_test

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// aliasCase is a model whose state dict names shared modules twice: every
// key under alias[0] has a twin key under alias[1] holding the same tensor.
type aliasCase struct {
	name    string
	width   int64
	hw      [2]int64
	aliases [][2]string // {first name, second name} prefixes
}

// checkAliases checks a model with shared modules: its state dict lists
// every alias (the same tensor under both keys, as PyTorch's state_dict()),
// its parameters list each tensor once under its first name, a models.Save
// file holds both keys and models.Load rebuilds it strictly with the same
// logits, and a file naming each tensor once (as safetensors' save_model
// writes) loads non-strictly with the same logits, missing exactly the
// second names.
func checkAliases(t *testing.T, c aliasCase) {
	m, err := models.New(c.name, models.Config{Width: c.width})
	require.NoError(t, err)
	t.Cleanup(m.Free)
	sd := m.StateDict()
	byName := map[string]*torch.Tensor{}
	for _, n := range sd {
		byName[n.Name] = n.Tensor
	}
	second := map[string]bool{}
	for _, a := range c.aliases {
		var n int
		for _, e := range sd {
			rest, ok := strings.CutPrefix(e.Name, a[0]+".")
			if !ok {
				continue
			}
			n++
			twin, ok := byName[a[1]+"."+rest]
			require.True(t, ok, "%s has no alias %s.%s", e.Name, a[1], rest)
			assert.Same(t, e.Tensor, twin, "%s and %s.%s", e.Name, a[1], rest)
			second[a[1]+"."+rest] = true
		}
		require.NotZero(t, n, "no keys under %s", a[0])
	}
	var params int64
	for _, p := range m.NamedParameters() {
		assert.False(t, second[p.Name], "parameter %s listed under its second name", p.Name)
		params += p.Tensor.Numel()
	}
	assert.Equal(t, m.NumParams(), params)
	var unique []nn.Named // each tensor once, under its first name
	seen := map[*torch.Tensor]bool{}
	for _, e := range sd {
		if !seen[e.Tensor] {
			seen[e.Tensor] = true
			unique = append(unique, e)
		}
	}
	assert.Len(t, unique, len(sd)-len(second))

	liveBatchNormStats(t, m)
	m.Eval()
	torch.ManualSeed(3)
	x := torch.Randn([]int64{2, 3, c.hw[0], c.hw[1]})
	t.Cleanup(x.Free)
	logits := func(m nn.Module) []float32 {
		y := m.Forward(x)
		defer y.Free()
		v, err := torch.ToSlice[float32](y)
		require.NoError(t, err)
		return v
	}
	want := logits(m)

	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	require.NoError(t, models.Save(path, m, models.Info{Model: c.name, Config: models.Config{InChannels: 3, Classes: 2, Width: c.width}, Classes: []string{"background", "brain"}, Size: [2]int{int(c.hw[0]), int(c.hw[1])}}))
	file, _, err := ckpt.ReadTensors(path)
	require.NoError(t, err)
	var keys []string
	for _, e := range file {
		keys = append(keys, e.Name)
	}
	ckpt.Free(file)
	assert.Equal(t, stateKeys(sd), keys, "the file holds every alias, in state-dict order")
	back, _, err := models.Load(path)
	require.NoError(t, err)
	t.Cleanup(back.Free)
	assert.Equal(t, want, logits(back))

	once := filepath.Join(dir, "once.safetensors")
	require.NoError(t, ckpt.WriteTensors(once, unique, nil))
	fresh, err := models.New(c.name, models.Config{Width: c.width})
	require.NoError(t, err)
	t.Cleanup(fresh.Free)
	_, rep, err := models.LoadPretrained(once, fresh, c.name)
	require.NoError(t, err)
	missing := slices.Sorted(func(yield func(string) bool) {
		for k := range second {
			if !yield(k) {
				return
			}
		}
	})
	slices.Sort(rep.Missing)
	assert.Equal(t, missing, rep.Missing)
	assert.Empty(t, rep.Unexpected)
	fresh.Eval()
	assert.Equal(t, want, logits(fresh))
}

// ternaus's conv1..conv5 are views into the VGG encoder: both names are in
// the state dict and the checkpoint, the parameters count once.
func TestTernausAliases(t *testing.T) {
	checkAliases(t, aliasCase{name: "ternaus", width: 8, hw: [2]int64{64, 32}, aliases: [][2]string{
		{"encoder.0", "conv1.0"}, {"encoder.2", "conv1.2"}, {"encoder.5", "conv2.0"}, {"encoder.7", "conv2.2"},
		{"encoder.10", "conv3.0"}, {"encoder.12", "conv3.2"}, {"encoder.14", "conv3.4"},
		{"encoder.17", "conv4.0"}, {"encoder.19", "conv4.2"}, {"encoder.21", "conv4.4"},
		{"encoder.24", "conv5.0"}, {"encoder.26", "conv5.2"}, {"encoder.28", "conv5.4"}}})
}

// ternaus's keys are the reference's, in PyTorch's state_dict() order.
func TestTernausStateDictKeys(t *testing.T) {
	m, err := models.New("ternaus", models.Config{Width: 4})
	require.NoError(t, err)
	defer m.Free()
	k := stateKeys(m.StateDict())
	assert.Equal(t, "encoder.0.weight", k[0])
	assert.Equal(t, "final.bias", k[len(k)-1])
	assert.Len(t, k, 76) // 26 encoder + 26 aliases + 24 decoder
	for _, h := range []string{"encoder.28.bias", "conv1.0.weight", "conv5.4.bias", "center.block.1.conv.weight",
		"center.block.2.conv.bias", "dec5.block.1.conv.weight", "dec2.block.2.conv.bias", "dec1.conv.weight", "final.weight"} {
		assert.True(t, slices.Contains(k, h), "missing %s", h)
	}
	assert.Less(t, slices.Index(k, "encoder.28.bias"), slices.Index(k, "conv1.0.weight"))
	assert.Less(t, slices.Index(k, "conv5.4.bias"), slices.Index(k, "center.block.1.conv.weight"))
}

// Inputs that are not multiples of 32, and odd widths, are errors naming
// the model.
func TestTernausErrors(t *testing.T) {
	_, err := models.New("ternaus", models.Config{Width: 5})
	require.ErrorContains(t, err, "ternaus")
	require.ErrorContains(t, err, "not even")
	m, err := models.New("ternaus", models.Config{Width: 4})
	require.NoError(t, err)
	defer m.Free()
	s := torch.NewScope()
	defer s.Close()
	for _, hw := range [][2]int64{{16, 16}, {48, 64}, {64, 40}} {
		err := m.Forward(torch.Zeros([]int64{1, 3, hw[0], hw[1]}, s)).Err()
		require.ErrorContains(t, err, "ternaus takes a height and width that are multiples of 32", "%v", hw)
	}
	spec, _ := models.Lookup("ternaus")
	require.Error(t, spec.CheckSize(16, 16))
	require.NoError(t, spec.CheckSize(32, 64))
}

// ternaus and csnet start from He initialisation (ternaus: fan out, as
// torchvision's VGG; csnet: fan in, the reference's): weight standard
// deviation √(2/fan) within sampling error, zero biases.
func TestHeInitialisation(t *testing.T) {
	for _, tc := range []struct {
		model, key string
		fan        float64
	}{
		{"ternaus", "encoder.26.weight", 32 * 9},        // [32 32 3 3]: fan out 32·9
		{"ternaus", "dec5.block.1.conv.weight", 32 * 9}, // [32 48 3 3]
		{"csnet", "encoder4.conv2.weight", 0},           // fan in 64·9
	} {
		t.Run(tc.model+"/"+tc.key, func(t *testing.T) {
			m, err := models.New(tc.model, models.Config{Width: 4})
			require.NoError(t, err)
			defer m.Free()
			var w, b *torch.Tensor
			for _, p := range m.StateDict() {
				switch p.Name {
				case tc.key:
					w = p.Tensor
				case strings.TrimSuffix(tc.key, "weight") + "bias":
					b = p.Tensor
				}
			}
			require.NotNil(t, w, "no %s", tc.key)
			sh := w.Shape()
			fan := tc.fan
			if fan == 0 { // fan in
				fan = float64(sh[1] * sh[2] * sh[3])
			}
			v, err := w.Float32s()
			require.NoError(t, err)
			var ss float64
			for _, x := range v {
				ss += float64(x) * float64(x)
			}
			std, want := math.Sqrt(ss/float64(len(v))), math.Sqrt(2/fan)
			assert.InEpsilon(t, want, std, 4/math.Sqrt(float64(len(v))), "std of %s (%d values)", tc.key, len(v))
			if b != nil {
				bv, err := b.Float32s()
				require.NoError(t, err)
				for _, x := range bv {
					require.Zero(t, x)
				}
			}
		})
	}
}
