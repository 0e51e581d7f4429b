package sas

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/infer"
	"github.com/jmedseg/jmedseg/metric"
	"github.com/jmedseg/jmedseg/report"
	"github.com/jmedseg/jmedseg/train"
)

// figureSplit is the split the figure's images come from: test's phone-
// photo twin, else the first phone-photo split, else the first test split.
func figureSplit(splits []string) string {
	if slices.Contains(splits, "test"+ShiftSuffix) {
		return "test" + ShiftSuffix
	}
	for _, s := range splits {
		if strings.HasSuffix(s, ShiftSuffix) {
			return s
		}
	}
	if len(splits) > 0 {
		return splits[0]
	}
	return ""
}

// figureSamples picks n samples of split with foreground in their masks,
// spread evenly over the split.
func figureSamples(ds *data.Dataset, split string, n int) ([]data.Sample, error) {
	samples, err := ds.Split(split)
	if err != nil {
		return nil, err
	}
	var fg []data.Sample
	for _, s := range samples {
		if s.Mask == "" {
			continue
		}
		m, err := data.ReadMask(s.Mask)
		if err != nil {
			continue // data check reports it; the figure takes another
		}
		if slices.ContainsFunc(m.Pix, func(v int32) bool { return v > 0 }) {
			fg = append(fg, s)
		}
	}
	if len(fg) <= n {
		return fg, nil
	}
	out := make([]data.Sample, n)
	for i := range out {
		out[i] = fg[(2*i+1)*len(fg)/(2*n)]
	}
	return out, nil
}

// drawFigure writes the figure like the seed's Figure 1: a few phone-photo
// test images, each in a row with its truth and every variant's
// prediction (the first seed with a tested run). It reports whether it
// wrote one and the images' labels.
func (e *experiment) drawFigure() (bool, []string, error) {
	t := &e.table
	split := figureSplit(t.Splits)
	if split == "" {
		return false, nil, nil
	}
	samples, err := figureSamples(e.ds, split, e.opt.FigureImages)
	if err != nil || len(samples) == 0 {
		return false, nil, err
	}
	type column struct {
		variant string
		seed    uint64
		pred    *infer.Predictor
	}
	dev, err := deviceOf(e.opt.Device)
	if err != nil {
		return false, nil, err
	}
	var cols []column
	defer func() {
		for _, c := range cols {
			c.pred.Close()
		}
	}()
	for _, v := range t.Variants {
		for _, seed := range t.Seeds {
			r, ok := e.rows[rowKey(v.Name, seed)]
			if !ok || r.Status == StatusFailed {
				continue
			}
			p, err := infer.NewPredictor(filepath.Join(e.opt.Out, r.Run, train.BestFile), dev)
			if err != nil {
				return false, nil, fmt.Errorf("%s seed %d: %w", v.Name, seed, err)
			}
			cols = append(cols, column{v.Name, seed, p})
			break
		}
	}
	if len(cols) == 0 {
		return false, nil, nil
	}
	var panels []report.Panel
	var ids []string
	for _, s := range samples {
		img, err := data.ReadImage(s.Image)
		if err != nil {
			return false, nil, err
		}
		tm, err := data.ReadMask(s.Mask)
		if err != nil {
			return false, nil, err
		}
		b := img.Bounds()
		if b.Dx() != tm.W || b.Dy() != tm.H {
			return false, nil, fmt.Errorf("figure image %s is %dx%d, its mask %dx%d", s.Image, b.Dx(), b.Dy(), tm.W, tm.H)
		}
		id := split + "/" + s.ID
		ids = append(ids, id)
		truth := labels(tm)
		panels = append(panels, report.Panel{Image: img, Truth: truth, W: tm.W, H: tm.H, Caption: "truth " + s.ID})
		for _, c := range cols {
			pm, err := c.pred.Predict(img)
			if err != nil {
				return false, nil, fmt.Errorf("%s seed %d on %s: %w", c.variant, c.seed, s.Image, err)
			}
			pred := labels(pm)
			panels = append(panels, report.Panel{Image: img, Truth: truth, Pred: pred, W: tm.W, H: tm.H,
				Caption: fmt.Sprintf("%s %s", c.variant, ratio(foregroundDice(pred, truth, e.classes)))})
		}
	}
	out, err := report.SmallMultiples(panels, 1+len(cols))
	if err != nil {
		return false, nil, err
	}
	return true, ids, report.SavePNG(filepath.Join(e.opt.Out, FigureFile), out)
}

func labels(m *data.Mask) []int64 {
	out := make([]int64, len(m.Pix))
	for i, v := range m.Pix {
		out[i] = int64(v)
	}
	return out
}

// foregroundDice is one image's Dice averaged over the foreground classes
// present in its truth or prediction (NaN when neither has foreground).
func foregroundDice(pred, truth []int64, classes int) metric.Score {
	sum, n := 0.0, 0
	for c := int64(1); c < int64(classes); c++ {
		var tp, p, t int
		for i := range truth {
			pc, tc := pred[i] == c, truth[i] == c
			if pc {
				p++
			}
			if tc {
				t++
			}
			if pc && tc {
				tp++
			}
		}
		if p+t > 0 {
			sum += 2 * float64(tp) / float64(p+t)
			n++
		}
	}
	if n == 0 {
		return metric.Score(math.NaN())
	}
	return metric.Score(sum / float64(n))
}
