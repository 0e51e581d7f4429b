package report

import (
	"bytes"
	"encoding/csv"
	"image"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/metric"
)

// readCSV parses a per-image CSV into its header and rows.
func readCSV(t *testing.T, b []byte) (map[string]int, [][]string) {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	col := map[string]int{}
	for i, h := range recs[0] {
		_, dup := col[h]
		require.False(t, dup, "column %q twice", h)
		col[h] = i
	}
	return col, recs[1:]
}

// columnMean is what pandas' mean() says of a column: empty cells skipped.
func columnMean(t *testing.T, rows [][]string, c int) (float64, int) {
	t.Helper()
	sum, n := 0.0, 0
	for _, r := range rows {
		if r[c] == "" {
			continue
		}
		f, err := strconv.ParseFloat(r[c], 64)
		require.NoError(t, err)
		sum += f
		n++
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return sum / float64(n), n
}

func TestPerImageCSVSeveralClasses(t *testing.T) {
	rep := evalReport(t) // liver, tumour, cyst; images perfect, shifted, tumour/missed, empty
	rep.PerImage[0].File = "images/a,b.png"
	var buf bytes.Buffer
	require.NoError(t, PerImageCSV(&buf, []Test{{Split: "test", Metrics: rep}, {Split: "test_x", Metrics: rep}}))
	col, rows := readCSV(t, buf.Bytes())
	require.Len(t, rows, 8)
	for _, h := range []string{"split", "id", "file", "group", "fg_mean_dice", "fg_mean_iou",
		"liver:dice", "liver:iou", "liver:hd95_mm", "liver:hd_mm", "liver:assd_mm", "liver:asd_pred_mm", "liver:asd_truth_mm", "liver:empty",
		"tumour:dice", "cyst:asd_truth_mm", "cyst:empty"} {
		assert.Contains(t, col, h)
	}
	assert.NotContains(t, col, "background:dice")
	assert.Equal(t, []string{"test", "perfect", "images/a,b.png", "vol1"}, rows[0][:4])
	assert.Equal(t, "1", rows[0][col["liver:dice"]])
	assert.Equal(t, "0", rows[0][col["liver:hd_mm"]])
	// Undefined: empty cells; the image where the tumour is missed has its
	// surface distances as the diagonal and says which mask is empty.
	assert.Equal(t, "", rows[0][col["tumour:dice"]])
	assert.Equal(t, "", rows[0][col["tumour:hd95_mm"]], "both empty: undefined, not 0")
	assert.Equal(t, "both", rows[0][col["tumour:empty"]])
	assert.Equal(t, "prediction", rows[2][col["tumour:empty"]])
	diag := strconv.FormatFloat(math.Hypot(8*0.8, 8*0.8), 'g', -1, 64)
	assert.Equal(t, diag, rows[2][col["tumour:hd_mm"]])
	assert.Equal(t, "", rows[3][col["fg_mean_dice"]], "the empty image has no foreground Dice")

	// Each column's mean, empty cells skipped, is the report's per-image mean.
	half := rows[:4]
	got, n := columnMean(t, half, col["fg_mean_dice"])
	assert.InDelta(t, float64(rep.ImageMean.Foreground.Dice), got, 1e-12)
	assert.Equal(t, rep.ImageMean.Foreground.Images, n)
	got, _ = columnMean(t, half, col["fg_mean_iou"])
	assert.InDelta(t, float64(rep.ImageMean.Foreground.IoU), got, 1e-12)
	for _, cm := range rep.ImageMean.PerClass[1:] {
		name := rep.Classes[cm.Class]
		got, n := columnMean(t, half, col[name+":dice"])
		assert.Equal(t, cm.Images, n, name)
		if n > 0 {
			assert.InDelta(t, float64(cm.Dice), got, 1e-12, name)
			got, _ = columnMean(t, half, col[name+":iou"])
			assert.InDelta(t, float64(cm.IoU), got, 1e-12, name)
		}
	}
	for _, sm := range rep.Surface {
		name := rep.Classes[sm.Class]
		for _, m := range []struct {
			col  string
			want metric.Score
		}{{"hd95_mm", sm.HD95}, {"hd_mm", sm.HD}, {"assd_mm", sm.ASSD}, {"asd_pred_mm", sm.ASDPred}, {"asd_truth_mm", sm.ASDTruth}} {
			got, n := columnMean(t, half, col[name+":"+m.col])
			assert.Equal(t, sm.Images, n, name+" "+m.col)
			if n > 0 {
				assert.InDelta(t, float64(m.want), got, 1e-12, name+" "+m.col)
			}
		}
	}
}

func TestPerImageCSVOneForegroundClass(t *testing.T) {
	e := metric.NewEvaluator(2, []string{"background", "brain"}, -1)
	const w, h = 6, 5
	truth := square(w, h, image.Rect(1, 1, 4, 4), 1)
	require.NoError(t, e.AddImage(metric.Image{ID: "s1", Group: "subject1", File: "test/images/s1.png"}, square(w, h, image.Rect(1, 1, 5, 4), 1), truth, h, w, [2]float64{0.5, 2}))
	var buf bytes.Buffer
	require.NoError(t, PerImageCSV(&buf, []Test{{Split: "test", Metrics: e.Report()}}))
	col, rows := readCSV(t, buf.Bytes())
	assert.Equal(t, map[string]int{"split": 0, "id": 1, "file": 2, "group": 3, "dice": 4, "iou": 5, "hd95_mm": 6, "hd_mm": 7,
		"assd_mm": 8, "asd_pred_mm": 9, "asd_truth_mm": 10, "empty": 11}, col)
	require.Len(t, rows, 1)
	// tp 9, fp 3: Dice 18/21, IoU 9/12. The extra column (3 edge pixels) is
	// 2 mm from the truth's edge: HD = 2 and the prediction's edge (10
	// pixels) is 6/10 mm away on average; the truth's edge pixel (2, 3),
	// inside the prediction, is 0.5 mm from its edge: 0.5/8 mm.
	assert.Equal(t, []string{"test", "s1", "test/images/s1.png", "subject1"}, rows[0][:4])
	f := func(c string) float64 {
		v, err := strconv.ParseFloat(rows[0][col[c]], 64)
		require.NoError(t, err, c)
		return v
	}
	assert.InDelta(t, 18.0/21, f("dice"), 1e-15)
	assert.InDelta(t, 0.75, f("iou"), 1e-15)
	assert.InDelta(t, 2, f("hd_mm"), 1e-15)
	assert.InDelta(t, 0.6, f("asd_pred_mm"), 1e-15)
	assert.InDelta(t, 0.0625, f("asd_truth_mm"), 1e-15)
	assert.Equal(t, "", rows[0][col["empty"]])

	// Through Write: atomically, beside the report; no tests, no CSV.
	dir := t.TempDir()
	require.NoError(t, Write(dir, Run{Model: "unet", Tests: []Test{{Split: "test", Metrics: e.Report()}}}))
	b, err := os.ReadFile(filepath.Join(dir, PerImageFile))
	require.NoError(t, err)
	assert.Equal(t, buf.String(), string(b))
	noTemps(t, dir)
	dir2 := t.TempDir()
	require.NoError(t, Write(dir2, Run{Model: "unet"}))
	assert.NoFileExists(t, filepath.Join(dir2, PerImageFile))
}

func TestPerImageCSVNamesAndErrors(t *testing.T) {
	// Unnamed and twice-named classes still give distinct columns.
	e := metric.NewEvaluator(4, []string{"bg", "a", "a"}, -1)
	require.NoError(t, e.Add("x", "", []int64{0, 1, 2, 3}, []int64{0, 1, 2, 3}, 2, 2, [2]float64{1, 1}))
	var buf bytes.Buffer
	require.NoError(t, PerImageCSV(&buf, []Test{{Split: "s", Metrics: e.Report()}}))
	col, _ := readCSV(t, buf.Bytes())
	assert.Contains(t, col, "a:dice")
	assert.Contains(t, col, "a (2):dice")
	assert.Contains(t, col, "class 3:dice")

	// A directory where the CSV should go: an error naming it, not a panic.
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, PerImageFile), 0o755))
	err := Write(dir, Run{Tests: []Test{{Split: "s", Metrics: e.Report()}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), PerImageFile)
}

func TestSummary(t *testing.T) {
	lines := Test{Split: "test", Metrics: evalReport(t)}.Summary()
	require.Len(t, lines, 4)
	assert.Equal(t, "test: 4 images; foreground Dice 0.4100 pooled, 0.5467 per-image mean (3 images); IoU 0.3475 pooled, 0.4902 per-image mean", lines[0])
	assert.Equal(t, "  2 tumour, per-image means over 1 images (1 with one empty mask): HD95 9.05 mm, HD 9.05 mm, ASSD 9.05 mm, ASD pred→truth 9.05 mm, truth→pred 9.05 mm", lines[2])
	assert.Equal(t, "  3 cyst: in no image's truth or prediction, no surface distances", lines[3])
}
