package metric

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
)

// Surface holds the surface-distance figures of one binary mask pair, in
// millimetres.
type Surface struct {
	ASSD Score `json:"assd_mm"` // average symmetric surface distance
	HD95 Score `json:"hd95_mm"` // 95th-percentile Hausdorff distance
	HD   Score `json:"hd_mm"`   // Hausdorff distance: the maximum
	// ASDPred is the directed average surface distance from the
	// prediction's surface to the truth's (MONAI's average surface distance
	// with symmetric=False); ASDTruth is the other way round.
	ASDPred  Score `json:"asd_pred_mm"`
	ASDTruth Score `json:"asd_truth_mm"`
	// Empty says which masks were empty: "", "both", "truth" or "prediction".
	Empty string `json:"empty,omitempty"`
}

// UnmarshalJSON reads what MarshalJSON writes; a figure missing from the
// JSON (a report written before it existed) reads as NaN, not 0.
func (s *Surface) UnmarshalJSON(b []byte) error {
	type plain Surface
	nan := Score(math.NaN())
	p := plain{ASSD: nan, HD95: nan, HD: nan, ASDPred: nan, ASDTruth: nan}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*s = Surface(p)
	return nil
}

// Defined reports whether the figures are defined: false when both masks
// are empty, where they are 0 and left out of every mean.
func (s Surface) Defined() bool { return s.Empty != "both" }

// SurfaceDistance compares binary masks pred and truth of h×w pixels with
// pixel spacing (row, column) in millimetres. Surfaces are the mask pixels
// with a 4-neighbour outside the mask (the image border counts as outside),
// as MONAI's get_mask_edges finds them (scipy's binary erosion, XOR). With
// d(a,B) the distance from surface pixel a of the prediction A to the
// nearest surface pixel of the truth B, and P95 the 95th percentile with
// linear interpolation between ranks (NumPy's and torch.quantile's default):
//
//	ASSD     = (Σ d(a,B) + Σ d(b,A)) / (|A| + |B|)
//	HD95     = max(P95 of d(a,B), P95 of d(b,A))
//	HD       = max(max d(a,B), max d(b,A))
//	ASDPred  = Σ d(a,B) / |A|     (prediction to truth)
//	ASDTruth = Σ d(b,A) / |B|     (truth to prediction)
//
// These are MONAI's compute_average_surface_distance (symmetric and not)
// and compute_hausdorff_distance (percentile 95 and None). Empty masks have
// a defined result where MONAI's is NaN or infinite: both empty scores 0
// (MONAI: NaN) and Empty is "both", which every mean leaves out; exactly
// one empty scores every figure as the image diagonal in millimetres, the
// worst distance possible (MONAI: infinity), and Empty says which.
func SurfaceDistance(pred, truth []bool, h, w int, spacing [2]float64) (Surface, error) {
	if len(pred) != h*w || len(truth) != h*w {
		return Surface{}, fmt.Errorf("metric: masks of %d and %d pixels for a %dx%d image", len(pred), len(truth), h, w)
	}
	if err := checkSpacing(spacing); err != nil {
		return Surface{}, err
	}
	a, b := border(pred, h, w), border(truth, h, w)
	switch {
	case len(a) == 0 && len(b) == 0:
		return Surface{Empty: "both"}, nil
	case len(a) == 0 || len(b) == 0:
		diag := Score(math.Hypot(float64(h)*spacing[0], float64(w)*spacing[1]))
		e := "prediction"
		if len(b) == 0 {
			e = "truth"
		}
		return Surface{ASSD: diag, HD95: diag, HD: diag, ASDPred: diag, ASDTruth: diag, Empty: e}, nil
	}
	da := distancesTo(a, b, h, w, spacing)
	db := distancesTo(b, a, h, w, spacing)
	sa, sb := sum(da), sum(db)
	return Surface{
		ASSD:     Score((sa + sb) / float64(len(da)+len(db))),
		HD95:     Score(math.Max(Percentile(da, 95), Percentile(db, 95))),
		HD:       Score(math.Max(maxOf(da), maxOf(db))),
		ASDPred:  Score(sa / float64(len(da))),
		ASDTruth: Score(sb / float64(len(db))),
	}, nil
}

