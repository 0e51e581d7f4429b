package report_test

import (
	"fmt"
	"image"
	"log"
	"os"
	"path/filepath"

	"github.com/jmedseg/jmedseg/metric"
	"github.com/jmedseg/jmedseg/report"
)

func ExampleRun_Headline() {
	fg := func(dice, iou float64) metric.Report {
		return metric.Report{Split: metric.Summary{
			Foreground: metric.Means{Dice: metric.Score(dice), IoU: metric.Score(iou)}}}
	}
	r := report.Run{Model: "unet", Tests: []report.Test{
		{Split: "test", Metrics: fg(0.95123, 0.90712)},
		{Split: "test_xsubject", Metrics: fg(0.81234, 0.70001)},
	}}
	fmt.Println(r.Headline())
	// Output: unet: test foreground Dice 0.9512 pooled (IoU 0.9071); test_xsubject 0.8123 pooled
}

func ExampleLinePlot() {
	dir, err := os.MkdirTemp("", "plot")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	err = report.LinePlot(filepath.Join(dir, "lr.png"), report.Plot{
		Title: "Learning rate", XLabel: "epoch", YLabel: "lr",
		Series: []report.Series{{Name: "lr", X: []float64{1, 2, 3, 4}, Y: []float64{1e-3, 1e-3, 5e-4, 2.5e-4}}},
	})
	fmt.Println(err)
	// Output: <nil>
}

func ExampleCurves() {
	dir, err := os.MkdirTemp("", "curves")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	h := report.History{
		{Epoch: 1, TrainLoss: 0.9, ValLoss: 1.0, ValDice: 0.60, ValIoU: 0.45},
		{Epoch: 2, TrainLoss: 0.5, ValLoss: 0.6, ValDice: 0.80, ValIoU: 0.68},
		{Epoch: 3, TrainLoss: 0.3, ValLoss: 0.5, ValDice: 0.85, ValIoU: 0.74},
	}
	files, err := report.Curves(dir, h)
	fmt.Println(files, err)
	// Output: [loss.png loss.svg dice.png dice.svg] <nil>
}

func ExampleOverlay() {
	const w, h = 64, 64
	truth := make([]int64, w*h)
	pred := make([]int64, w*h)
	for y := 20; y < 40; y++ {
		for x := 20; x < 40; x++ {
			truth[y*w+x] = 1
			pred[y*w+x+2] = 1 // two pixels to the right
		}
	}
	img := image.NewGray(image.Rect(0, 0, w, h))
	out, err := report.Overlay(img, truth, pred, w, h, report.Caption(report.Worst, 1, "case07_s12", 0.9))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out.Bounds().Size()) // ×3, plus the caption strip
	// Output: (192,210)
}

func ExampleWrite() {
	dir, err := os.MkdirTemp("", "report")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	e := metric.NewEvaluator(2, []string{"background", "liver"}, -1)
	truth := []int64{0, 1, 1, 0}
	pred := []int64{0, 1, 0, 0}
	if err := e.Add("img1", "", pred, truth, 2, 2, [2]float64{1, 1}); err != nil {
		log.Fatal(err)
	}
	r := report.Run{
		Model: "unet", Params: 1234567, Data: "toy", Device: "cpu", WallSeconds: 75,
		History:   report.History{{Epoch: 1, TrainLoss: 0.7, ValLoss: 0.8, ValDice: 0.5, ValIoU: 0.33}},
		BestEpoch: 1,
		Tests:     []report.Test{{Split: "test", Metrics: e.Report()}},
		Config:    map[string]any{"epochs": 1},
	}
	if err := report.Write(dir, r); err != nil {
		log.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	fmt.Println(r.Headline())
	// Output:
	// dice.png
	// dice.svg
	// loss.png
	// loss.svg
	// per_image.csv
	// report.html
	// report.json
	// report.md
	// unet: test foreground Dice 0.6667 pooled (IoU 0.5000), 0.6667 per-image mean
}
