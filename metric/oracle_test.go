package metric_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/oracle/py"
	"github.com/jmedseg/jmedseg/metric"
)

// oracleImage is one image of an oracle case, as metric_oracle.py reads it.
type oracleImage struct {
	H       int        `json:"h"`
	W       int        `json:"w"`
	Spacing [2]float64 `json:"spacing"`
	Pred    []int64    `json:"pred"`
	Truth   []int64    `json:"truth"`
}

type oracleCase struct {
	Name    string        `json:"name"`
	Classes int           `json:"classes"`
	Ignore  int64         `json:"ignore"`
	Images  []oracleImage `json:"images"`
}

// oval is a number of the oracle's answer: "nan" and "inf" come as strings.
type oval float64

func (v *oval) UnmarshalJSON(b []byte) error {
	switch s := strings.Trim(string(b), `"`); s {
	case "nan":
		*v = oval(math.NaN())
	case "inf":
		*v = oval(math.Inf(1))
	case "-inf":
		*v = oval(math.Inf(-1))
	default:
		var f float64
		if err := json.Unmarshal([]byte(s), &f); err != nil {
			return err
		}
		*v = oval(f)
	}
	return nil
}

// oracleAnswer holds MONAI's raw per-image values (NaN and infinity
// included) and the means of jmedseg's documented rule, reduced with
// MONAI's do_metric_reduction.
type oracleAnswer struct {
	PerImage []map[string][]oval `json:"per_image"`
	Means    map[string]struct {
		PerClass         []oval    `json:"per_class"`
		Images           []float64 `json:"images"`
		Foreground       oval      `json:"foreground"`
		ForegroundImages float64   `json:"foreground_images"`
	} `json:"means"`
}

// labels draws an h×w label map of classes classes: a few discs of random
// classes on background, with scattered pixels, so that masks have holes,
// islands and one-pixel parts.
func labels(rng *rand.Rand, h, w, classes int, discs int) []int64 {
	m := make([]int64, h*w)
	for d := 0; d < discs; d++ {
		k := int64(1 + rng.Intn(classes-1))
		cy, cx, r := rng.Float64()*float64(h), rng.Float64()*float64(w), 0.5+rng.Float64()*float64(min(h, w))/3
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				if math.Hypot(float64(y)-cy, float64(x)-cx) < r {
					m[y*w+x] = k
				}
			}
		}
	}
	for i := range m {
		if rng.Float64() < 0.02 {
			m[i] = int64(rng.Intn(classes))
		}
	}
	return m
}

func onePixel(h, w, y, x int, k int64) []int64 {
	m := make([]int64, h*w)
	m[y*w+x] = k
	return m
}

func full(n int, k int64) []int64 {
	m := make([]int64, n)
	for i := range m {
		m[i] = k
	}
	return m
}

