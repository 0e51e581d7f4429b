package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch/ckpt"
)

// export writes TorchScript and safetensors from a model file; it refuses
// to replace --out without --force, to write onto the --checkpoint, an
// unknown --format, and a file that is not a model, each in one sentence
// naming the flag or file, and leaves what was there untouched.
func TestExportCommand(t *testing.T) {
	dir := t.TempDir()
	info := models.Info{Model: "unet", Config: models.Config{InChannels: 1, Classes: 2, Width: 4}, Classes: []string{"background", "brain"},
		Size: [2]int{16, 16}, Norm: models.DefaultNormalization()}
	m, err := models.Build(info)
	require.NoError(t, err)
	m.Eval()
	model := filepath.Join(dir, "best.safetensors")
	require.NoError(t, models.Save(model, m, info))
	m.Free()

	pt := filepath.Join(dir, "model.pt")
	var out bytes.Buffer
	app := App()
	app.Writer, app.ErrWriter = &out, io.Discard
	require.NoError(t, app.RunContext(context.Background(), []string{"jmedseg", "export", "--checkpoint", model, "--out", pt, "--json"}))
	var rep map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep))
	assert.Equal(t, "torchscript", rep["format"])
	assert.Equal(t, "unet", rep["model"])
	assert.LessOrEqual(t, rep["max_diff"].(float64), 1e-4)
	st, err := os.Stat(pt)
	require.NoError(t, err)
	assert.Greater(t, st.Size(), int64(1000))

	err = runApp("export", "--checkpoint", model, "--out", pt)
	assert.ErrorContains(t, err, "--out "+pt+" exists; pass --force")
	require.NoError(t, runApp("export", "--checkpoint", model, "--out", pt, "--force"))

	sf := filepath.Join(dir, "state.safetensors")
	require.NoError(t, runApp("export", "--checkpoint", model, "--format", "safetensors", "--out", sf))
	ts, md, err := ckpt.ReadTensors(sf)
	require.NoError(t, err)
	defer ckpt.Free(ts)
	assert.Equal(t, map[string]string{"format": "pt"}, md)
	assert.Equal(t, "inc.double_conv.0.weight", ts[0].Name)

	err = runApp("export", "--checkpoint", model, "--out", model, "--force")
	assert.ErrorContains(t, err, "is the --checkpoint")
	err = runApp("export", "--checkpoint", model, "--format", "onnx", "--out", filepath.Join(dir, "m.onnx"))
	assert.ErrorContains(t, err, `--format "onnx": want torchscript or safetensors`)
	err = runApp("export", "--checkpoint", pt, "--out", filepath.Join(dir, "again.pt"))
	assert.ErrorContains(t, err, pt)
	err = runApp("export", "--checkpoint", sf, "--out", filepath.Join(dir, "again.pt"))
	assert.ErrorContains(t, err, "not a jmedseg model file")
	err = runApp("export", "--checkpoint", model, "--out", filepath.Join(dir, "x.pt"), "--device", "cuda")
	assert.Error(t, err)
	_, err = os.Stat(filepath.Join(dir, "x.pt"))
	assert.True(t, os.IsNotExist(err))

	b, err := os.ReadFile(model)
	require.NoError(t, err)
	m2, info2, err := models.Load(model)
	require.NoError(t, err, "the checkpoint is intact (%d bytes)", len(b))
	m2.Free()
	assert.Equal(t, info.Model, info2.Model)
}
