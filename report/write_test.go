package report

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmedseg/jmedseg/metric"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sampleRun(t *testing.T, dir string) Run {
	t.Helper()
	rep := evalReport(t)
	overlays, err := SaveOverlays(dir, "test", rep, 1, func(id string) (Sample, error) {
		return Sample{Truth: make([]int64, 64), Pred: make([]int64, 64), W: 8, H: 8}, nil
	})
	require.NoError(t, err)
	var h History
	for i := 1; i <= 10; i++ {
		f := float64(i)
		h = append(h, Epoch{Epoch: i, TrainLoss: 1 / f, ValLoss: 1.1 / f, ValDice: 0.9 - 0.5/f, ValIoU: 0.8 - 0.5/f,
			LR: 1e-3, Seconds: 12.5, ImagesPerSecond: 80})
	}
	h[2].ValLoss, h[2].ValDice = math.NaN(), math.NaN()
	return Run{
		Title: "Liver segmentation", Model: "unet", Params: 31042434,
		Config: map[string]any{"epochs": 10, "lr": 1e-3, "model": "unet"},
		Data:   "LiTS (8 volumes)", Device: "NVIDIA H100", WallSeconds: 3723,
		Started: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC),
		History: h, BestEpoch: 9,
		Tests: []Test{
			{Split: "test", Metrics: rep, Overlays: overlays},
			{Split: "test_xsubject", Metrics: rep},
		},
		Notes: []string{"resumed once at epoch 4"},
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	r := sampleRun(t, dir)
	out := filepath.Join(dir, "new", "run1")
	require.NoError(t, Write(out, r))
	// Overlays live beside the report in real use; here they were
	// written to dir, so write again there too.
	require.NoError(t, Write(dir, r))

	md, err := os.ReadFile(filepath.Join(dir, MarkdownFile))
	require.NoError(t, err)
	s := string(md)
	fg := r.Tests[0].Metrics.Split.Foreground
	im := r.Tests[0].Metrics.ImageMean.Foreground
	for _, want := range []string{
		"# Liver segmentation",
		"**unet: test foreground Dice " + ratio(fg.Dice) + " pooled (IoU " + ratio(fg.IoU) + "), " + ratio(im.Dice) + " per-image mean;",
		"Foreground mean Dice **" + ratio(fg.Dice) + "**, IoU **" + ratio(fg.IoU) + "**, pooled over the pixels of 4 images; per-image mean Dice **0.5467**, IoU **0.4902**, over the 3 images",
		"Pooled over the split (one confusion matrix of all its pixels",
		"| class | Dice | IoU | images | images where it is only predicted |",
		"| 1 liver | 0.8200 | 0.7353 | 2 | 0 |",
		"| 2 tumour | 0.0000 | 0.0000 | 1 | 0 |",
		"| **foreground mean** (per image, then over images) | **0.5467** | **0.4902** | 3 | |",
		"Every image's scores: [per_image.csv](per_image.csv).",
		"Model **unet** with 31,042,434 parameters (31.0 M), trained on LiTS (8 volumes), on NVIDIA H100, started 2025-03-04 05:06 UTC, wall time 1 h 02 min 03 s.",
		"Best epoch 9 of 10",
		"## Test: test\n",
		"## Test: test_xsubject\n",
		"| class | IoU | Dice | recall | precision | true pixels | predicted pixels |",
		"| 0 background *(background, not in the foreground mean)* |",
		"| 1 liver |",
		"| 3 cyst | – | – | – | – | 0 | 0 |",
		"| **foreground mean** | **" + ratio(fg.IoU) + "** | **" + ratio(fg.Dice) + "** |",
		"| all-class mean (incl. background) | ",
		"| class | ASSD mm | HD95 mm | HD mm | ASD pred→truth mm | ASD truth→pred mm | images | images with one empty mask |",
		"| 2 tumour | 9.05 | 9.05 | 9.05 | 9.05 | 9.05 | 1 | 1 |",
		"![loss](loss.png) ([SVG](loss.svg))",
		"![dice](dice.png) ([SVG](dice.svg))",
		"| best 1: perfect (Dice 1.0000) |",
		"| worst 1: tumour/missed (Dice 0.0000) |",
		"(overlays/test/best-1-perfect.png)",
		"| **9 (best)** |",
		"- resumed once at epoch 4",
		"\"epochs\": 10",
	} {
		assert.Contains(t, s, want)
	}
	assert.Equal(t, 2, strings.Count(s, "| **foreground mean** |"))
	// The foreground mean comes before the all-class mean in every table.
	assert.Less(t, strings.Index(s, "foreground mean**"), strings.Index(s, "all-class mean"))

	js, err := os.ReadFile(filepath.Join(dir, JSONFile))
	require.NoError(t, err)
	require.True(t, json.Valid(js))
	var generic map[string]any
	require.NoError(t, json.Unmarshal(js, &generic))
	hist := generic["history"].([]any)
	require.Len(t, hist, 10)
	e3 := hist[2].(map[string]any)
	assert.Contains(t, e3, "val_dice")
	assert.Nil(t, e3["val_dice"])
	assert.Nil(t, e3["val_loss"])
	assert.Equal(t, 0.1, hist[9].(map[string]any)["train_loss"])
	assert.Equal(t, r.Headline(), generic["headline"])
	tests := generic["tests"].([]any)
	m := tests[0].(map[string]any)["metrics"].(map[string]any)
	cyst := m["split"].(map[string]any)["per_class"].([]any)[3].(map[string]any)
	assert.Nil(t, cyst["iou"])
	assert.Len(t, m["per_image"], 4)

	var back Run
	require.NoError(t, json.Unmarshal(js, &back))
	assert.Equal(t, r.Headline(), back.Headline())
	assert.True(t, r.Started.Equal(back.Started))
	assert.True(t, math.IsNaN(back.History[2].ValDice))
	assert.Equal(t, r.History[9], back.History[9])
	assert.Equal(t, r.Tests[0].Overlays, back.Tests[0].Overlays)

	assert.NotContains(t, s, "![loss](loss.svg)", "an SVG twin is linked, not embedded again")
	for _, f := range []string{LossPNG, LossSVG, DicePNG, DiceSVG, MarkdownFile, JSONFile, PerImageFile} {
		assert.FileExists(t, filepath.Join(out, f))
	}
	noTemps(t, dir)
}

