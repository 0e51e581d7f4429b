package serve_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/serve"
	"github.com/jmedseg/jmedseg/torch"
)

// equalCase is one input of the equality test.
type equalCase struct {
	file   string // its name: predict reads the format from it
	ct     string // Content-Type sent ("" to have it sniffed)
	body   []byte
	format string // query format ("" for the default)
	out    string // predict's --output name
}

func equalCases(t *testing.T) []equalCase {
	dcm, err := os.ReadFile("../data/dicom/testdata/mono16.dcm")
	require.NoError(t, err)
	rgb, err := os.ReadFile("../data/dicom/testdata/rgb8.dcm")
	require.NoError(t, err)
	grey := greyImage(40, 36, 1)
	return []equalCase{
		{file: "grey.png", ct: "image/png", body: encodePNG(t, grey), out: "grey.png"},
		{file: "grey-sniffed.png", body: encodePNG(t, greyImage(32, 32, 2)), out: "grey-sniffed.png"},
		{file: "colour.png", body: encodePNG(t, colourImage(48, 30, 3)), out: "colour.png"},
		{file: "photo.jpg", ct: "image/jpeg", body: encodeJPEG(t, colourImage(50, 44, 4)), out: "photo.png"},
		{file: "grey.npy", ct: "application/x-npy", body: encodeNPY(t, grey, "u1"), out: "grey.npy", format: "npy"},
		{file: "float.npy", body: encodeNPY(t, greyImage(28, 33, 5), "f4"), out: "float.png"},
		{file: "mono16.dcm", ct: "application/dicom", body: dcm, out: "mono16.png"},
		{file: "rgb8.dcm", body: rgb, out: "rgb8.npy", format: "npy"},
		{file: "head.nii", ct: "application/x-nifti", body: niftiVolume(t, 30, 26, 5, false), out: "head.nii"},
		{file: "head.nii.gz", body: niftiVolume(t, 24, 28, 4, true), out: "head.nii.gz", format: "nifti"},
	}
}

// The server answers the bytes `jmedseg predict` writes for the same input
// and checkpoint, whatever batch the image ran in: each input is sent
// several times at once so that batches mix them.
func TestPredictEqualsCLI(t *testing.T) {
	dir := t.TempDir()
	ckpt := modelFile(t, dir, "tiny.safetensors", tiny)
	cases := equalCases(t)
	want := make([][]byte, len(cases))
	for i, c := range cases {
		in := filepath.Join(dir, "in-"+c.file)
		require.NoError(t, os.WriteFile(in, c.body, 0o644))
		out := filepath.Join(dir, "out", c.out)
		require.NoError(t, os.MkdirAll(filepath.Dir(out), 0o755))
		runCLI(t, "predict", "--checkpoint", ckpt, "--input", in, "--output", out)
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		want[i] = b
	}
	for _, mode := range []struct {
		name     string
		maxBatch int
		window   time.Duration
		workers  int
	}{{"unbatched", 1, 0, 1}, {"batched", 8, 20 * time.Millisecond, 1}, {"two-workers", 4, 5 * time.Millisecond, 2}} {
		t.Run(mode.name, func(t *testing.T) {
			_, url := newServer(t, serve.Config{Checkpoints: []string{ckpt}, Device: torch.CPU, MaxBatch: mode.maxBatch,
				BatchWindow: mode.window, Workers: mode.workers})
			const copies = 3
			var wg sync.WaitGroup
			got := make([][]byte, len(cases)*copies)
			codes := make([]int, len(got))
			for k := range got {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := cases[k%len(cases)]
					u := url + "/v1/models/tiny/predict"
					if c.format != "" {
						u += "?format=" + c.format
					}
					codes[k], got[k], _ = post(t, u, c.ct, c.body)
				}()
			}
			wg.Wait()
			for k := range got {
				c := cases[k%len(cases)]
				require.Equal(t, 200, codes[k], "%s: %s", c.file, got[k])
				assert.True(t, bytes.Equal(want[k%len(cases)], got[k]), "%s (copy %d): the server's %d bytes differ from predict's %d", c.file, k/len(cases), len(got[k]), len(want[k%len(cases)]))
			}
		})
	}
	// JSON: the base64 mask is predict's PNG, and the counts are its pixels.
	_, url := newServer(t, serve.Config{Checkpoints: []string{ckpt}, Device: torch.CPU})
	code, b, _ := post(t, url+"/v1/models/tiny/predict?format=json&image=1", "", cases[0].body)
	require.Equal(t, 200, code, string(b))
	var p serve.Prediction
	require.NoError(t, json.Unmarshal(b, &p))
	mask, err := base64.StdEncoding.DecodeString(p.MaskPNG)
	require.NoError(t, err)
	assert.Equal(t, want[0], mask)
	img, err := png.Decode(bytes.NewReader(mask))
	require.NoError(t, err)
	grey, ok := img.(*image.Gray)
	require.True(t, ok, "an 8-bit grey mask PNG, not %T", img)
	require.Len(t, p.Classes, 3)
	var total int64
	for _, c := range p.Classes {
		n := int64(0)
		for _, v := range grey.Pix {
			if int(v) == c.ID {
				n++
			}
		}
		assert.Equal(t, n, c.Pixels, "class %d", c.ID)
		require.NotNil(t, c.AreaMM)
		assert.InDelta(t, float64(n)*0.25, *c.AreaMM, 1e-9, "area of class %d at the model's 0.5 mm", c.ID)
		total += c.Pixels
	}
	assert.Equal(t, int64(40*36), total)
	assert.Equal(t, "model", p.SpacingFrom)
	assert.NotEmpty(t, p.ImagePNG)
	for _, c := range p.Classes {
		assert.Positive(t, c.Pixels, "the model predicts class %d somewhere: the equality is not of constant masks", c.ID)
	}
	t.Logf("grey.png: %s", classSummary(p.Classes))
}

func classSummary(cs []serve.ClassCount) string {
	s := ""
	for _, c := range cs {
		s += fmt.Sprintf("%s %d px; ", c.Name, c.Pixels)
	}
	return s
}
