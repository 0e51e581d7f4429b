package metric_test

import (
	"encoding/json"
	"math"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/metric"
)

func TestConfusionScoresByHand(t *testing.T) {
	// truth:  0 0 1 1 2 2     prediction: 0 1 1 1 2 0
	m := metric.NewConfusion(3)
	require.NoError(t, m.Add([]int64{0, 1, 1, 1, 2, 0}, []int64{0, 0, 1, 1, 2, 2}, -1))
	s := m.Scores([]string{"bg", "a", "b"})
	// class 1: tp 2, fp 1, fn 0 -> IoU 2/3, Dice 4/5, recall 1, precision 2/3
	c1 := s.PerClass[1]
	assert.InDelta(t, 2.0/3, float64(c1.IoU), 1e-12)
	assert.InDelta(t, 0.8, float64(c1.Dice), 1e-12)
	assert.InDelta(t, 1.0, float64(c1.Recall), 1e-12)
	assert.InDelta(t, 2.0/3, float64(c1.Precision), 1e-12)
	assert.Equal(t, "a", c1.Name)
	// class 2: tp 1, fp 0, fn 1 -> Dice 2/3, recall 1/2, precision 1
	c2 := s.PerClass[2]
	assert.InDelta(t, 2.0/3, float64(c2.Dice), 1e-12)
	assert.InDelta(t, 0.5, float64(c2.Recall), 1e-12)
	assert.InDelta(t, 1.0, float64(c2.Precision), 1e-12)
	// background: tp 1, fp 1, fn 1 -> Dice 1/2
	assert.InDelta(t, 0.5, float64(s.PerClass[0].Dice), 1e-12)
	assert.Equal(t, []int{1, 2}, s.Foreground.Classes)
	assert.InDelta(t, (0.8+2.0/3)/2, float64(s.Foreground.Dice), 1e-12)
	assert.InDelta(t, (0.5+0.8+2.0/3)/3, float64(s.AllClasses.Dice), 1e-12)
	assert.InDelta(t, 4.0/6, float64(s.PixelAccuracy), 1e-12)

	// all-background prediction: foreground Dice 0, the reference's mean ~0.5
	m = metric.NewConfusion(2)
	truth := make([]int64, 100)
	for i := 0; i < 5; i++ {
		truth[i] = 1
	}
	require.NoError(t, m.Add(make([]int64, 100), truth, -1))
	s = m.Scores(nil)
	assert.Equal(t, 0.0, float64(s.Foreground.Dice))
	assert.InDelta(t, 0.487, float64(s.AllClasses.Dice), 0.001)
}

func TestConfusionErrorsAndIgnore(t *testing.T) {
	m := metric.NewConfusion(2)
	require.ErrorContains(t, m.Add([]int64{0}, []int64{0, 1}, -1), "1 pixels, truth 2")
	require.ErrorContains(t, m.Add([]int64{0, 0}, []int64{0, 5}, -1), "truth label 5 at pixel 1")
	require.ErrorContains(t, m.Add([]int64{0, 3}, []int64{0, 1}, -1), "predicted label 3")
	require.NoError(t, m.Add([]int64{1, 0}, []int64{255, 0}, 255))
	assert.Equal(t, []int64{1, 0, 0, 0}, m.Counts)
	s := metric.NewConfusion(2).Scores(nil)
	assert.True(t, math.IsNaN(float64(s.PerClass[1].Dice)), "absent class is undefined")
	b, err := json.Marshal(s.PerClass[1])
	require.NoError(t, err)
	assert.Contains(t, string(b), `"dice":null`)
}

