package sas_test

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/internal/oracle"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/sas"
	"github.com/jmedseg/jmedseg/torch"
)

func TestInfoNCEMatchesPyTorch(t *testing.T) {
	const py = "F.cross_entropy(torch.cat([(a * b).sum(1, keepdim=True), a @ c.t()], 1) / 0.07, torch.zeros(a.shape[0], dtype=torch.long))"
	norm := func(x *torch.Tensor) *torch.Tensor { return x.Div(x.Norm(2, []int64{1}, true)) }
	oracle.Check(t, []oracle.Case{{
		Name: "infonce", In: []oracle.Input{oracle.F64(4, 8), oracle.F64(4, 8), oracle.NoGrad(oracle.F64(16, 8))},
		Setup: "a = a / a.norm(dim=1, keepdim=True); b = b / b.norm(dim=1, keepdim=True); c = c / c.norm(dim=1, keepdim=True)",
		Py:    py,
		Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return oracle.One(sas.InfoNCE(norm(x[0]), norm(x[1]), norm(x[2]), 0.07))
		},
	}})
}

func TestPretrain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "brain")
	_, err := data.Prepare(context.Background(), data.PrepareOptions{Out: dir, Size: 64})
	require.NoError(t, err)
	ds, err := data.Open(dir)
	require.NoError(t, err)
	samples, err := ds.Split("train")
	require.NoError(t, err)
	torch.ManualSeed(1)
	m, err := models.New("unet", models.Config{InChannels: 1, Classes: 2, Width: 4})
	require.NoError(t, err)
	defer m.Free()
	before, _ := m.StateDict()[0].Tensor.Float32s()
	n0, _ := torch.Live()
	losses, err := sas.Pretrain(context.Background(), m.(sas.Encoder), samples, sas.PretrainOptions{Epochs: 2, Batch: 8, LR: 1e-3,
		Queue: 20, Size: [2]int{64, 64}, Channels: 1, Workers: 2, Device: torch.CPU})
	require.NoError(t, err)
	require.Len(t, losses, 2)
	for _, l := range losses {
		assert.False(t, math.IsNaN(l))
		assert.Greater(t, l, 0.0)
	}
	after, _ := m.StateDict()[0].Tensor.Float32s()
	assert.NotEqual(t, before, after, "the encoder was trained")
	n1, _ := torch.Live()
	assert.Equal(t, n0, n1, "pretraining frees what it creates")

	_, err = sas.Pretrain(context.Background(), m.(sas.Encoder), samples[:1], sas.PretrainOptions{Size: [2]int{64, 64}, Channels: 1})
	require.ErrorContains(t, err, "at least 2 images")
}

// The encoder's state is the part of the state dict Encode uses: for the
// U-Net inc and down1..down4 with their BatchNorm statistics, nothing of the
// decoder. Saved as an encoder file, it initialises a new model through
// models.LoadPretrained, and models.Load refuses it.
func TestEncoderStateRoundTrip(t *testing.T) {
	torch.ManualSeed(2)
	cfg := models.Config{InChannels: 1, Classes: 2, Width: 4}
	m, err := models.New("unet", cfg)
	require.NoError(t, err)
	defer m.Free()
	m.Train(true)
	n0, _ := torch.Live()
	state, err := sas.EncoderState(m.(sas.Encoder), 1, [2]int{32, 32}, torch.CPU)
	require.NoError(t, err)
	n1, _ := torch.Live()
	assert.Equal(t, n0, n1, "EncoderState leaves no tensor behind")
	assert.True(t, m.Training(), "the training mode is restored")
	keys := map[string]bool{}
	for _, n := range state {
		keys[n.Name] = true
		assert.Regexp(t, `^(inc|down[1-4])\.`, n.Name)
	}
	assert.True(t, keys["inc.double_conv.0.weight"] && keys["down4.maxpool_conv.1.double_conv.4.running_mean"], "weights and statistics")
	for _, p := range m.NamedParameters() {
		g := p.Tensor.Grad()
		assert.Nil(t, g, "%s: gradients are cleared", p.Name)
		if g != nil {
			g.Free()
		}
	}

	path := filepath.Join(t.TempDir(), "enc.safetensors")
	require.NoError(t, models.SaveEncoder(path, state, models.Info{Model: "unet", Config: cfg, Extra: map[string]string{"jmedseg.pretrain_losses": "[1.5]"}}))
	info, err := models.ReadInfo(path)
	require.NoError(t, err)
	assert.Equal(t, models.KindEncoder, info.Kind)
	assert.Equal(t, cfg, info.Config)
	assert.Equal(t, "[1.5]", info.Extra["jmedseg.pretrain_losses"])

	fresh, err := models.New("unet", cfg)
	require.NoError(t, err)
	defer fresh.Free()
	_, rep, err := models.LoadPretrained(path, fresh, "unet")
	require.NoError(t, err)
	assert.Empty(t, rep.Unexpected)
	assert.Len(t, rep.Missing, len(fresh.StateDict())-len(state), "only the decoder is missing")
	want, _ := state[0].Tensor.Float32s()
	got, _ := fresh.StateDict()[0].Tensor.Float32s()
	assert.Equal(t, want, got)

	_, _, err = models.LoadPretrained(path, fresh, "deeplab")
	assert.ErrorContains(t, err, "holds unet weights")
	_, _, err = models.Load(path)
	assert.ErrorContains(t, err, "pretrained encoder")
}