func oracleCases() []oracleCase {
	rng := rand.New(rand.NewSource(13))
	z := make([]int64, 7*9)
	cases := []oracleCase{
		{Name: "both empty", Classes: 2, Ignore: -1, Images: []oracleImage{{H: 7, W: 9, Spacing: [2]float64{1, 1}, Pred: z, Truth: z}}},
		{Name: "empty truth, one-pixel prediction", Classes: 2, Ignore: -1, Images: []oracleImage{
			{H: 7, W: 9, Spacing: [2]float64{0.7, 1.3}, Pred: onePixel(7, 9, 3, 4, 1), Truth: z}}},
		{Name: "empty prediction, one-pixel truth", Classes: 2, Ignore: -1, Images: []oracleImage{
			{H: 7, W: 9, Spacing: [2]float64{2, 0.5}, Pred: z, Truth: onePixel(7, 9, 0, 8, 1)}}},
		{Name: "one pixel each, anisotropic", Classes: 2, Ignore: -1, Images: []oracleImage{
			{H: 7, W: 9, Spacing: [2]float64{0.5, 3}, Pred: onePixel(7, 9, 1, 1, 1), Truth: onePixel(7, 9, 6, 7, 1)},
			{H: 7, W: 9, Spacing: [2]float64{0.5, 3}, Pred: onePixel(7, 9, 2, 2, 1), Truth: onePixel(7, 9, 2, 2, 1)}}},
		{Name: "whole image against a corner", Classes: 2, Ignore: -1, Images: []oracleImage{
			{H: 7, W: 9, Spacing: [2]float64{1, 2.5}, Pred: full(63, 1), Truth: onePixel(7, 9, 6, 8, 1)}}},
		{Name: "ignored truth pixels", Classes: 3, Ignore: 255, Images: []oracleImage{
			{H: 7, W: 9, Spacing: [2]float64{1, 1}, Pred: labels(rng, 7, 9, 3, 2), Truth: func() []int64 {
				m := labels(rng, 7, 9, 3, 2)
				for i := 0; i < len(m); i += 5 {
					m[i] = 255
				}
				return m
			}()}}},
	}
	// A split of random images: several classes, anisotropic spacing that
	// changes from image to image, some classes absent or only predicted.
	split := oracleCase{Name: "random split", Classes: 4, Ignore: -1}
	for i := 0; i < 12; i++ {
		h, w := 8+rng.Intn(25), 8+rng.Intn(25)
		sp := [2]float64{0.3 + 2*rng.Float64(), 0.3 + 2*rng.Float64()}
		split.Images = append(split.Images, oracleImage{H: h, W: w, Spacing: sp,
			Pred: labels(rng, h, w, 4, rng.Intn(4)), Truth: labels(rng, h, w, 4, rng.Intn(4))})
	}
	return append(cases, split)
}

// assertScore compares a jmedseg score with the oracle's, NaN equal to NaN.
func assertScore(t *testing.T, want float64, got metric.Score, msg string) {
	t.Helper()
	if math.IsNaN(want) {
		assert.True(t, math.IsNaN(float64(got)), "%s: want NaN, got %v", msg, got)
		return
	}
	assert.InDelta(t, want, float64(got), 1e-9, msg)
}