// bruteSurface is the definition, computed the slow way.
func bruteSurface(pred, truth []bool, h, w int, sp [2]float64) metric.Surface {
	isBorder := func(m []bool, y, x int) bool {
		if !m[y*w+x] {
			return false
		}
		if y == 0 || x == 0 || y == h-1 || x == w-1 {
			return true
		}
		return !m[(y-1)*w+x] || !m[(y+1)*w+x] || !m[y*w+x-1] || !m[y*w+x+1]
	}
	pts := func(m []bool) [][2]int {
		var out [][2]int
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				if isBorder(m, y, x) {
					out = append(out, [2]int{y, x})
				}
			}
		}
		return out
	}
	a, b := pts(pred), pts(truth)
	dir := func(from, to [][2]int) []float64 {
		var ds []float64
		for _, p := range from {
			best := math.Inf(1)
			for _, q := range to {
				d := math.Hypot(float64(p[0]-q[0])*sp[0], float64(p[1]-q[1])*sp[1])
				best = math.Min(best, d)
			}
			ds = append(ds, best)
		}
		return ds
	}
	da, db := dir(a, b), dir(b, a)
	sa, sb, mx := 0.0, 0.0, 0.0
	for _, d := range da {
		sa += d
		mx = math.Max(mx, d)
	}
	for _, d := range db {
		sb += d
		mx = math.Max(mx, d)
	}
	return metric.Surface{ASSD: metric.Score((sa + sb) / float64(len(da)+len(db))),
		HD95: metric.Score(math.Max(metric.Percentile(da, 95), metric.Percentile(db, 95))), HD: metric.Score(mx),
		ASDPred: metric.Score(sa / float64(len(da))), ASDTruth: metric.Score(sb / float64(len(db)))}
}

func TestSurfaceDistanceMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for trial := 0; trial < 40; trial++ {
		h, w := 5+rng.Intn(20), 5+rng.Intn(20)
		sp := [2]float64{0.5 + rng.Float64()*2, 0.5 + rng.Float64()*2}
		blob := func() []bool {
			m := make([]bool, h*w)
			cy, cx, r := rng.Float64()*float64(h), rng.Float64()*float64(w), 1+rng.Float64()*float64(h)/2
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					m[y*w+x] = math.Hypot(float64(y)-cy, float64(x)-cx) < r || rng.Float64() < 0.03
				}
			}
			return m
		}
		p, q := blob(), blob()
		got, err := metric.SurfaceDistance(p, q, h, w, sp)
		require.NoError(t, err)
		if got.Empty != "" {
			continue
		}
		want := bruteSurface(p, q, h, w, sp)
		assert.InDelta(t, float64(want.ASSD), float64(got.ASSD), 1e-9, "trial %d", trial)
		assert.InDelta(t, float64(want.HD95), float64(got.HD95), 1e-9, "trial %d", trial)
		assert.InDelta(t, float64(want.HD), float64(got.HD), 1e-9, "trial %d", trial)
		assert.InDelta(t, float64(want.ASDPred), float64(got.ASDPred), 1e-9, "trial %d", trial)
		assert.InDelta(t, float64(want.ASDTruth), float64(got.ASDTruth), 1e-9, "trial %d", trial)
	}
}

func TestSurfaceDistanceHandCases(t *testing.T) {
	// two single pixels 3 columns apart at 2 mm columns: every distance is 6 mm
	p, q := make([]bool, 25), make([]bool, 25)
	p[2*5+1], q[2*5+4] = true, true
	s, err := metric.SurfaceDistance(p, q, 5, 5, [2]float64{1, 2})
	require.NoError(t, err)
	assert.InDelta(t, 6, float64(s.ASSD), 1e-12)
	assert.InDelta(t, 6, float64(s.HD95), 1e-12)
	same, _ := metric.SurfaceDistance(p, p, 5, 5, [2]float64{1, 1})
	assert.Equal(t, metric.Score(0), same.ASSD)

	empty := make([]bool, 25)
	s, _ = metric.SurfaceDistance(empty, empty, 5, 5, [2]float64{1, 1})
	assert.Equal(t, metric.Surface{Empty: "both"}, s)
	s, _ = metric.SurfaceDistance(empty, q, 5, 5, [2]float64{1, 2})
	assert.Equal(t, "prediction", s.Empty)
	assert.InDelta(t, math.Hypot(5, 10), float64(s.HD95), 1e-12)
	_, err = metric.SurfaceDistance(p, q, 4, 5, [2]float64{1, 1})
	require.Error(t, err)
	_, err = metric.SurfaceDistance(p, q, 5, 5, [2]float64{0, 1})
	require.Error(t, err)
}

