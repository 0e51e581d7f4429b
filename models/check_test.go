package models_test

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/safetensors"
)

func saveModel(t *testing.T, dir, name string, info models.Info) string {
	t.Helper()
	torch.ManualSeed(3)
	m, err := models.Build(info)
	require.NoError(t, err)
	defer m.Free()
	p := filepath.Join(dir, name)
	require.NoError(t, models.Save(p, m, info))
	return p
}

func unetInfo(width int64, stn bool) models.Info {
	return models.Info{Model: "unet", Config: models.Config{InChannels: 1, Classes: 2, Width: width}, Classes: []string{"bg", "fg"},
		Size: [2]int{32, 32}, STN: stn, Norm: models.DefaultNormalization()}
}

// Issue 12: a model file with a NaN (or infinite) weight is refused on
// load, naming the file and the tensor; it predicted all background.
func TestLoadRefusesNonFiniteWeights(t *testing.T) {
	dir := t.TempDir()
	p := saveModel(t, dir, "nan.safetensors", unetInfo(4, false))
	f, err := safetensors.ReadFile(p)
	require.NoError(t, err)
	var name string
	for i := range f.Tensors {
		if st := &f.Tensors[i]; st.DType == safetensors.F32 && len(st.Data) >= 8 {
			binary.LittleEndian.PutUint32(st.Data[4:], math.Float32bits(float32(math.NaN())))
			name = st.Name
			break
		}
	}
	require.NotEmpty(t, name)
	require.NoError(t, safetensors.WriteFile(p, f))

	_, _, err = models.Load(p)
	require.Error(t, err)
	assert.Contains(t, err.Error(), p)
	assert.Contains(t, err.Error(), name)
	assert.Contains(t, err.Error(), "NaN")

	fresh, err := models.Build(unetInfo(4, false))
	require.NoError(t, err)
	defer fresh.Free()
	_, _, err = models.LoadPretrained(p, fresh, "unet")
	require.Error(t, err)
	assert.Contains(t, err.Error(), name)
}

// Issue 12: a checkpoint of another width or STN setting is described in
// one sentence, not a list of keys.
func TestMismatchSentence(t *testing.T) {
	have, want := unetInfo(16, false), unetInfo(8, true)
	want.Config.Classes, want.Classes = 3, []string{"a", "b", "c"}
	s := models.Mismatch(have, want)
	assert.Contains(t, s, "unet width 16, 1 input channel, 2 classes, without STN")
	assert.Contains(t, s, "unet width 8, 1 input channel, 3 classes, with STN")
	assert.Contains(t, s, "width")
	assert.Less(t, len(s), 400)
	assert.Empty(t, models.Mismatch(have, have))
	enc := have
	enc.Kind = models.KindEncoder
	enc.Config.Classes = 7 // an encoder's classes do not matter
	assert.Empty(t, models.Mismatch(enc, unetInfo(16, true)))

	dir := t.TempDir()
	p := saveModel(t, dir, "w16.safetensors", unetInfo(16, false))
	fresh, err := models.Build(unetInfo(8, false))
	require.NoError(t, err)
	defer fresh.Free()
	_, _, err = models.LoadPretrained(p, fresh, "unet")
	require.Error(t, err)
	assert.Less(t, len(err.Error()), 600, err.Error())
	assert.Contains(t, err.Error(), "other shapes")
}

// With --stn on both sides the spatial transformer's weights load too.
func TestLoadPretrainedSTN(t *testing.T) {
	dir := t.TempDir()
	p := saveModel(t, dir, "stn.safetensors", unetInfo(4, true))
	torch.ManualSeed(99)
	fresh, err := models.Build(unetInfo(4, true))
	require.NoError(t, err)
	defer fresh.Free()
	_, rep, err := models.LoadPretrained(p, fresh, "unet")
	require.NoError(t, err)
	assert.True(t, rep.OK(), rep.String())
	saved, _, err := models.Load(p)
	require.NoError(t, err)
	defer saved.Free()
	assert.Equal(t, stateOf(t, saved), stateOf(t, fresh))
}
