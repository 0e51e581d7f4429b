package zoo

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/metric"
	"github.com/jmedseg/jmedseg/report"
	"github.com/jmedseg/jmedseg/train"
)

// figureImage is the test image every model predicts for the
// small-multiples figure.
type figureImage struct {
	Split string
	data.Sample
}

func (f *figureImage) label() string { return f.Split + "/" + f.ID }

// pickFigureImage chooses the figure's image: in the test split (else the
// first test split with masks), the sample nearest the middle of the split
// whose mask has foreground. Nil when no split has one.
func pickFigureImage(ds *data.Dataset, splits []string) (*figureImage, error) {
	order := append([]string(nil), splits...)
	for i, s := range order {
		if s == "test" {
			order = append([]string{"test"}, append(order[:i:i], order[i+1:]...)...)
			break
		}
	}
	for _, split := range order {
		samples, err := ds.Split(split)
		if err != nil {
			return nil, fmt.Errorf("zoo: --data: %w", err)
		}
		mid := len(samples) / 2
		for d := 0; d <= len(samples); d++ {
			for _, i := range []int{mid + d, mid - d - 1} {
				if i < 0 || i >= len(samples) || samples[i].Mask == "" {
					continue
				}
				m, err := data.ReadMask(samples[i].Mask)
				if err != nil {
					continue // data check reports it; the figure takes another
				}
				for _, v := range m.Pix {
					if v > 0 {
						return &figureImage{Split: split, Sample: samples[i]}, nil
					}
				}
			}
		}
	}
	return nil, nil
}

// needsPrediction reports whether a tested row lacks its mask for the
// figure image.
func (z *zooRun) needsPrediction(r Row) bool {
	if z.figure == nil || r.Status == StatusFailed {
		return false
	}
	if r.PredictionOf != z.figure.label() || r.Prediction == "" {
		return true
	}
	_, err := os.Stat(filepath.Join(z.opt.Out, r.Prediction))
	return err != nil
}

// predict runs `jmedseg predict` with the row's best checkpoint on the
// figure image; a failure becomes a note of the row.
func (z *zooRun) predict(ctx context.Context, r *Row) {
	if z.figure == nil {
		return
	}
	const failed = "no prediction for the figure: "
	r.Notes = slices.DeleteFunc(r.Notes, func(n string) bool { return strings.HasPrefix(n, failed) }) // an earlier try's
	dir := filepath.Join(z.opt.Out, r.Run)
	out := filepath.Join(dir, PredictionFile)
	args := []string{"predict", "--checkpoint", filepath.Join(dir, train.BestFile), "--input", z.figure.Image,
		"--output", out, "--device", z.opt.Device}
	if z.opt.Threads > 0 {
		args = append(args, "--threads", strconv.Itoa(z.opt.Threads))
	}
	log, err := os.OpenFile(filepath.Join(dir, LogFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		r.Notes = append(r.Notes, failed+err.Error())
		return
	}
	defer log.Close()
	ex, err := z.runner.Run(ctx, args, nil, log)
	switch {
	case ctx.Err() != nil:
		// Interrupted: the next run predicts again.
	case err != nil:
		r.Notes = append(r.Notes, failed+err.Error())
	case ex.Code != 0:
		r.Notes = append(r.Notes, failed+ex.ErrorLine())
	default:
		r.Prediction, r.PredictionOf = filepath.ToSlash(filepath.Join(r.Run, PredictionFile)), z.figure.label()
	}
}

// drawPredictions writes the small-multiples figure: the figure image
// with its truth, then one panel per row with a prediction of it.
func (z *zooRun) drawPredictions(rows []Row) (bool, error) {
	if z.figure == nil {
		return false, nil
	}
	img, err := data.ReadImage(z.figure.Image)
	if err != nil {
		return false, fmt.Errorf("zoo: figure image: %w", err)
	}
	tm, err := data.ReadMask(z.figure.Mask)
	if err != nil {
		return false, fmt.Errorf("zoo: figure image: %w", err)
	}
	b := img.Bounds()
	if b.Dx() != tm.W || b.Dy() != tm.H {
		return false, fmt.Errorf("zoo: figure image %s is %dx%d, its mask %dx%d", z.figure.Image, b.Dx(), b.Dy(), tm.W, tm.H)
	}
	truth := labels(tm)
	panels := []report.Panel{{Image: img, Truth: truth, W: tm.W, H: tm.H, Caption: "truth: " + z.figure.label()}}
	for _, r := range rows {
		if r.Prediction == "" || r.PredictionOf != z.figure.label() {
			continue
		}
		pm, err := data.ReadMask(filepath.Join(z.opt.Out, r.Prediction))
		if err != nil || pm.W != tm.W || pm.H != tm.H {
			continue // an unreadable or odd mask leaves the panel out
		}
		pred := labels(pm)
		panels = append(panels, report.Panel{Image: img, Truth: truth, Pred: pred, W: tm.W, H: tm.H,
			Caption: fmt.Sprintf("%s  Dice %s", r.Model, ratio(imageDice(pred, truth, tm.W, tm.H, int(z.cfg.Classes))))})
	}
	if len(panels) == 1 {
		return false, nil
	}
	out, err := report.SmallMultiples(panels, 0)
	if err != nil {
		return false, err
	}
	return true, report.SavePNG(filepath.Join(z.opt.Out, PredictionsPNG), out)
}

func labels(m *data.Mask) []int64 {
	out := make([]int64, len(m.Pix))
	for i, v := range m.Pix {
		out[i] = int64(v)
	}
	return out
}

// imageDice is one image's foreground Dice, as the test reports score it.
func imageDice(pred, truth []int64, w, h, classes int) metric.Score {
	e := metric.NewEvaluator(classes, nil, -1)
	if err := e.Add("figure", "", pred, truth, h, w, [2]float64{1, 1}); err != nil {
		return metric.Score(math.NaN())
	}
	return e.Report().PerImage[0].ForegroundDice
}