func TestEvaluator(t *testing.T) {
	e := metric.NewEvaluator(2, []string{"background", "brain"}, -1)
	truth := []int64{0, 1, 1, 0}
	require.NoError(t, e.Add("perfect", "vol1", truth, truth, 2, 2, [2]float64{1, 1}))
	require.NoError(t, e.Add("empty", "vol1", []int64{0, 0, 0, 0}, truth, 2, 2, [2]float64{1, 1}))
	require.NoError(t, e.Add("none", "vol2", []int64{0, 0, 0, 0}, []int64{0, 0, 0, 0}, 2, 2, [2]float64{1, 1}))
	require.Error(t, e.Add("bad", "", []int64{0}, truth, 2, 2, [2]float64{1, 1}))
	r := e.Report()
	assert.InDelta(t, 2.0/3, float64(r.Split.Foreground.Dice), 1e-12) // tp 2, fn 2
	assert.Equal(t, 1.0, float64(r.PerImage[0].ForegroundDice))
	assert.Equal(t, 2, r.Surface[0].Images)
	assert.Equal(t, 1, r.Surface[0].OneEmpty)
	assert.Equal(t, "brain", r.Surface[0].Name)
	ranked := r.Ranked()
	assert.Equal(t, []string{"empty", "perfect", "none"}, []string{ranked[0].ID, ranked[1].ID, ranked[2].ID})
	assert.Contains(t, r.Groups, "vol2")
	_, err := json.Marshal(r)
	require.NoError(t, err, "NaN scores still marshal")
}

func TestSurfaceDistanceDirectedAndMaximum(t *testing.T) {
	row := func(n int, on ...int) []bool {
		m := make([]bool, n)
		for _, i := range on {
			m[i] = true
		}
		return m
	}
	for _, c := range []struct {
		name        string
		pred, truth []bool
		h, w        int
		sp          [2]float64
		want        metric.Surface
	}{
		// Prediction 4 pixels along a row at 2 mm, truth its first pixel:
		// d(a,B) = 0, 2, 4, 6; d(b,A) = 0.
		{"row, 2 mm columns", row(4, 0, 1, 2, 3), row(4, 0), 1, 4, [2]float64{1, 2},
			metric.Surface{ASSD: 2.4, HD95: 5.7, HD: 6, ASDPred: 3, ASDTruth: 0}},
		// The same down a column at 0.5 mm rows, truth and prediction swapped.
		{"column, 0.5 mm rows, swapped", row(4, 0), row(4, 0, 1, 2, 3), 4, 1, [2]float64{0.5, 9},
			metric.Surface{ASSD: 0.6, HD95: 1.425, HD: 1.5, ASDPred: 0, ASDTruth: 0.75}},
		// One pixel each, diagonal apart: every distance is hypot(3*0.5, 4*3).
		{"one pixel each", row(25, 0), row(25, 3*5+4), 5, 5, [2]float64{0.5, 3},
			metric.Surface{ASSD: metric.Score(math.Hypot(1.5, 12)), HD95: metric.Score(math.Hypot(1.5, 12)),
				HD: metric.Score(math.Hypot(1.5, 12)), ASDPred: metric.Score(math.Hypot(1.5, 12)), ASDTruth: metric.Score(math.Hypot(1.5, 12))}},
		{"both empty", row(6), row(6), 2, 3, [2]float64{1, 1}, metric.Surface{Empty: "both"}},
		{"empty truth: the diagonal everywhere", row(6, 4), row(6), 2, 3, [2]float64{3, 4},
			metric.Surface{ASSD: metric.Score(6 * math.Sqrt(5)), HD95: metric.Score(6 * math.Sqrt(5)), HD: metric.Score(6 * math.Sqrt(5)),
				ASDPred: metric.Score(6 * math.Sqrt(5)), ASDTruth: metric.Score(6 * math.Sqrt(5)), Empty: "truth"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := metric.SurfaceDistance(c.pred, c.truth, c.h, c.w, c.sp)
			require.NoError(t, err)
			assert.Equal(t, c.want.Empty, got.Empty)
			assert.Equal(t, c.want.Empty != "both", got.Defined())
			for _, f := range []struct {
				name      string
				want, got metric.Score
			}{{"ASSD", c.want.ASSD, got.ASSD}, {"HD95", c.want.HD95, got.HD95}, {"HD", c.want.HD, got.HD},
				{"ASDPred", c.want.ASDPred, got.ASDPred}, {"ASDTruth", c.want.ASDTruth, got.ASDTruth}} {
				assert.InDelta(t, float64(f.want), float64(f.got), 1e-12, f.name)
			}
		})
	}
	_, err := metric.SurfaceDistance(row(4), row(4), 2, 2, [2]float64{math.NaN(), 1})
	require.ErrorContains(t, err, "must be positive and finite")
}

