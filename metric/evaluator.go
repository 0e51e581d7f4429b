package metric

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
)

// ImageResult holds one image's scores.
type ImageResult struct {
	ID    string `json:"id"`
	Group string `json:"group,omitempty"` // e.g. the volume a slice came from
	// File is the image file, as the caller named it (Image.File).
	File string `json:"file,omitempty"`
	// Dice and IoU per class (index = class); NaN where the class is in
	// neither mask.
	Dice []Score `json:"dice"`
	IoU  []Score `json:"iou,omitempty"`
	// ForegroundDice and ForegroundIoU average classes 1..C-1 that are
	// defined (NaN when none is).
	ForegroundDice Score `json:"foreground_dice"`
	ForegroundIoU  Score `json:"foreground_iou"`
	// Surface per foreground class (index 0 is class 1).
	Surface []Surface `json:"surface"`
}

// UnmarshalJSON reads what MarshalJSON writes; a foreground IoU missing
// from the JSON (a report written before it existed) reads as NaN.
func (r *ImageResult) UnmarshalJSON(b []byte) error {
	type plain ImageResult
	p := plain{ForegroundIoU: Score(math.NaN())}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*r = ImageResult(p)
	return nil
}

// SurfaceMeans averages one class's surface distances over images, leaving
// out images where both masks are empty: a per-image mean.
type SurfaceMeans struct {
	Class    int    `json:"class"`
	Name     string `json:"name,omitempty"`
	ASSD     Score  `json:"assd_mm"`
	HD95     Score  `json:"hd95_mm"`
	HD       Score  `json:"hd_mm"`
	ASDPred  Score  `json:"asd_pred_mm"`
	ASDTruth Score  `json:"asd_truth_mm"`
	Images   int    `json:"images"`
	// OneEmpty counts images where exactly one mask was empty (scored as
	// the image diagonal).
	OneEmpty int `json:"one_empty"`
}

// UnmarshalJSON reads what MarshalJSON writes; a figure missing from the
// JSON (a report written before it existed) reads as NaN, not 0.
func (m *SurfaceMeans) UnmarshalJSON(b []byte) error {
	type plain SurfaceMeans
	nan := Score(math.NaN())
	p := plain{ASSD: nan, HD95: nan, HD: nan, ASDPred: nan, ASDTruth: nan}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*m = SurfaceMeans(p)
	return nil
}

// ClassMean is one class's Dice and IoU as a per-image mean: each image
// scored alone, then the mean over the images where the score is defined,
// that is where the class is in the truth or the prediction.
type ClassMean struct {
	Class  int    `json:"class"`
	Name   string `json:"name,omitempty"`
	Dice   Score  `json:"dice"`
	IoU    Score  `json:"iou"`
	Images int    `json:"images"` // images averaged
	// PredictedOnly counts the images averaged whose truth has no pixel of
	// the class but whose prediction has some: they score 0. MONAI's
	// DiceMetric with its default ignore_empty=True leaves them out.
	PredictedOnly int `json:"predicted_only"`
}

// ForegroundMean is the per-image mean of the foreground: each image's
// mean over its defined foreground classes, then the mean over the images
// where it is defined (MONAI's "mean" reduction without the background).
type ForegroundMean struct {
	Classes []int `json:"classes"`
	Dice    Score `json:"dice"`
	IoU     Score `json:"iou"`
	Images  int   `json:"images"`
}

// ImageMeans is a split scored the per-image way, beside the pooled
// Summary of Report.Split.
type ImageMeans struct {
	PerClass   []ClassMean    `json:"per_class"`
	Foreground ForegroundMean `json:"foreground_mean"`
}

// Report is an evaluated split.
type Report struct {
	Classes []string `json:"classes,omitempty"`
	// Split is pooled: one confusion matrix of every pixel of the split,
	// so large masks weigh more than small ones.
	Split Summary `json:"split"`
	// ImageMean scores each image alone and averages over images.
	ImageMean ImageMeans `json:"per_image_mean"`
	// Surface holds the per-image means of the surface distances.
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
	// predictedOnly counts, per class, images with the class predicted but
	// not in the truth.
	predictedOnly []int
}

// NewEvaluator scores classes classes (names may be nil). Truth pixels equal
// to ignore are skipped; pass -1 for none.
func NewEvaluator(classes int, names []string, ignore int64) *Evaluator {
	return &Evaluator{classes: classes, names: names, ignore: ignore, total: NewConfusion(classes), groups: map[string]*Confusion{},
		predictedOnly: make([]int, max(classes, 0))}
}

