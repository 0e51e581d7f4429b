package models_test

import (
	"image"
	"image/color"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/augment"
	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func stateOf(t *testing.T, m nn.Node) map[string][]float64 {
	t.Helper()
	out := map[string][]float64{}
	for _, n := range m.StateDict() {
		v, err := n.Tensor.Float64s()
		require.NoError(t, err)
		out[n.Name] = v
	}
	return out
}

// A model file holds the weights and the info; Load rebuilds the same
// model (spatial transformer included) in evaluation mode.
func TestSaveLoadRoundTrip(t *testing.T) {
	torch.ManualSeed(5)
	info := models.Info{Model: "unet", Config: models.Config{InChannels: 3, Classes: 3, Width: 4}, Classes: []string{"bg", "a", "b"},
		Size: [2]int{32, 48}, STN: true, Spacing: []float64{0.5, 0.7}, Epoch: 4, ValDice: 0.75,
		Norm: models.Normalization{Scale: models.ScaleUnit, Mean: []float32{0.1, 0.2, 0.3}, Std: []float32{0.5, 0.6, 0.7}}}
	m, err := models.Build(info)
	require.NoError(t, err)
	defer m.Free()
	require.IsType(t, &models.WithSTN{}, m)
	path := filepath.Join(t.TempDir(), "m.safetensors")
	require.NoError(t, models.Save(path, m, info))

	got, gi, err := models.Load(path)
	require.NoError(t, err)
	defer got.Free()
	assert.False(t, got.Training(), "loaded in evaluation mode")
	info.Kind = models.KindModel
	assert.Equal(t, info, gi)
	assert.Equal(t, stateOf(t, m), stateOf(t, got))
	ri, err := models.ReadInfo(path)
	require.NoError(t, err)
	assert.Equal(t, info, ri)
}

// Files written before the normalisation was recorded (train's format of
// the time, through torch/ckpt) load with the default: [0, 1] scaling only.
// A training checkpoint's model loads too, its other state left alone.
func TestLoadOlderFiles(t *testing.T) {
	m, err := models.New("unet", models.Config{InChannels: 1, Classes: 2, Width: 4})
	require.NoError(t, err)
	defer m.Free()
	dir := t.TempDir()
	old := map[string]string{"jmedseg.model": "unet", "jmedseg.config": `{"in_channels":1,"classes":2,"width":4}`,
		"jmedseg.classes": `["background","brain"]`, "jmedseg.size": "64x64", "jmedseg.pixel_spacing_mm": "null",
		"jmedseg.epoch": "2", "jmedseg.val_foreground_dice": "0.5", "jmedseg.stn": "false"}
	path := filepath.Join(dir, "best.safetensors")
	require.NoError(t, ckpt.Save(path, m, old))
	got, info, err := models.Load(path)
	require.NoError(t, err)
	got.Free()
	assert.Equal(t, models.DefaultNormalization(), info.Norm)
	assert.Equal(t, [2]int{64, 64}, info.Size)
	assert.Equal(t, 2, info.Epoch)

	last := filepath.Join(dir, "last.safetensors")
	old["jmedseg.history"] = "[]"
	// train's layout (train.SaveCheckpoint, tested against Load there): the
	// model under ckpt.ModelPrefix, kind training, beside other state
	rng := torch.RNGState()
	defer rng.Free()
	sd := []nn.Named{{Name: "optimizer.0.exp_avg", Tensor: m.StateDict()[0].Tensor}, {Name: "rng.cpu", Tensor: rng}}
	for _, n := range m.StateDict() {
		sd = append(sd, nn.Named{Name: ckpt.ModelPrefix + n.Name, Tensor: n.Tensor})
	}
	require.NoError(t, ckpt.WriteTensors(last, sd, with(old, ckpt.MetaKind, ckpt.KindTraining)))
	got, info, err = models.Load(last)
	require.NoError(t, err)
	defer got.Free()
	assert.Equal(t, models.KindTraining, info.Kind)
	assert.Equal(t, "[]", info.Extra["jmedseg.history"])
	assert.Equal(t, stateOf(t, m), stateOf(t, got))

	// An encoder file of the old layout (whole network, named by
	// jmedseg.pretrained_model) is an encoder file.
	enc := filepath.Join(dir, "enc.safetensors")
	require.NoError(t, ckpt.Save(enc, m, map[string]string{"jmedseg.pretrained_model": "unet", "jmedseg.config": old["jmedseg.config"]}))
	fresh, err := models.New("unet", models.Config{InChannels: 1, Classes: 2, Width: 4})
	require.NoError(t, err)
	defer fresh.Free()
	pi, rep, err := models.LoadPretrained(enc, fresh, "unet")
	require.NoError(t, err)
	assert.Equal(t, models.KindEncoder, pi.Kind)
	assert.True(t, rep.OK())
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	m, err := models.New("unet", models.Config{InChannels: 1, Classes: 2, Width: 4})
	require.NoError(t, err)
	defer m.Free()
	dir := t.TempDir()
	good := map[string]string{"jmedseg.model": "unet", "jmedseg.config": `{"in_channels":1,"classes":2,"width":4}`,
		"jmedseg.classes": `["a","b"]`, "jmedseg.size": "32x32"}
	tests := []struct {
		name string
		meta map[string]string
		want string
	}{
		{"plain", map[string]string{}, "not a jmedseg model file"},
		{"config", map[string]string{"jmedseg.model": "unet", "jmedseg.config": "{"}, "bad model configuration"},
		{"size", with(good, "jmedseg.size", "0x3"), "bad input size"},
		{"norm", with(good, "jmedseg.normalization", `{"scale":"unit","mean":[0.5],"std":[0]}`), "standard deviation 0 is zero"},
		{"norm channels", with(good, "jmedseg.normalization", `{"scale":"unit","mean":[0.5,0.5,0.5],"std":[1,1,1]}`), "3 means for a model of 1"},
		{"scale", with(good, "jmedseg.normalization", `{"scale":"percentile"}`), `unknown input scaling "percentile"`},
		{"kind", with(good, "jmedseg.kind", "optimizer"), `unknown kind of jmedseg file "optimizer"`},
		{"model", with(good, "jmedseg.model", "nope"), `unknown model "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".safetensors")
			require.NoError(t, ckpt.Save(path, m, tc.meta))
			_, _, err := models.Load(path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), path)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, _, err = models.Load(filepath.Join(dir, "missing.safetensors"))
	assert.ErrorContains(t, err, "missing.safetensors")

	// Weights of another width do not load, and say which tensor.
	path := filepath.Join(dir, "wide.safetensors")
	require.NoError(t, ckpt.Save(path, m, with(good, "jmedseg.config", `{"in_channels":1,"classes":2,"width":8}`)))
	_, _, err = models.Load(path)
	assert.ErrorContains(t, err, "inc.double_conv.0.weight")
}

func with(md map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for kk, vv := range md {
		if kk != k {
			out[kk] = vv
		}
	}
	return out
}

// Normalization.Apply is augment.Normalize's arithmetic, bit for bit.
func TestNormalizationMatchesAugment(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	img := image.NewRGBA(image.Rect(0, 0, 9, 7))
	for i := range img.Pix {
		img.Pix[i] = uint8(r.IntN(256))
	}
	img.Set(0, 0, color.RGBA{255, 0, 0, 255})
	n := models.Normalization{Scale: models.ScaleUnit, Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}
	ex := &data.Example{Name: "x", Image: img}
	require.NoError(t, augment.Normalize{Mean: n.Mean, Std: n.Std}.Apply(r, ex))
	chw, err := data.ToCHW(img, 3)
	require.NoError(t, err)
	require.NoError(t, n.Apply(chw.Data, 3))
	assert.Equal(t, ex.Float.Data, chw.Data)

	plain, err := data.ToCHW(img, 1)
	require.NoError(t, err)
	before := append([]float32(nil), plain.Data...)
	require.NoError(t, models.DefaultNormalization().Apply(plain.Data, 1))
	assert.Equal(t, before, plain.Data, "the default only scales to [0, 1]")
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string][2]int{"128": {128, 128}, "96x128": {96, 128}, "64,32": {64, 32}, "": {}} {
		got, err := models.ParseSize(in)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	for _, bad := range []string{"x", "0", "12x-3", "1x2x3"} {
		_, err := models.ParseSize(bad)
		assert.Error(t, err, bad)
	}
}
