package data

import (
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/jmedseg/jmedseg/data/npy"
	"github.com/stretchr/testify/require"
)

func writePNGT(t testing.TB, p string, img image.Image) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	f, err := os.Create(p)
	require.NoError(t, err)
	require.NoError(t, png.Encode(f, img))
	require.NoError(t, f.Close())
}

func writeJPEGT(t testing.TB, p string, img image.Image) {
	t.Helper()
	f, err := os.Create(p)
	require.NoError(t, err)
	require.NoError(t, jpeg.Encode(f, img, &jpeg.Options{Quality: 100}))
	require.NoError(t, f.Close())
}

func writeNPYT(t testing.TB, p, dtype string, shape []int, data []float64) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, npy.WriteFile(p, &npy.Array{DType: dtype, Shape: shape, Data: data}))
}

// greyImage is a w×h 8-bit gradient.
func greyImage(w, h int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := range g.Pix {
		g.Pix[i] = uint8(i * 7)
	}
	return g
}

// labelImage is a w×h mask with labels 0..classes-1 in vertical bands.
func labelImage(w, h, classes int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			g.Pix[y*w+x] = uint8(x * classes / w)
		}
	}
	return g
}

// makeDataset writes a jmedseg-layout data set with n pairs per split.
func makeDataset(t testing.TB, dir string, splits map[string]int, w, h, classes int) {
	t.Helper()
	names := make([]string, classes)
	for i := range names {
		names[i] = "class" + string(rune('0'+i))
	}
	require.NoError(t, WriteManifest(dir, &Manifest{Name: "toy", Classes: names, Width: w, Height: h, Channels: 1}))
	for split, n := range splits {
		for i := range n {
			name := split + "_" + string(rune('a'+i)) + ".png"
			writePNGT(t, filepath.Join(dir, split, "images", name), greyImage(w, h))
			writePNGT(t, filepath.Join(dir, split, "masks", name), labelImage(w, h, classes))
		}
	}
}

var _ = color.Gray{}