// The per-image mean weighs every image alike; the pooled figure weighs
// pixels. Images where the class is in neither mask are left out; an image
// where it is only predicted scores 0 and is counted.
func TestPerImageMeanBesidePooled(t *testing.T) {
	e := metric.NewEvaluator(2, []string{"background", "lesion"}, -1)
	big := make([]int64, 16)
	for i := 0; i < 8; i++ {
		big[i] = 1
	}
	small := make([]int64, 16)
	small[5], small[6] = 1, 1
	fp := make([]int64, 16)
	fp[15] = 1
	none := make([]int64, 16)
	sp := [2]float64{1, 1}
	require.NoError(t, e.AddImage(metric.Image{ID: "big", File: "images/big.png"}, big, big, 4, 4, sp))
	require.NoError(t, e.Add("missed", "", none, small, 4, 4, sp))
	require.NoError(t, e.Add("false positive", "", fp, none, 4, 4, sp))
	require.NoError(t, e.Add("empty", "", none, none, 4, 4, sp))
	// A bad spacing is refused before anything is counted.
	require.ErrorContains(t, e.Add("bad", "", big, big, 4, 4, [2]float64{0, 1}), "bad: metric: pixel spacing")
	r := e.Report()
	assert.Equal(t, "images/big.png", r.PerImage[0].File)
	assert.InDelta(t, 16.0/19, float64(r.Split.Foreground.Dice), 1e-12, "pooled: tp 8, fn 2, fp 1")
	assert.InDelta(t, 8.0/11, float64(r.Split.Foreground.IoU), 1e-12)
	lesion := r.ImageMean.PerClass[1]
	assert.Equal(t, "lesion", lesion.Name)
	assert.InDelta(t, 1.0/3, float64(lesion.Dice), 1e-12, "per image: (1 + 0 + 0) / 3")
	assert.InDelta(t, 1.0/3, float64(lesion.IoU), 1e-12)
	assert.Equal(t, 3, lesion.Images)
	assert.Equal(t, 1, lesion.PredictedOnly)
	assert.Equal(t, 4, r.ImageMean.PerClass[0].Images)
	assert.Equal(t, 0, r.ImageMean.PerClass[0].PredictedOnly)
	fg := r.ImageMean.Foreground
	assert.Equal(t, []int{1}, fg.Classes)
	assert.InDelta(t, 1.0/3, float64(fg.Dice), 1e-12)
	assert.Equal(t, 3, fg.Images)
	// Surface distances: the empty image is left out, the two with one empty
	// mask score the diagonal (4*sqrt(2)), the big one 0.
	s := r.Surface[0]
	assert.Equal(t, 3, s.Images)
	assert.Equal(t, 2, s.OneEmpty)
	assert.InDelta(t, 2*4*math.Sqrt2/3, float64(s.HD), 1e-12)
	assert.InDelta(t, 2*4*math.Sqrt2/3, float64(s.ASDPred), 1e-12)

	// JSON: NaN as null; reports written before these figures read as NaN.
	b, err := json.Marshal(r)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"per_image_mean":{"per_class":[`)
	var back metric.Report
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, r.ImageMean.PerClass[1].Images, back.ImageMean.PerClass[1].Images)
	var old metric.SurfaceMeans
	require.NoError(t, json.Unmarshal([]byte(`{"class":1,"assd_mm":1,"hd95_mm":2,"images":3}`), &old))
	assert.Equal(t, metric.Score(2), old.HD95)
	assert.True(t, math.IsNaN(float64(old.HD)))
	var oldImg metric.Surface
	require.NoError(t, json.Unmarshal([]byte(`{"assd_mm":1,"hd95_mm":2}`), &oldImg))
	assert.True(t, math.IsNaN(float64(oldImg.ASDTruth)))
}
