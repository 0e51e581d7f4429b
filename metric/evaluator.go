package metric

import (
	"fmt"
	"math"
	"sort"
)

// ImageResult holds one image's scores.
type ImageResult struct {
	ID    string `json:"id"`
	Group string `json:"group,omitempty"` // e.g. the volume a slice came from
	// Dice per class (index = class); NaN where the class is in neither mask.
	Dice []Score `json:"dice"`
	// ForegroundDice averages Dice over classes 1..C-1 that are defined.
	ForegroundDice Score `json:"foreground_dice"`
	// Surface per foreground class (index 0 is class 1).
	Surface []Surface `json:"surface"`
}

// SurfaceMeans averages one class's surface distances over images, leaving
// out images where both masks are empty.
type SurfaceMeans struct {
	Class  int    `json:"class"`
	Name   string `json:"name,omitempty"`
	ASSD   Score  `json:"assd_mm"`
	HD95   Score  `json:"hd95_mm"`
	Images int    `json:"images"`
	// OneEmpty counts images where exactly one mask was empty (scored as
	// the image diagonal).
	OneEmpty int `json:"one_empty"`
}

// Report is an evaluated split.
type Report struct {
	Classes   []string           `json:"classes,omitempty"`
	Split     Summary            `json:"split"`
	Surface   []SurfaceMeans     `json:"surface"`
	Groups    map[string]Summary `json:"groups,omitempty"`
	PerImage  []ImageResult      `json:"per_image"`
	Confusion *Confusion         `json:"confusion"`
}

// Evaluator accumulates predictions over a split.
type Evaluator struct {
	classes int
	names   []string
	ignore  int64
	total   *Confusion
	groups  map[string]*Confusion
	images  []ImageResult
}

// NewEvaluator scores classes classes (names may be nil). Truth pixels equal
// to ignore are skipped; pass -1 for none.
func NewEvaluator(classes int, names []string, ignore int64) *Evaluator {
	return &Evaluator{classes: classes, names: names, ignore: ignore, total: NewConfusion(classes), groups: map[string]*Confusion{}}
}

// Add scores one h×w prediction against its truth. spacing is the pixel
// size (row, column) in millimetres.
func (e *Evaluator) Add(id, group string, pred, truth []int64, h, w int, spacing [2]float64) error {
	if len(pred) != h*w || len(truth) != h*w {
		return fmt.Errorf("metric: %s: %d predicted and %d true pixels for %dx%d", id, len(pred), len(truth), h, w)
	}
	cm := NewConfusion(e.classes)
	if err := cm.Add(pred, truth, e.ignore); err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	if err := e.total.Merge(cm); err != nil {
		return err
	}
	if group != "" {
		g, ok := e.groups[group]
		if !ok {
			g = NewConfusion(e.classes)
			e.groups[group] = g
		}
		if err := g.Merge(cm); err != nil {
			return err
		}
	}
	sum := cm.Scores(e.names)
	r := ImageResult{ID: id, Group: group, Dice: make([]Score, e.classes), ForegroundDice: sum.Foreground.Dice}
	for k, cs := range sum.PerClass {
		r.Dice[k] = cs.Dice
	}
	pm, tm := make([]bool, h*w), make([]bool, h*w)
	for k := 1; k < e.classes; k++ {
		for i := range pm {
			ignored := e.ignore >= 0 && truth[i] == e.ignore
			pm[i] = pred[i] == int64(k) && !ignored
			tm[i] = truth[i] == int64(k)
		}
		s, err := SurfaceDistance(pm, tm, h, w, spacing)
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		r.Surface = append(r.Surface, s)
	}
	e.images = append(e.images, r)
	return nil
}

// Report summarises everything added so far.
func (e *Evaluator) Report() Report {
	r := Report{Classes: e.names, Split: e.total.Scores(e.names), PerImage: e.images, Confusion: e.total}
	if len(e.groups) > 0 {
		r.Groups = map[string]Summary{}
		for k, g := range e.groups {
			r.Groups[k] = g.Scores(e.names)
		}
	}
	for k := 1; k < e.classes; k++ {
		m := SurfaceMeans{Class: k}
		if k < len(e.names) {
			m.Name = e.names[k]
		}
		var sa, sh float64
		for _, img := range e.images {
			s := img.Surface[k-1]
			if s.Empty == "both" {
				continue
			}
			if s.Empty != "" {
				m.OneEmpty++
			}
			sa += float64(s.ASSD)
			sh += float64(s.HD95)
			m.Images++
		}
		m.ASSD, m.HD95 = Score(math.NaN()), Score(math.NaN())
		if m.Images > 0 {
			m.ASSD, m.HD95 = Score(sa/float64(m.Images)), Score(sh/float64(m.Images))
		}
		r.Surface = append(r.Surface, m)
	}
	return r
}

// Ranked returns the images ordered from the lowest foreground Dice to the
// highest (undefined last), for picking best and worst cases.
func (r Report) Ranked() []ImageResult {
	out := append([]ImageResult(nil), r.PerImage...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := float64(out[i].ForegroundDice), float64(out[j].ForegroundDice)
		if math.IsNaN(a) || math.IsNaN(b) {
			return !math.IsNaN(a)
		}
		return a < b
	})
	return out
}
