package data

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenJMedSeg(t *testing.T) {
	dir := t.TempDir()
	makeDataset(t, dir, map[string]int{"train": 3, "val": 1, "test": 2, "test_shift": 1}, 8, 6, 3)
	d, err := Open(dir)
	require.NoError(t, err)
	assert.Equal(t, LayoutJMedSeg, d.Layout)
	assert.Equal(t, []string{"train", "val", "test", "test_shift"}, d.Splits())
	assert.Equal(t, 3, d.NumClasses())
	tr, err := d.Split("train")
	require.NoError(t, err)
	require.Len(t, tr, 3)
	assert.Equal(t, "train_a", tr[0].ID)
	assert.Equal(t, filepath.Join(dir, "train", "masks", "train_a.png"), tr[0].Mask)
	_, err = d.Split("nope")
	assert.ErrorContains(t, err, `no split "nope"`)

	_, err = Open(t.TempDir())
	assert.ErrorContains(t, err, "no data set found")
	_, err = Open(filepath.Join(dir, "missing"))
	assert.Error(t, err)
}

func TestOpenReference(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"p1_001", "p1_002", "p2_001"} {
		writePNGT(t, filepath.Join(dir, "data", n+".png"), greyImage(4, 4))
		writeNPYT(t, filepath.Join(dir, "label", n+".npy"), "u1", []int{4, 4}, make([]float64, 16))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "train_label.json"),
		[]byte(`{"p1": {"ct1": {"list": ["p1_001.npy", "p1_002.npy"]}}}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "test_label.json"),
		[]byte(`{"p2": {"ct1": {"list": ["p2_001.npy", "p9_404.npy"]}}}`), 0o644))
	d, err := Open(dir)
	require.NoError(t, err)
	assert.Equal(t, LayoutReference, d.Layout)
	assert.Equal(t, []string{"train", "test"}, d.Splits())
	tr, _ := d.Split("train")
	require.Len(t, tr, 2)
	assert.Equal(t, Sample{ID: "p1_001", Image: filepath.Join(dir, "data", "p1_001.png"),
		Mask: filepath.Join(dir, "label", "p1_001.npy"), Group: "p1"}, tr[0])

	rep, err := Check(context.Background(), dir, CheckOptions{Classes: 2})
	require.NoError(t, err)
	require.Len(t, rep.Issues, 1)
	assert.Equal(t, IssueMissingImage, rep.Issues[0].Kind)
	assert.Contains(t, rep.Issues[0].File, "p9_404")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "val_label.json"), []byte(`[1,2]`), 0o644))
	_, err = Open(dir)
	assert.ErrorContains(t, err, "val_label.json: corrupt JSON")
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	makeDataset(t, dir, map[string]int{"train": 8, "val": 2}, 8, 6, 3)
	tr := filepath.Join(dir, "train")
	// Break things, one per file.
	require.NoError(t, os.Remove(filepath.Join(tr, "masks", "train_a.png")))
	require.NoError(t, os.Remove(filepath.Join(tr, "images", "train_b.png")))
	writePNGT(t, filepath.Join(tr, "masks", "train_c.png"), labelImage(7, 6, 3))
	writePNGT(t, filepath.Join(tr, "masks", "train_d.png"), labelImage(8, 6, 5))
	require.NoError(t, os.WriteFile(filepath.Join(tr, "images", "train_e.png"), []byte("garbage"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(tr, "masks", "train_f.png"), []byte{}, 0o644))
	rep, err := Check(context.Background(), dir, CheckOptions{Workers: 2})
	require.NoError(t, err)
	assert.False(t, rep.OK())
	got := map[string]string{}
	for _, is := range rep.Issues {
		got[filepath.Base(filepath.Dir(is.File))+"/"+filepath.Base(is.File)] = is.Kind
	}
	assert.Equal(t, map[string]string{
		"images/train_a.png": IssueMissingMask,
		"masks/train_b.png":  IssueMissingImage,
		"masks/train_c.png":  IssueSize,
		"masks/train_d.png":  IssueLabelRange,
		"images/train_e.png": IssueUnreadable,
		"masks/train_f.png":  IssueUnreadable,
	}, got)
	assert.Equal(t, 7, rep.Splits["train"].Samples)
	assert.Equal(t, 2, rep.Splits["train"].Valid)
	assert.Equal(t, 2, rep.Splits["val"].Valid)
	assert.Equal(t, map[string]int{"8x6": 2}, rep.Splits["val"].Sizes)
	assert.Equal(t, map[int]int64{0: 2 * 18, 1: 2 * 18, 2: 2 * 12}, rep.Splits["val"].ClassPixels)

	rep, err = Check(context.Background(), dir, CheckOptions{Classes: 10, Channels: 3})
	require.NoError(t, err)
	kinds := map[string]int{}
	for _, is := range rep.Issues {
		kinds[is.Kind]++
	}
	assert.Zero(t, kinds[IssueLabelRange])
	assert.Equal(t, 8, kinds[IssueChannels]) // grey images where colour is required

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Check(ctx, dir, CheckOptions{})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestSlabSplit(t *testing.T) {
	pos := make([]int, 0, 100)
	for i := 20; i < 120; i++ {
		pos = append(pos, i)
	}
	pattern := []string{"train", "train", "val", "train", "test"}
	for _, tc := range []struct{ slab, guard int }{{10, 3}, {12, 4}, {5, 0}, {7, 6}} {
		got := slabSplit(pos, tc.slab, tc.guard, pattern)
		last := map[string]int{}
		counts := map[string]int{}
		for i, s := range got {
			if s == "" {
				continue
			}
			counts[s]++
			for other, p := range last {
				if other != s {
					assert.Greater(t, pos[i]-p, tc.guard, "slab %d guard %d: %s at %d too close to %s at %d", tc.slab, tc.guard, s, pos[i], other, p)
				}
			}
			last[s] = pos[i]
		}
		assert.Len(t, counts, 3)
	}
	assert.Equal(t, []string{"a", "a", "b", "b"}, slabSplit([]int{1, 2, 10, 11}, 5, 0, []string{"a", "b"}), "a gap starts a slab")
}