// Image names an image to score.
type Image struct {
	ID    string // the name reports use, such as the file stem
	Group string // e.g. the volume a slice came from; may be empty
	File  string // the image file; may be empty
}

// Add scores one h×w prediction against its truth. spacing is the pixel
// size (row, column) in millimetres.
func (e *Evaluator) Add(id, group string, pred, truth []int64, h, w int, spacing [2]float64) error {
	return e.AddImage(Image{ID: id, Group: group}, pred, truth, h, w, spacing)
}

// AddImage is Add with the image's file recorded too.
func (e *Evaluator) AddImage(img Image, pred, truth []int64, h, w int, spacing [2]float64) error {
	id, group := img.ID, img.Group
	if len(pred) != h*w || len(truth) != h*w {
		return fmt.Errorf("metric: %s: %d predicted and %d true pixels for %dx%d", id, len(pred), len(truth), h, w)
	}
	cm := NewConfusion(e.classes)
	if err := cm.Add(pred, truth, e.ignore); err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	// Check the spacing before anything is merged, so that a failed Add
	// leaves the evaluator as it was.
	if err := checkSpacing(spacing); err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	sum := cm.Scores(e.names)
	r := ImageResult{ID: id, Group: group, File: img.File, Dice: make([]Score, e.classes), IoU: make([]Score, e.classes),
		ForegroundDice: sum.Foreground.Dice, ForegroundIoU: sum.Foreground.IoU}
	for k, cs := range sum.PerClass {
		r.Dice[k], r.IoU[k] = cs.Dice, cs.IoU
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
	for k := 0; k < e.classes; k++ {
		if t, p := sum.PerClass[k].Truth, sum.PerClass[k].Predicted; t == 0 && p > 0 {
			e.predictedOnly[k]++
		}
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
	r.ImageMean = imageMeans(e.images, e.classes, e.names, r.Split)
	for k := range r.ImageMean.PerClass {
		r.ImageMean.PerClass[k].PredictedOnly = e.predictedOnly[k]
	}
	for k := 1; k < e.classes; k++ {
		m := SurfaceMeans{Class: k}
		if k < len(e.names) {
			m.Name = e.names[k]
		}
		var sa, sh, sm, sp, st float64
		for _, img := range e.images {
			s := img.Surface[k-1]
			if !s.Defined() {
				continue
			}
			if s.Empty != "" {
				m.OneEmpty++
			}
			sa += float64(s.ASSD)
			sh += float64(s.HD95)
			sm += float64(s.HD)
			sp += float64(s.ASDPred)
			st += float64(s.ASDTruth)
			m.Images++
		}
		nan := Score(math.NaN())
		m.ASSD, m.HD95, m.HD, m.ASDPred, m.ASDTruth = nan, nan, nan, nan, nan
		if n := float64(m.Images); n > 0 {
			m.ASSD, m.HD95, m.HD, m.ASDPred, m.ASDTruth = Score(sa/n), Score(sh/n), Score(sm/n), Score(sp/n), Score(st/n)
		}
		r.Surface = append(r.Surface, m)
	}
	return r
}

// imageMeans averages per-image Dice and IoU over the images where each is
// defined (NaN when none is). split, the pooled summary, names the classes
// of the foreground.
func imageMeans(images []ImageResult, classes int, names []string, split Summary) ImageMeans {
	var m ImageMeans
	for k := 0; k < classes; k++ {
		cm := ClassMean{Class: k}
		if k < len(names) {
			cm.Name = names[k]
		}
		var sd, si float64
		for _, img := range images {
			d := float64(img.Dice[k])
			if math.IsNaN(d) {
				continue
			}
			sd += d
			si += float64(img.IoU[k])
			cm.Images++
		}
		cm.Dice, cm.IoU = meanOf(sd, cm.Images), meanOf(si, cm.Images)
		m.PerClass = append(m.PerClass, cm)
	}
	fg := ForegroundMean{Classes: split.Foreground.Classes}
	var sd, si float64
	for _, img := range images {
		if d := float64(img.ForegroundDice); !math.IsNaN(d) {
			sd += d
			si += float64(img.ForegroundIoU)
			fg.Images++
		}
	}
	fg.Dice, fg.IoU = meanOf(sd, fg.Images), meanOf(si, fg.Images)
	m.Foreground = fg
	return m
}

func meanOf(sum float64, n int) Score {
	if n == 0 {
		return Score(math.NaN())
	}
	return Score(sum / float64(n))
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
