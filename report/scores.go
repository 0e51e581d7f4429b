package report

import (
	"math"

	"github.com/jmedseg/jmedseg/metric"
)

// SplitScores are a tested split's headline scores, as the zoo and the SAS
// experiment tabulate them: the pooled foreground Dice and IoU, and HD95
// and ASSD in mm averaged over the foreground classes' finite values (NaN
// without any).
type SplitScores struct {
	Split  string       `json:"split"`
	Dice   metric.Score `json:"dice"`
	IoU    metric.Score `json:"iou"`
	HD95   metric.Score `json:"hd95_mm"`
	ASSD   metric.Score `json:"assd_mm"`
	Images int          `json:"images"`
}

// Scores returns t's headline scores.
func (t Test) Scores() SplitScores {
	m := t.Metrics
	s := SplitScores{Split: t.Split, Dice: m.Split.Foreground.Dice, IoU: m.Split.Foreground.IoU, Images: len(m.PerImage)}
	var hd, as []float64
	for _, sm := range m.Surface {
		if sm.Class > 0 {
			hd = append(hd, float64(sm.HD95))
			as = append(as, float64(sm.ASSD))
		}
	}
	s.HD95, s.ASSD = finiteMean(hd), finiteMean(as)
	return s
}

// finiteMean is the mean of v's finite values, NaN without any.
func finiteMean(v []float64) metric.Score {
	s, n := 0.0, 0
	for _, x := range v {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			s += x
			n++
		}
	}
	if n == 0 {
		return metric.Score(math.NaN())
	}
	return metric.Score(s / float64(n))
}
