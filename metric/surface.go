package metric

import (
	"fmt"
	"math"
	"sort"
)

// Surface holds the surface-distance figures of one binary mask pair.
type Surface struct {
	ASSD Score `json:"assd_mm"` // average symmetric surface distance
	HD95 Score `json:"hd95_mm"` // 95th-percentile Hausdorff distance
	// Empty says which masks were empty: "", "both", "truth" or "prediction".
	Empty string `json:"empty,omitempty"`
}

// SurfaceDistance compares binary masks pred and truth of h×w pixels with
// pixel spacing (row, column) in millimetres. Surfaces are the mask pixels
// with a 4-neighbour outside the mask (the image border counts as outside).
//
//	ASSD = (Σ d(a,B) + Σ d(b,A)) / (|A| + |B|) over surface pixels a∈A, b∈B
//	HD95 = max(95th percentile of d(a,B), 95th percentile of d(b,A))
//
// with linear interpolation between ranks (NumPy's default). Empty masks
// have a defined result: both empty scores 0; exactly one empty scores the
// image diagonal in millimetres, the worst distance possible, and Empty
// says which.
func SurfaceDistance(pred, truth []bool, h, w int, spacing [2]float64) (Surface, error) {
	if len(pred) != h*w || len(truth) != h*w {
		return Surface{}, fmt.Errorf("metric: masks of %d and %d pixels for a %dx%d image", len(pred), len(truth), h, w)
	}
	if spacing[0] <= 0 || spacing[1] <= 0 {
		return Surface{}, fmt.Errorf("metric: pixel spacing %v must be positive", spacing)
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
		return Surface{ASSD: diag, HD95: diag, Empty: e}, nil
	}
	da := distancesTo(a, b, h, w, spacing)
	db := distancesTo(b, a, h, w, spacing)
	sum := 0.0
	for _, d := range da {
		sum += d
	}
	for _, d := range db {
		sum += d
	}
	assd := sum / float64(len(da)+len(db))
	hd := math.Max(Percentile(da, 95), Percentile(db, 95))
	return Surface{ASSD: Score(assd), HD95: Score(hd)}, nil
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
