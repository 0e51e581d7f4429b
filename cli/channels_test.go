package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/infer"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
)

// predict takes a folder of nnU-Net cases (ID_0000.png, ID_0001.png) for a
// 2-channel model and writes ID.png, the mask infer.CaseWith gives; a
// channel-0 file as --input predicts its case; a missing channel file is
// an error naming it. export writes the 2-channel model as it writes
// others.
func TestPredictCasesCommand(t *testing.T) {
	dir := t.TempDir()
	info := models.Info{Model: "unet", Config: models.Config{InChannels: 2, Classes: 2, Width: 4}, Classes: []string{"background", "x"},
		Size: [2]int{16, 16}, Norm: models.Normalization{Scale: models.ScaleUnit, Mean: []float32{0.4, 0.5}, Std: []float32{0.2, 0.3}}}
	torch.ManualSeed(3)
	m, err := models.Build(info)
	require.NoError(t, err)
	m.Eval()
	model := filepath.Join(dir, "best.safetensors")
	require.NoError(t, models.Save(model, m, info))
	m.Free()

	in := filepath.Join(dir, "in")
	require.NoError(t, os.MkdirAll(in, 0o755))
	for _, id := range []string{"a", "b"} {
		for k := range 2 {
			g := image.NewGray(image.Rect(0, 0, 24, 20))
			for i := range g.Pix {
				g.Pix[i] = uint8((i*(3+k) + len(id)*40*k) % 251)
			}
			f, err := os.Create(filepath.Join(in, fmt.Sprintf("%s_%04d.png", id, k)))
			require.NoError(t, err)
			require.NoError(t, png.Encode(f, g))
			require.NoError(t, f.Close())
		}
	}
	out := filepath.Join(dir, "out")
	var buf bytes.Buffer
	app := App()
	app.Writer, app.ErrWriter = &buf, io.Discard
	require.NoError(t, app.RunContext(context.Background(), []string{"jmedseg", "predict", "--checkpoint", model, "--input", in, "--output", out, "--json"}))
	var rep struct{ Written []string }
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rep))
	assert.Equal(t, []string{filepath.Join(out, "a.png"), filepath.Join(out, "b.png")}, rep.Written)

	p, err := infer.NewPredictor(model, torch.CPU)
	require.NoError(t, err)
	defer p.Close()
	want := filepath.Join(dir, "want.png")
	require.NoError(t, p.CaseWith([]string{filepath.Join(in, "a_0000.png"), filepath.Join(in, "a_0001.png")}, want, "", infer.Options{}))
	wm, err := data.ReadMask(want)
	require.NoError(t, err)
	gm, err := data.ReadMask(filepath.Join(out, "a.png"))
	require.NoError(t, err)
	assert.Equal(t, wm, gm)

	one := filepath.Join(dir, "one.png")
	require.NoError(t, runApp("predict", "--checkpoint", model, "--input", filepath.Join(in, "a_0000.png"), "--output", one, "--tta"))
	om, err := data.ReadMask(one)
	require.NoError(t, err)
	assert.Equal(t, [2]int{24, 20}, [2]int{om.W, om.H})

	require.NoError(t, runApp("export", "--checkpoint", model, "--out", filepath.Join(dir, "model.pt")))

	require.NoError(t, os.Remove(filepath.Join(in, "b_0001.png")))
	err = runApp("predict", "--checkpoint", model, "--input", in, "--output", filepath.Join(dir, "out2"))
	assert.ErrorContains(t, err, filepath.Join(in, "b_0001.png")+": channel file 0001 of case b is missing")
}