func TestWriteMinimal(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Write(dir, Run{}))
	md, err := os.ReadFile(filepath.Join(dir, MarkdownFile))
	require.NoError(t, err)
	assert.Contains(t, string(md), "# Training report")
	assert.Contains(t, string(md), "run: no test results")
	assert.NoFileExists(t, filepath.Join(dir, LossPNG))
	js, err := os.ReadFile(filepath.Join(dir, JSONFile))
	require.NoError(t, err)
	assert.Contains(t, string(js), `"history": []`)
	assert.NotContains(t, string(js), "started")

	// A config that cannot be encoded is an error, and nothing is written.
	dir2 := t.TempDir()
	assert.Error(t, Write(dir2, Run{Config: map[string]any{"f": func() {}}}))
	entries, err := os.ReadDir(dir2)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func TestHeadline(t *testing.T) {
	rep := func(dice, iou float64, perImage ...float64) metric.Report {
		r := metric.Report{Split: metric.Summary{Foreground: metric.Means{Dice: metric.Score(dice), IoU: metric.Score(iou)}}}
		if len(perImage) > 0 {
			r.ImageMean.Foreground = metric.ForegroundMean{Dice: metric.Score(perImage[0]), Images: 3}
		}
		return r
	}
	cases := []struct {
		run  Run
		want string
	}{
		{Run{Model: "unet", Tests: []Test{{Split: "test", Metrics: rep(0.95123, 0.90712)}, {Split: "test_xsubject", Metrics: rep(0.81234, 0.7)}}},
			"unet: test foreground Dice 0.9512 pooled (IoU 0.9071); test_xsubject 0.8123 pooled"},
		{Run{Model: "unet", Tests: []Test{{Split: "test", Metrics: rep(0.95123, 0.90712, 0.93)}, {Split: "x", Metrics: rep(0.81234, 0.7, 0.80104)}}},
			"unet: test foreground Dice 0.9512 pooled (IoU 0.9071), 0.9300 per-image mean; x 0.8123 pooled, 0.8010 per-image mean"},
		{Run{Title: "t", Tests: []Test{{Metrics: rep(math.NaN(), math.NaN())}}},
			"t: split 1 foreground Dice – pooled (IoU –)"},
		{Run{Model: "m", History: History{{Epoch: 1, ValDice: 0.5}, {Epoch: 2, ValDice: 0.7}, {Epoch: 3, ValDice: 0.6}}},
			"m: best validation foreground Dice 0.7000 at epoch 2"},
		{Run{Model: "m", BestEpoch: 3, History: History{{Epoch: 1, ValDice: 0.5}, {Epoch: 3, ValDice: 0.6}}},
			"m: best validation foreground Dice 0.6000 at epoch 3"},
		{Run{}, "run: no test results"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, c.run.Headline())
	}
}

func TestFormatting(t *testing.T) {
	assert.Equal(t, "–", ratio(metric.Score(math.NaN())))
	assert.Equal(t, "0.1235", ratio(0.12345))
	assert.Equal(t, "3.14", mm(3.14159))
	assert.Equal(t, "–", mm(metric.Score(math.Inf(1))))
	assert.Equal(t, "1,234,567", thousands(1234567))
	assert.Equal(t, "-1,000", thousands(-1000))
	assert.Equal(t, "999", thousands(999))
	assert.Equal(t, "12.3 s", duration(12.34))
	assert.Equal(t, "4 min 05 s", duration(245))
	assert.Equal(t, "1 h 02 min 03 s", duration(3723))
	assert.Equal(t, "31.0 M", humanCount(31042434))
	assert.Equal(t, `a\|b`, cell("a|b"))
}
