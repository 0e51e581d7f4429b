package data

import (
	"context"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/disintegration/gift"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func issuesOf(t *testing.T, dir string) []Issue {
	t.Helper()
	rep, err := Check(context.Background(), dir, CheckOptions{})
	require.NoError(t, err)
	return rep.Issues
}

func hasIssue(iss []Issue, kind, file, msg string) bool {
	for _, i := range iss {
		if i.Kind == kind && strings.Contains(i.File+" "+i.Message, file) && strings.Contains(i.File+" "+i.Message, msg) {
			return true
		}
	}
	return false
}

// Issue 12: the same stem twice in a split (x.png and x.jpg) is reported by
// data check naming both files, and Split refuses the split, so train and
// test never use one of them silently.
func TestDuplicateStemRefused(t *testing.T) {
	dir := t.TempDir()
	makeDataset(t, dir, map[string]int{"train": 2, "val": 1}, 8, 8, 2)
	writeJPEGT(t, filepath.Join(dir, "train", "images", "train_a.jpg"), greyImage(8, 8))
	writePNGT(t, filepath.Join(dir, "val", "masks", "val_a.npy.png"), labelImage(8, 8, 2)) // not a duplicate: stem val_a.npy
	iss := issuesOf(t, dir)
	assert.True(t, hasIssue(iss, IssueDuplicate, "train_a.jpg", "train_a.png"), "%v", iss)
	d, err := Open(dir)
	require.NoError(t, err)
	_, err = d.Split("train")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "train_a.png")
	assert.Contains(t, err.Error(), "train_a.jpg")
	_, err = d.Split("val")
	assert.NoError(t, err)

	// Two masks of one stem likewise.
	dir2 := t.TempDir()
	makeDataset(t, dir2, map[string]int{"train": 2}, 8, 8, 2)
	writeNPYT(t, filepath.Join(dir2, "train", "masks", "train_b.npy"), "u1", []int{8, 8}, make([]float64, 64))
	assert.True(t, hasIssue(issuesOf(t, dir2), IssueDuplicate, "train_b.npy", "train_b.png"))
	d, err = Open(dir2)
	require.NoError(t, err)
	_, err = d.Split("train")
	assert.ErrorContains(t, err, "train_b.npy")
}

// Issue 12: an image in a format jmedseg does not read (.tif) is reported
// and refused, not silently left out.
func TestUnsupportedImageFormat(t *testing.T) {
	dir := t.TempDir()
	makeDataset(t, dir, map[string]int{"train": 2}, 8, 8, 2)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "train", "images", "scan.tif"), []byte("II*\x00"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "train", "images", "notes.txt"), []byte("hi"), 0o644))
	iss := issuesOf(t, dir)
	assert.True(t, hasIssue(iss, IssueUnsupported, "scan.tif", "TIFF"), "%v", iss)
	assert.False(t, hasIssue(iss, IssueUnsupported, "notes.txt", ""), "other files stay ignored")
	d, err := Open(dir)
	require.NoError(t, err)
	_, err = d.Split("train")
	assert.ErrorContains(t, err, "scan.tif")
}

// Issue 12: an image with transparency reads as its colour channels,
// alpha dropped, so that it is the same image at native size and resized
// (resizing composited it onto black before: Dice 0.000).
func TestAlphaIsDropped(t *testing.T) {
	dir := t.TempDir()
	src := image.NewNRGBA(image.Rect(0, 0, 16, 16))
	for y := range 16 {
		for x := range 16 {
			src.SetNRGBA(x, y, color.NRGBA{R: uint8(200 + x), G: uint8(100 + y), B: 50, A: uint8(x * 16)})
		}
	}
	p := filepath.Join(dir, "rgba.png")
	writePNGT(t, p, src)
	img, err := ReadImage(p)
	require.NoError(t, err)
	_, _, _, alpha := img.At(0, 0).RGBA()
	assert.Equal(t, uint32(0xffff), alpha, "opaque after reading")
	native, err := ToCHW(img, 3)
	require.NoError(t, err)
	assert.InDelta(t, 200.0/255, native.Data[0], 1e-6, "colour kept where alpha is 0")
	// Resized to the same size through gift, as the loader and infer do.
	g := gift.New(gift.Resize(16, 16, gift.LinearResampling))
	dst := image.NewRGBA64(g.Bounds(img.Bounds()))
	g.Draw(dst, img)
	resized, err := ToCHW(dst, 3)
	require.NoError(t, err)
	for i := range native.Data {
		require.InDelta(t, native.Data[i], resized.Data[i], 2.0/255, "value %d", i)
	}
	// NPY with four channels: the fourth is alpha, dropped the same way.
	np := filepath.Join(dir, "rgba.npy")
	v := make([]float64, 4*4*4)
	for i := range 16 {
		v[4*i], v[4*i+1], v[4*i+2], v[4*i+3] = 200, 100, 50, 0
	}
	writeNPYT(t, np, "u1", []int{4, 4, 4}, v)
	img, err = ReadImage(np)
	require.NoError(t, err)
	r, _, _, alpha := img.At(1, 1).RGBA()
	assert.Equal(t, uint32(0xffff), alpha)
	assert.Equal(t, uint32(200*257), r)
}

// Issue 12: data check checks every field of dataset.json against its use
// and reports an empty split.
func TestCheckManifestFields(t *testing.T) {
	dir := t.TempDir()
	makeDataset(t, dir, map[string]int{"train": 2, "val": 1}, 8, 8, 2)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "test", "images"), 0o755))
	m, err := ReadManifest(dir)
	require.NoError(t, err)
	m.Classes = []string{"background"}
	m.FlipPairs = [][2]int{{1, 5}}
	m.Width, m.Height = 10, 8
	m.Channels = 2
	m.PixelSpacing = []float64{0.5}
	m.Samples = []SampleInfo{{Split: "nosuch", Image: "train/images/train_a.png", Mask: "train/masks/train_a.png"},
		{Split: "train", Image: "train/images/train_b.png", Mask: "train/masks/other.png", SpacingMM: []float64{-1, 1}}}
	require.NoError(t, WriteManifest(dir, m))
	iss := issuesOf(t, dir)
	for _, want := range []struct{ file, msg string }{
		{ManifestFile, "1 class"},
		{ManifestFile, "flip_pairs"},
		{ManifestFile, "channels"},
		{ManifestFile, "pixel_spacing_mm"},
		{"train_a.png", "width"},
		{"train_a.png", "nosuch"},
		{"train_b.png", "other.png"},
		{"train_b.png", "spacing_mm"},
		{"test", "no images"},
	} {
		found := false
		for _, i := range iss {
			if strings.Contains(i.File, want.file) && strings.Contains(i.Message, want.msg) {
				found = true
			}
		}
		assert.True(t, found, "no issue for %s: %q in %v", want.file, want.msg, iss)
	}
}