// checkSpacing rejects a pixel spacing that is not positive and finite.
func checkSpacing(spacing [2]float64) error {
	if !(spacing[0] > 0 && spacing[1] > 0) || math.IsInf(spacing[0], 0) || math.IsInf(spacing[1], 0) {
		return fmt.Errorf("metric: pixel spacing %v mm must be positive and finite", spacing)
	}
	return nil
}

func sum(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s
}

func maxOf(xs []float64) float64 {
	m := math.Inf(-1)
	for _, x := range xs {
		m = math.Max(m, x)
	}
	return m
}

// border lists the flat indices of surface pixels.
func border(m []bool, h, w int) []int {
	var out []int
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := y*w + x
			if !m[i] {
				continue
			}
			if y == 0 || x == 0 || y == h-1 || x == w-1 || !m[i-1] || !m[i+1] || !m[i-w] || !m[i+w] {
				out = append(out, i)
			}
		}
	}
	return out
}

// distancesTo returns, for each pixel of from, the distance in millimetres
// to the nearest pixel of to, by an exact Euclidean distance transform.
func distancesTo(from, to []int, h, w int, spacing [2]float64) []float64 {
	d2 := edt(to, h, w, spacing)
	out := make([]float64, len(from))
	for i, p := range from {
		out[i] = math.Sqrt(d2[p])
	}
	return out
}

// edt is the squared Euclidean distance to the nearest site, with
// anisotropic spacing (Felzenszwalb and Huttenlocher's separable algorithm).
func edt(sites []int, h, w int, spacing [2]float64) []float64 {
	inf := math.Inf(1)
	g := make([]float64, h*w)
	for i := range g {
		g[i] = inf
	}
	for _, p := range sites {
		g[p] = 0
	}
	n := h
	if w > n {
		n = w
	}
	f, d := make([]float64, n), make([]float64, n)
	v, z := make([]int, n), make([]float64, n+1)
	for x := 0; x < w; x++ { // columns: along y
		for y := 0; y < h; y++ {
			f[y] = g[y*w+x]
		}
		dt1(f[:h], d[:h], v, z, spacing[0])
		for y := 0; y < h; y++ {
			g[y*w+x] = d[y]
		}
	}
	for y := 0; y < h; y++ { // rows: along x
		copy(f[:w], g[y*w:(y+1)*w])
		dt1(f[:w], d[:w], v, z, spacing[1])
		copy(g[y*w:(y+1)*w], d[:w])
	}
	return g
}

// dt1 is the 1-D squared distance transform of f with sample spacing s.
func dt1(f, d []float64, v []int, z []float64, s float64) {
	n := len(f)
	k := -1
	for q := 0; q < n; q++ {
		if math.IsInf(f[q], 1) {
			continue
		}
		pq := float64(q) * s
		for k >= 0 {
			pv := float64(v[k]) * s
			inter := ((f[q] + pq*pq) - (f[v[k]] + pv*pv)) / (2 * (pq - pv))
			if inter <= z[k] {
				k--
				continue
			}
			k++
			v[k], z[k], z[k+1] = q, inter, math.Inf(1)
			break
		}
		if k < 0 {
			k = 0
			v[0], z[0], z[1] = q, math.Inf(-1), math.Inf(1)
		}
	}
	if k < 0 {
		for q := range d {
			d[q] = math.Inf(1)
		}
		return
	}
	j := 0
	for q := 0; q < n; q++ {
		pq := float64(q) * s
		for z[j+1] < pq {
			j++
		}
		dv := pq - float64(v[j])*s
		d[q] = dv*dv + f[v[j]]
	}
}

// Percentile is the p-th percentile of xs with linear interpolation between
// closest ranks (NumPy's default). xs is not modified.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	r := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(r))
	hi := int(math.Ceil(r))
	return s[lo] + (s[hi]-s[lo])*(r-float64(lo))
}
