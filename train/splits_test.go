package train_test

import (
	"context"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/data/npy"
	"github.com/jmedseg/jmedseg/train"
)

// copyTree copies the brain data set so that a test may change it.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	}))
}

// Issue 12: test never passes with nothing tested: a split whose first image
// has no mask is an error naming it (it skipped the whole split, exit 0),
// and an empty split named with --split is an error.
func TestTestSplitsWithoutMasks(t *testing.T) {
	run := t.TempDir()
	o := small(t, run)
	o.Epochs, o.LimitBatches = 1, 1
	tr, err := train.New(o)
	require.NoError(t, err)
	require.NoError(t, tr.Fit(context.Background()))
	tr.Close()
	best := filepath.Join(run, train.BestFile)

	ds := filepath.Join(t.TempDir(), "brain")
	copyTree(t, brain(t), ds)
	masks, err := filepath.Glob(filepath.Join(ds, "test", "masks", "*"))
	require.NoError(t, err)
	require.NotEmpty(t, masks)
	require.NoError(t, os.Remove(masks[0]))
	_, err = train.Test(context.Background(), best, ds, []string{"test"}, t.TempDir(), "cpu", 4)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no mask")
	assert.Contains(t, err.Error(), filepath.Base(masks[0]))
	_, err = train.Test(context.Background(), best, ds, nil, t.TempDir(), "cpu", 4) // the default splits too
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no mask")

	ds2 := filepath.Join(t.TempDir(), "brain")
	copyTree(t, brain(t), ds2)
	require.NoError(t, os.MkdirAll(filepath.Join(ds2, "empty", "images"), 0o755))
	_, err = train.Test(context.Background(), best, ds2, []string{"empty"}, t.TempDir(), "cpu", 4)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"empty"`)
	assert.Contains(t, err.Error(), "no images")
	_, err = train.Test(context.Background(), best, ds2, []string{"nosuch"}, t.TempDir(), "cpu", 4)
	assert.ErrorContains(t, err, "nosuch")
	r, err := train.Test(context.Background(), best, ds2, nil, t.TempDir(), "cpu", 4) // by default an empty split is skipped, and said
	require.NoError(t, err)
	assert.NotEmpty(t, r.Tests)
	assert.Contains(t, r.Notes, "split empty has no images: not tested")
}

// Issue 12: the reference layout ({split}_label.json, data/, label/) has no
// dataset.json: train asks for --classes instead of "lists 0 classes", and
// trains with it.
func TestReferenceLayoutClasses(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "data"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "label"), 0o755))
	lists := map[string][]string{}
	for i := range 6 {
		name := string(rune('a'+i)) + ".npy"
		split := "train"
		if i >= 4 {
			split = "val"
		}
		lists[split] = append(lists[split], name)
		g := image.NewGray(image.Rect(0, 0, 32, 32))
		mask := make([]float64, 32*32)
		for j := range g.Pix {
			if j%32 > 10+i {
				g.Pix[j], mask[j] = 200, 1
			}
		}
		f, err := os.Create(filepath.Join(dir, "data", string(rune('a'+i))+".png"))
		require.NoError(t, err)
		require.NoError(t, png.Encode(f, g))
		require.NoError(t, f.Close())
		require.NoError(t, npy.WriteFile(filepath.Join(dir, "label", name), &npy.Array{DType: "u1", Shape: []int{32, 32}, Data: mask}))
	}
	for split, names := range lists {
		b, _ := json.Marshal(map[string]map[string]map[string][]string{"p1": {"ct1": {"list": names}}})
		require.NoError(t, os.WriteFile(filepath.Join(dir, split+"_label.json"), b, 0o644))
	}
	o := small(t, t.TempDir())
	o.Data, o.Epochs = dir, 1
	_, err := train.New(o)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--classes")
	assert.NotContains(t, err.Error(), "lists 0")
	o.Net.Classes = 2
	tr, err := train.New(o)
	require.NoError(t, err)
	require.NoError(t, tr.Fit(context.Background()))
	tr.Close()
	o.Net.Classes = 1
	_, err = train.New(o)
	assert.ErrorContains(t, err, "--classes 1")
}