// TestMetricsMatchMONAI scores each case with the Evaluator and with
// metric_oracle.py, MONAI's definitions re-implemented. Per image: Dice and
// IoU equal MONAI's with ignore_empty=True where the truth has the class,
// MONAI's ignore_empty=False value 0 where only the prediction has it, and
// are NaN where neither has it (MONAI's ignore_empty=False: 1); surface
// distances equal MONAI's where both masks have the class, are the image
// diagonal where MONAI's are not finite because one mask is empty, and are
// undefined where MONAI's are NaN. The per-image means and their image
// counts equal MONAI's do_metric_reduction of those values ("mean_batch"
// per class, "mean" for the foreground).
func TestMetricsMatchMONAI(t *testing.T) {
	cases := oracleCases()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "cases.json"), filepath.Join(dir, "answers.json")
	b, err := json.Marshal(cases)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(in, b, 0o644))
	py.Run(t, "metric_oracle.py", in, out)
	b, err = os.ReadFile(out)
	require.NoError(t, err)
	var answers []oracleAnswer
	require.NoError(t, json.Unmarshal(b, &answers))
	require.Len(t, answers, len(cases))

	for ci, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			ans := answers[ci]
			e := metric.NewEvaluator(c.Classes, nil, c.Ignore)
			for i, img := range c.Images {
				require.NoError(t, e.Add(fmt.Sprint(i), "", img.Pred, img.Truth, img.H, img.W, img.Spacing))
			}
			r := e.Report()
			for i, img := range c.Images {
				got, want := r.PerImage[i], ans.PerImage[i]
				for k := 0; k < c.Classes; k++ {
					msg := fmt.Sprintf("image %d class %d", i, k)
					for _, m := range []struct {
						name string
						got  metric.Score
					}{{"dice", got.Dice[k]}, {"iou", got.IoU[k]}} {
						ie, all := float64(want[m.name][k]), float64(want[m.name+"_all"][k])
						switch {
						case !math.IsNaN(ie): // the truth has the class
							assertScore(t, ie, m.got, msg+" "+m.name)
						case all == 0: // only the prediction has it
							assertScore(t, 0, m.got, msg+" "+m.name)
						default: // neither: MONAI's ignore_empty=False says 1
							assert.Equal(t, 1.0, all, msg)
							assertScore(t, math.NaN(), m.got, msg+" "+m.name)
						}
					}
					if k == 0 {
						continue
					}
					s := got.Surface[k-1]
					diag := math.Hypot(float64(img.H)*img.Spacing[0], float64(img.W)*img.Spacing[1])
					for _, m := range []struct {
						name string
						got  metric.Score
					}{{"assd", s.ASSD}, {"hd95", s.HD95}, {"hd", s.HD}, {"asd_pred", s.ASDPred}, {"asd_truth", s.ASDTruth}} {
						raw := float64(want[m.name][k-1])
						switch s.Empty {
						case "both":
							assert.True(t, math.IsNaN(raw), "%s %s: MONAI gives %v where both masks are empty", msg, m.name, raw)
						case "truth", "prediction":
							assert.False(t, !math.IsInf(raw, 1) && !math.IsNaN(raw), "%s %s: MONAI gives %v with one empty mask", msg, m.name, raw)
							assertScore(t, diag, m.got, msg+" "+m.name+" (one empty mask: the diagonal)")
						default:
							assertScore(t, raw, m.got, msg+" "+m.name)
						}
					}
				}
			}
			dice, iou := ans.Means["dice"], ans.Means["iou"]
			for k, cm := range r.ImageMean.PerClass {
				assert.Equal(t, int(dice.Images[k]), cm.Images, "class %d images", k)
				if cm.Images == 0 { // do_metric_reduction says 0 where nothing is defined; jmedseg says NaN
					assert.Equal(t, 0.0, float64(dice.PerClass[k]))
					assertScore(t, math.NaN(), cm.Dice, fmt.Sprintf("mean Dice class %d of nothing", k))
					continue
				}
				assertScore(t, float64(dice.PerClass[k]), cm.Dice, fmt.Sprintf("mean Dice class %d", k))
				assertScore(t, float64(iou.PerClass[k]), cm.IoU, fmt.Sprintf("mean IoU class %d", k))
			}
			fg := r.ImageMean.Foreground
			if fg.Images > 0 {
				assertScore(t, float64(dice.Foreground), fg.Dice, "foreground mean Dice")
				assertScore(t, float64(iou.Foreground), fg.IoU, "foreground mean IoU")
			} else {
				// do_metric_reduction says 0 where nothing is defined; jmedseg says NaN.
				assert.Equal(t, 0.0, float64(dice.Foreground))
				assertScore(t, math.NaN(), fg.Dice, "foreground mean Dice of nothing")
			}
			assert.Equal(t, int(dice.ForegroundImages), fg.Images)
			for _, sm := range r.Surface {
				for _, m := range []struct {
					name string
					got  metric.Score
				}{{"assd", sm.ASSD}, {"hd95", sm.HD95}, {"hd", sm.HD}, {"asd_pred", sm.ASDPred}, {"asd_truth", sm.ASDTruth}} {
					want := ans.Means[m.name]
					n := int(want.Images[sm.Class-1])
					assert.Equal(t, n, sm.Images, "class %d %s images", sm.Class, m.name)
					if n > 0 {
						assertScore(t, float64(want.PerClass[sm.Class-1]), m.got, fmt.Sprintf("class %d mean %s", sm.Class, m.name))
					} else {
						assert.Equal(t, 0.0, float64(want.PerClass[sm.Class-1]))
						assertScore(t, math.NaN(), m.got, fmt.Sprintf("class %d mean %s of nothing", sm.Class, m.name))
					}
				}
			}
		})
	}
}
