package loss

import (
	"fmt"
	"math"

	"github.com/jmedseg/jmedseg/torch"
)

// DualTerm is the shape-aware Dual-Term loss announced by the reference
// (Huang, Zhou and Tao, "Dual-term loss function for shape-aware medical
// image segmentation", ISBI 2021): a region term plus λ times a shape term.
// The paper's text was not available to us; what follows is our reading,
// whose shape term is that of the one public implementation that cites the
// paper (MONAI pull request 4205, "boundary-aware ShapeLoss"), with a
// smoothing s added to its denominator. Exactly:
//
// For each image n and foreground class c (classes 1..C−1; background has
// no shape), with p the softmax probability of c, t its one-hot target and
// d(x) the Euclidean distance (in pixels) from a pixel x of class c to the
// nearest pixel of another class (pixels outside the image do not count),
//
//	dn(x) = d(x) / (max d + 1e-8)              (0 at the edge of the image's
//	                                             class c, 1 at its deepest pixel)
//	D(x)  = t(x) · σ((1 − dn(x)) / k)          (σ the logistic sigmoid: a
//	                                             smoothed Heaviside step)
//	region = 1 − (2Σpt + s) / (Σp + Σt + s)     (soft Dice of the image and class)
//	shape  = Σ|D − p| / (Σp + s)
//
// and the loss is mean(region) + λ·mean(shape) over the image-class pairs.
// D is 0 outside the class, about 1 (σ(1/k)) at its boundary and ½ at its
// deepest pixel, so the shape term ties the probabilities to the distance
// to the boundary; its minimum is p = D, not the one-hot target, and it is
// not 0 at a perfect prediction. When class c fills the whole image, dn is
// taken as 0 (D = σ(1/k) everywhere); when c is absent from the image, D
// is 0 and the shape term is Σp/(Σp + s). The distance maps come from the
// targets alone, on the CPU, and carry no gradient. Ignored pixels count
// for nothing and are "another class" for the distances.
type DualTerm struct {
	Lambda      float64 // weight of the shape term, 0 or more
	K           float64 // smoothness of the Heaviside step, above 0
	Smooth      float64 // s, 0 or more
	IgnoreIndex int64
}

// Forward implements Loss.
func (l DualTerm) Forward(logits, target *torch.Tensor) *torch.Tensor {
	t, valid, err := targets(logits, target, false, l.IgnoreIndex, l)
	if err != nil {
		return torch.FromError(err)
	}
	sh := logits.Shape()
	n, c, h, w := int(sh[0]), int(sh[1]), int(sh[2]), int(sh[3])
	if c < 2 {
		return torch.FromError(fmt.Errorf("loss %s: no foreground class in %d-class logits", l, c))
	}
	labels, err := target.Int64s()
	if err != nil {
		return torch.FromError(fmt.Errorf("loss %s: %w", l, err))
	}
	maps := shapeMaps(labels, n, c, h, w, l.K, l.IgnoreIndex)
	d := logits.Scope().Track(torch.FromSlice(maps, []int64{int64(n), int64(c - 1), int64(h), int64(w)}, logits.DType(), logits.Device()))
	if logits.Scope() == nil {
		defer d.Free()
	}
	p, t, err := dropBackground(probs(logits, false, valid), t, l)
	if err != nil {
		return torch.FromError(err)
	}
	dims := []int64{2, 3}
	inter, ps, ts := p.Mul(t).SumDims(dims, false), p.SumDims(dims, false), t.SumDims(dims, false)
	region := inter.MulScalar(2).AddScalar(l.Smooth).Div(ps.Add(ts).AddScalar(l.Smooth)).Mean().RSubScalar(1)
	shape := d.Sub(p).Abs().SumDims(dims, false).Div(ps.AddScalar(l.Smooth)).Mean()
	return region.Add(shape.MulScalar(l.Lambda))
}

