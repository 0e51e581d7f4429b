package test

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 12, silently wrong results, end to end.
func TestSilentlyWrongResultsEndToEnd(t *testing.T) {
	ds, runDir := trained(t)
	best := filepath.Join(runDir, "best.safetensors")
	imgs, err := filepath.Glob(filepath.Join(ds, "test", "images", "*.png"))
	require.NoError(t, err)
	require.NotEmpty(t, imgs)
	tmp := t.TempDir()

	t.Run("predict output extension", func(t *testing.T) {
		out := filepath.Join(tmp, "mask.nii.gz")
		_, se, code := run(t, "predict", "--checkpoint", best, "--input", imgs[0], "--output", out)
		assert.NotEqual(t, 0, code)
		assert.Contains(t, se, ".png or .npy")
		assert.NoFileExists(t, out)
		_, se, code = run(t, "predict", "--checkpoint", best, "--input", imgs[0], "--output", filepath.Join(tmp, "m.png"), "--format", "npy")
		assert.NotEqual(t, 0, code)
		assert.Contains(t, se, "--format npy")
		_, se, code = run(t, "predict", "--checkpoint", best, "--input", imgs[0], "--output", filepath.Join(tmp, "d"), "--format", "tif")
		assert.NotEqual(t, 0, code)
		assert.Contains(t, se, "--format")
		_, se, code = run(t, "predict", "--checkpoint", best, "--input", imgs[0], "--output", filepath.Join(tmp, "m.npy"))
		assert.Equal(t, 0, code, se)
		b, err := os.ReadFile(filepath.Join(tmp, "m.npy"))
		require.NoError(t, err)
		assert.Equal(t, "\x93NUMPY", string(b[:6]))
	})

	t.Run("test empty split", func(t *testing.T) {
		d := filepath.Join(tmp, "ds")
		copyDir(t, ds, d)
		require.NoError(t, os.MkdirAll(filepath.Join(d, "empty", "images"), 0o755))
		_, se, code := run(t, "test", "--checkpoint", best, "--data", d, "--split", "empty", "--out", filepath.Join(tmp, "t1"))
		assert.NotEqual(t, 0, code)
		assert.Contains(t, se, "no images")
		so, se, code := run(t, "data", "check", d)
		assert.NotEqual(t, 0, code, so+se)
		assert.Contains(t, so, "empty-split")
	})

	t.Run("tif and duplicate", func(t *testing.T) {
		d := filepath.Join(tmp, "ds2")
		copyDir(t, ds, d)
		require.NoError(t, os.WriteFile(filepath.Join(d, "train", "images", "extra.tif"), []byte("II*\x00"), 0o644))
		so, _, code := run(t, "data", "check", d)
		assert.NotEqual(t, 0, code)
		assert.Contains(t, so, "extra.tif")
		_, se, code := run(t, "train", "--data", d, "--out", filepath.Join(tmp, "r2"), "--width", "4", "--epochs", "1", "--limit-batches", "1")
		assert.NotEqual(t, 0, code)
		assert.Contains(t, se, "extra.tif")
		noPanic(t, se)
	})

	t.Run("rgba agrees", func(t *testing.T) {
		// An RGBA copy of a test image with a transparent half predicts as
		// the opaque image does, at any size.
		f, err := os.Open(imgs[0])
		require.NoError(t, err)
		src, err := png.Decode(f)
		f.Close()
		require.NoError(t, err)
		b := src.Bounds()
		rgba := image.NewNRGBA(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, _, _, _ := src.At(x, y).RGBA()
				i := rgba.PixOffset(x, y)
				rgba.Pix[i], rgba.Pix[i+1], rgba.Pix[i+2], rgba.Pix[i+3] = uint8(r>>8), uint8(r>>8), uint8(r>>8), uint8(255*(x%2))
			}
		}
		p := filepath.Join(tmp, "rgba.png")
		w, err := os.Create(p)
		require.NoError(t, err)
		require.NoError(t, png.Encode(w, rgba))
		require.NoError(t, w.Close())
		_, se, code := run(t, "predict", "--checkpoint", best, "--input", p, "--output", filepath.Join(tmp, "rgba_mask.png"))
		require.Equal(t, 0, code, se)
		_, se, code = run(t, "predict", "--checkpoint", best, "--input", imgs[0], "--output", filepath.Join(tmp, "grey_mask.png"))
		require.Equal(t, 0, code, se)
		a, _ := os.ReadFile(filepath.Join(tmp, "rgba_mask.png"))
		g, _ := os.ReadFile(filepath.Join(tmp, "grey_mask.png"))
		assert.Equal(t, g, a)
	})
}
