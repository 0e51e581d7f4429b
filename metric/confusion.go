// Package metric scores segmentations: confusion matrices accumulated over a
// split or per image, per-class IoU, Dice, recall and precision with the
// foreground mean and the all-class mean reported apart, and surface
// distances in millimetres (average symmetric surface distance, the
// Hausdorff distance at the 95th percentile and at the maximum, and the
// one-way average surface distances from prediction to truth and back).
//
// A split is scored two ways, labelled apart: pooled (Report.Split: one
// confusion matrix of every pixel) and as a per-image mean
// (Report.ImageMean, Report.Surface: each image scored alone, then the
// mean over the images where the score is defined, MONAI's convention).
//
// Empty masks: a class in neither mask of an image has Dice and IoU NaN
// (undefined, left out of every mean; MONAI's ignore_empty=False would say
// 1) and surface distances 0 with Surface.Empty "both", left out too; a
// class only predicted scores Dice and IoU 0 and counts in the means
// (MONAI's default ignore_empty=True leaves such images out); exactly one
// empty mask scores every surface distance as the image diagonal (MONAI:
// infinity, or NaN for its HD95).
package metric

import (
	"encoding/json"
	"fmt"
	"math"
)

// Score is a metric value; NaN (undefined, e.g. a class absent from both
// truth and prediction) is written to JSON as null and left out of means.
type Score float64

// MarshalJSON writes NaN and infinities as null.
func (s Score) MarshalJSON() ([]byte, error) {
	f := float64(s)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}

// UnmarshalJSON reads null as NaN.
func (s *Score) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = Score(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*s = Score(f)
	return nil
}

// Confusion is a C×C confusion matrix of pixel counts: row = truth,
// column = prediction.
type Confusion struct {
	Classes int
	Counts  []int64 // Classes*Classes, row-major
}

// NewConfusion returns an empty matrix for c classes.
func NewConfusion(c int) *Confusion {
	return &Confusion{Classes: c, Counts: make([]int64, c*c)}
}

// Add counts a prediction against its truth, pixel by pixel. Truth pixels
// equal to ignore are skipped (pass a negative value to skip none). Values
// outside [0, Classes) are an error naming the first offending pixel.
func (m *Confusion) Add(pred, truth []int64, ignore int64) error {
	if len(pred) != len(truth) {
		return fmt.Errorf("metric: prediction has %d pixels, truth %d", len(pred), len(truth))
	}
	c := int64(m.Classes)
	// Validate first so that a failed Add leaves the counts untouched.
	for i, t := range truth {
		if t == ignore && ignore >= 0 {
			continue
		}
		if t < 0 || t >= c {
			return fmt.Errorf("metric: truth label %d at pixel %d is outside [0,%d)", t, i, c)
		}
		if p := pred[i]; p < 0 || p >= c {
			return fmt.Errorf("metric: predicted label %d at pixel %d is outside [0,%d)", p, i, c)
		}
	}
	for i, t := range truth {
		if t != ignore || ignore < 0 {
			m.Counts[t*c+pred[i]]++
		}
	}
	return nil
}

// Merge adds another matrix of the same size.
func (m *Confusion) Merge(o *Confusion) error {
	if o.Classes != m.Classes {
		return fmt.Errorf("metric: merging %d-class and %d-class matrices", o.Classes, m.Classes)
	}
	for i, v := range o.Counts {
		m.Counts[i] += v
	}
	return nil
}

// At is the count of pixels of true class t predicted as p.
func (m *Confusion) At(t, p int) int64 { return m.Counts[t*m.Classes+p] }

// ClassScores are one class's scores.
type ClassScores struct {
	Class     int    `json:"class"`
	Name      string `json:"name,omitempty"`
	IoU       Score  `json:"iou"`
	Dice      Score  `json:"dice"`
	Recall    Score  `json:"recall"`
	Precision Score  `json:"precision"`
	Truth     int64  `json:"truth_pixels"`
	Predicted int64  `json:"predicted_pixels"`
}

// Means averages scores over a set of classes, skipping undefined ones.
type Means struct {
	Classes   []int `json:"classes"`
	IoU       Score `json:"iou"`
	Dice      Score `json:"dice"`
	Recall    Score `json:"recall"`
	Precision Score `json:"precision"`
}

// Summary is what a confusion matrix says.
type Summary struct {
	PerClass []ClassScores `json:"per_class"`
	// Foreground averages classes 1..C-1: the figure to quote.
	Foreground Means `json:"foreground_mean"`
	// AllClasses includes the background, as the reference reported.
	AllClasses    Means `json:"all_class_mean"`
	PixelAccuracy Score `json:"pixel_accuracy"`
}

func ratio(num, den int64) Score {
	if den == 0 {
		return Score(math.NaN())
	}
	return Score(float64(num) / float64(den))
}

// Scores computes per-class scores and the two means. names may be nil.
func (m *Confusion) Scores(names []string) Summary {
	c := m.Classes
	s := Summary{PerClass: make([]ClassScores, c)}
	var correct, total int64
	for k := 0; k < c; k++ {
		tp := m.At(k, k)
		var truth, pred int64
		for j := 0; j < c; j++ {
			truth += m.At(k, j)
			pred += m.At(j, k)
		}
		fp, fn := pred-tp, truth-tp
		cs := ClassScores{Class: k, IoU: ratio(tp, tp+fp+fn), Dice: ratio(2*tp, 2*tp+fp+fn),
			Recall: ratio(tp, tp+fn), Precision: ratio(tp, tp+fp), Truth: truth, Predicted: pred}
		if k < len(names) {
			cs.Name = names[k]
		}
		s.PerClass[k] = cs
		correct += tp
		total += truth
	}
	s.PixelAccuracy = ratio(correct, total)
	all := make([]int, c)
	for k := range all {
		all[k] = k
	}
	s.AllClasses = mean(s.PerClass, all)
	if c > 1 {
		s.Foreground = mean(s.PerClass, all[1:])
	} else {
		s.Foreground = mean(s.PerClass, all)
	}
	return s
}

func mean(cs []ClassScores, classes []int) Means {
	m := Means{Classes: classes}
	avg := func(get func(ClassScores) Score) Score {
		sum, n := 0.0, 0
		for _, k := range classes {
			if v := float64(get(cs[k])); !math.IsNaN(v) {
				sum += v
				n++
			}
		}
		if n == 0 {
			return Score(math.NaN())
		}
		return Score(sum / float64(n))
	}
	m.IoU = avg(func(c ClassScores) Score { return c.IoU })
	m.Dice = avg(func(c ClassScores) Score { return c.Dice })
	m.Recall = avg(func(c ClassScores) Score { return c.Recall })
	m.Precision = avg(func(c ClassScores) Score { return c.Precision })
	return m
}