func (l DualTerm) String() string {
	opts := []string{fmt.Sprintf("lambda=%g", l.Lambda), fmt.Sprintf("k=%g", l.K)}
	if l.Smooth != 1 {
		opts = append(opts, fmt.Sprintf("smooth=%g", l.Smooth))
	}
	if l.IgnoreIndex != NoIgnore {
		opts = append(opts, fmt.Sprintf("ignore=%d", l.IgnoreIndex))
	}
	return withOpts("dualterm", opts)
}

// shapeMaps returns DualTerm's maps D of the foreground classes 1..c−1 of
// the class maps labels [n,h,w], as [n,c−1,h,w] in row-major order.
func shapeMaps(labels []int64, n, c, h, w int, k float64, ignore int64) []float64 {
	hw := h * w
	out := make([]float64, n*(c-1)*hw)
	sq := newEDT(h, w)
	for i := 0; i < n; i++ {
		lab := labels[i*hw : (i+1)*hw]
		for cl := 1; cl < c; cl++ {
			in := func(j int) bool { return lab[j] == int64(cl) && lab[j] != ignore }
			dst := out[(i*(c-1)+cl-1)*hw : (i*(c-1)+cl)*hw]
			d2 := sq.transform(func(j int) bool { return !in(j) })
			maxD := 0.0
			for j := range dst {
				if in(j) && !math.IsInf(d2[j], 1) {
					maxD = math.Max(maxD, math.Sqrt(d2[j]))
				}
			}
			for j := range dst {
				if !in(j) {
					continue // D = 0 outside the class
				}
				dn := 0.0 // the class fills the image: no distance to normalise
				if !math.IsInf(d2[j], 1) {
					dn = math.Sqrt(d2[j]) / (maxD + 1e-8)
				}
				dst[j] = 1 / (1 + math.Exp(-(1-dn)/k))
			}
		}
	}
	return out
}

// edt computes exact squared Euclidean distance transforms on an h×w grid
// with unit spacing (Felzenszwalb and Huttenlocher's separable algorithm),
// reusing its buffers.
type edt struct {
	h, w    int
	g, f, d []float64
	v       []int
	z       []float64
}

func newEDT(h, w int) *edt {
	n := max(h, w)
	return &edt{h: h, w: w, g: make([]float64, h*w), f: make([]float64, n), d: make([]float64, n), v: make([]int, n), z: make([]float64, n+1)}
}

// transform returns the squared distance of every pixel to the nearest
// site (+Inf everywhere when there is none). The result is reused by the
// next call.
func (e *edt) transform(site func(j int) bool) []float64 {
	h, w, g := e.h, e.w, e.g
	for j := range g {
		if site(j) {
			g[j] = 0
		} else {
			g[j] = math.Inf(1)
		}
	}
	for x := 0; x < w; x++ { // columns
		for y := 0; y < h; y++ {
			e.f[y] = g[y*w+x]
		}
		e.pass(h)
		for y := 0; y < h; y++ {
			g[y*w+x] = e.d[y]
		}
	}
	for y := 0; y < h; y++ { // rows
		copy(e.f[:w], g[y*w:(y+1)*w])
		e.pass(w)
		copy(g[y*w:(y+1)*w], e.d[:w])
	}
	return g
}

// pass is the 1-D squared distance transform of f[:n] into d[:n]: the lower
// envelope of the parabolas (q−p)² + f(p).
func (e *edt) pass(n int) {
	f, d, v, z := e.f[:n], e.d[:n], e.v, e.z
	k := -1
	for q := 0; q < n; q++ {
		if math.IsInf(f[q], 1) {
			continue
		}
		fq := f[q] + float64(q*q)
		for k >= 0 {
			s := (fq - (f[v[k]] + float64(v[k]*v[k]))) / float64(2*(q-v[k]))
			if s <= z[k] {
				k--
				continue
			}
			k++
			v[k], z[k], z[k+1] = q, s, math.Inf(1)
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
		for z[j+1] < float64(q) {
			j++
		}
		dq := float64(q - v[j])
		d[q] = dq*dq + f[v[j]]
	}
}
