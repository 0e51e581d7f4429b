package train_test

import (
	"context"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/report"
	"github.com/jmedseg/jmedseg/train"
)

// test writes the per-image CSV beside its report: one row per image of
// each split, the file named relative to the data set, and the mean of
// each score column (empty cells skipped) is the report's per-image mean.
func TestTestWritesPerImageCSV(t *testing.T) {
	run := t.TempDir()
	o := small(t, run)
	o.Epochs, o.LimitBatches = 1, 1
	tr, err := train.New(o)
	require.NoError(t, err)
	require.NoError(t, tr.Fit(context.Background()))
	tr.Close()
	ds, out := brain(t), t.TempDir()
	rep, err := train.Test(context.Background(), filepath.Join(run, train.BestFile), ds, []string{"test"}, out, "cpu", 4)
	require.NoError(t, err)
	require.Len(t, rep.Tests, 1)
	m := rep.Tests[0].Metrics
	assert.Contains(t, rep.Headline(), "pooled")

	f, err := os.Open(filepath.Join(out, report.PerImageFile))
	require.NoError(t, err)
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 1+len(m.PerImage))
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	require.Contains(t, col, "hd_mm")
	var sum float64
	var n int
	for _, r := range recs[1:] {
		assert.Equal(t, "test", r[col["split"]])
		assert.FileExists(t, filepath.Join(ds, filepath.FromSlash(r[col["file"]])), "file is relative to the data set")
		assert.False(t, filepath.IsAbs(r[col["file"]]))
		if v := r[col["dice"]]; v != "" {
			d, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			sum += d
			n++
		}
	}
	im := m.ImageMean.Foreground
	assert.Equal(t, im.Images, n)
	if n > 0 {
		assert.InDelta(t, float64(im.Dice), sum/float64(n), 1e-12)
	} else {
		assert.True(t, math.IsNaN(float64(im.Dice)))
	}
	md, err := os.ReadFile(filepath.Join(out, report.MarkdownFile))
	require.NoError(t, err)
	assert.Contains(t, string(md), "Per-image mean (MONAI's convention")
}
