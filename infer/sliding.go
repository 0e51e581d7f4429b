package infer

import (
	"errors"
	"fmt"
	"image"
	"math"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/torch"
)

// Options are the ways of predicting beyond one forward pass at the
// model's input size, as nnU-Net and MONAI predict. The zero value is a
// plain prediction (the image resized to the model's input size).
type Options struct {
	// SlidingWindow predicts at the image's own resolution: windows of the
	// model's input size slide over it (MONAI's sliding_window_inference;
	// an image smaller than a window is padded with black, symmetrically),
	// and each pixel's class probabilities are the Gaussian-weighted mean
	// of those of the windows over it (sigma 1/8 of the window, weights
	// clamped below at 1e-3 of the centre's). NIfTI volumes are predicted
	// on their native axial slices (data.Axial), as the nnU-Net and
	// data-list layouts train on them. Without it an image is resized to
	// the model's input size and its prediction resized back.
	SlidingWindow bool
	// Overlap is the fraction of a window its neighbours overlap, in
	// [0, 1): the stride is int(size·(1−Overlap)), at least 1. nnU-Net
	// uses 0.5, MONAI defaults to 0.25; 0 tiles without overlap.
	Overlap float64
	// WindowBatch is the number of windows run through the model at once
	// (default 4), across the slices of a volume.
	WindowBatch int
	// TTA averages the softmax of the predictions of the input and of its
	// flips (left-right, up-down, both), each flipped back: test-time
	// augmentation by mirroring, as nnU-Net's for 2-D.
	TTA bool
	// LargestComponent keeps, for every foreground class, only its largest
	// connected component (4-connected in 2-D, 6-connected in a volume);
	// the rest becomes background (nnU-Net's postprocessing).
	LargestComponent bool
}

func (o Options) check() error {
	if o.Overlap < 0 || o.Overlap >= 1 || math.IsNaN(o.Overlap) {
		return fmt.Errorf("infer: overlap %v: want 0 <= overlap < 1", o.Overlap)
	}
	if o.WindowBatch < 0 {
		return fmt.Errorf("infer: window batch %d: want 1 or more", o.WindowBatch)
	}
	return nil
}

func (o Options) batch() int {
	if o.WindowBatch <= 0 {
		return 4
	}
	return o.WindowBatch
}

// Prediction is the result of PredictWith: the label map and the class
// probabilities, both at the input image's size.
type Prediction struct {
	Mask *data.Mask
	// Probs is Classes×H×W; each pixel's probabilities sum to 1.
	Probs *data.Tensor[float32]
}

// PredictWith predicts img with o: its label map (the argmax of the
// probabilities, then LargestComponent) and its class probabilities, at
// img's size. Without SlidingWindow the probabilities at the model's size
// are resized back by nearest neighbour, as Predict resizes labels.
func (p *Predictor) PredictWith(img image.Image, o Options) (*Prediction, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if img == nil {
		return nil, errors.New("infer: no image")
	}
	b := img.Bounds()
	if b.Empty() {
		return nil, fmt.Errorf("infer: empty image (%dx%d)", b.Dx(), b.Dy())
	}
	var probs *data.Tensor[float32]
	if o.SlidingWindow {
		x, err := p.native(img)
		if err != nil {
			return nil, err
		}
		ps, err := p.slide([]*data.Tensor[float32]{x}, o)
		if err != nil {
			return nil, err
		}
		probs = ps[0]
	} else {
		x, err := p.Preprocess(img)
		if err != nil {
			return nil, err
		}
		ps, err := p.forwardProbs(x.Data, 1, o.TTA)
		if err != nil {
			return nil, err
		}
		probs = resizeProbs(ps, len(ps)/(p.info.Size[0]*p.info.Size[1]), p.info.Size[1], p.info.Size[0], b.Dx(), b.Dy())
	}
	m := argmax(probs)
	if o.LargestComponent {
		LargestComponent(m)
	}
	return &Prediction{Mask: m, Probs: probs}, nil
}

// native is img as the model's input at img's own size: [0, 1], the
// model's channels, normalised as the model file records.
func (p *Predictor) native(img image.Image) (*data.Tensor[float32], error) {
	ch := int(p.info.Config.InChannels)
	t, err := data.ToCHW(data.Opaque(img), ch)
	if err != nil {
		return nil, fmt.Errorf("infer: %w", err)
	}
	if err := p.info.Norm.Apply(t.Data, ch); err != nil {
		return nil, fmt.Errorf("infer: %w", err)
	}
	return t, nil
}

// GaussianWindow is MONAI's compute_importance_map(mode="gaussian",
// sigma_scale=0.125) for an h×w window: exp(−d²/(2σ²)) per axis, σ = size/8,
// their product, clamped below at max(its minimum, 1e-3).
func GaussianWindow(h, w int) []float32 {
	axis := func(n int) []float64 {
		s := 0.125 * float64(n)
		out := make([]float64, n)
		for i := range out {
			d := float64(i) - float64(n-1)/2
			out[i] = math.Exp(d * d / (-2 * s * s))
		}
		return out
	}
	ay, ax := axis(h), axis(w)
	m := make([]float32, h*w)
	lo := float32(math.Inf(1))
	for y := range h {
		for x := range w {
			m[y*w+x] = float32(ay[y]) * float32(ax[x])
			lo = min(lo, m[y*w+x])
		}
	}
	lo = max(lo, 1e-3)
	for i := range m {
		m[i] = max(m[i], lo)
	}
	return m
}

// WindowStarts is MONAI's dense_patch_slices along one axis: the starts of
// windows of size win over an axis of size n (n >= win) with overlap,
// the last one flush with the end.
func WindowStarts(n, win int, overlap float64) []int {
	step := win
	if n != win {
		step = max(int(float64(win)*(1-overlap)), 1)
	}
	num := (n + step - 1) / step
	count := 1
	for d := range num {
		if d*step+win >= n {
			count = d + 1
			break
		}
	}
	out := make([]int, count)
	for i := range out {
		s := i * step
		s -= max(s+win-n, 0)
		out[i] = s
	}
	return out
}

// slide predicts each C×H×W input with windows of the model's size and
// Gaussian blending, running the windows of all inputs in batches of
// o.WindowBatch. It returns Classes×H×W probabilities per input.
func (p *Predictor) slide(xs []*data.Tensor[float32], o Options) ([]*data.Tensor[float32], error) {
	wh, ww := p.info.Size[0], p.info.Size[1]
	c := int(p.info.Config.InChannels)
	imp := GaussianWindow(wh, ww)
	type win struct{ input, y, x int }
	type padded struct {
		data         []float32
		h, w, py, px int // padded size; padding before
		acc, weight  []float32
	}
	ps := make([]*padded, len(xs))
	var wins []win
	for i, x := range xs {
		if len(x.Shape) != 3 || x.Shape[0] != c {
			return nil, fmt.Errorf("infer: input %d has shape %v, want %d×H×W", i, x.Shape, c)
		}
		h, w := x.Shape[1], x.Shape[2]
		pp := &padded{h: max(h, wh), w: max(w, ww), py: max(wh-h, 0) / 2, px: max(ww-w, 0) / 2}
		pp.data = make([]float32, c*pp.h*pp.w) // black padding: 0 in [0, 1]
		for ch := range c {
			for y := range h {
				copy(pp.data[(ch*pp.h+y+pp.py)*pp.w+pp.px:], x.Data[(ch*h+y)*w:(ch*h+y+1)*w])
			}
		}
		if len(p.info.Norm.Mean) > 0 && (pp.h != h || pp.w != w) {
			// x is normalised; the padding must be black normalised too.
			for ch := range c {
				v := float32((0 - p.info.Norm.Mean[ch]) / p.info.Norm.Std[ch])
				for y := range pp.h {
					for xx := range pp.w {
						if y < pp.py || y >= pp.py+h || xx < pp.px || xx >= pp.px+w {
							pp.data[(ch*pp.h+y)*pp.w+xx] = v
						}
					}
				}
			}
		}
		ps[i] = pp
		for _, y0 := range WindowStarts(pp.h, wh, o.Overlap) {
			for _, x0 := range WindowStarts(pp.w, ww, o.Overlap) {
				wins = append(wins, win{i, y0, x0})
			}
		}
	}
	k := 0
	plane := c * wh * ww
	for start := 0; start < len(wins); start += o.batch() {
		chunk := wins[start:min(start+o.batch(), len(wins))]
		buf := make([]float32, len(chunk)*plane)
		for n, wn := range chunk {
			pp := ps[wn.input]
			for ch := range c {
				for y := range wh {
					src := (ch*pp.h+wn.y+y)*pp.w + wn.x
					copy(buf[n*plane+(ch*wh+y)*ww:], pp.data[src:src+ww])
				}
			}
		}
		probs, err := p.forwardProbs(buf, len(chunk), o.TTA)
		if err != nil {
			return nil, err
		}
		k = len(probs) / (len(chunk) * wh * ww)
		for n, wn := range chunk {
			pp := ps[wn.input]
			if pp.acc == nil {
				pp.acc = make([]float32, k*pp.h*pp.w)
				pp.weight = make([]float32, pp.h*pp.w)
			}
			for y := range wh {
				for x := range ww {
					g := imp[y*ww+x]
					at := (wn.y+y)*pp.w + wn.x + x
					pp.weight[at] += g
					for cl := range k {
						pp.acc[cl*pp.h*pp.w+at] += g * probs[((n*k+cl)*wh+y)*ww+x]
					}
				}
			}
		}
	}
	out := make([]*data.Tensor[float32], len(xs))
	for i, x := range xs {
		pp := ps[i]
		h, w := x.Shape[1], x.Shape[2]
		t := &data.Tensor[float32]{Data: make([]float32, k*h*w), Shape: []int{k, h, w}}
		for cl := range k {
			for y := range h {
				for xx := range w {
					at := (y+pp.py)*pp.w + xx + pp.px
					t.Data[(cl*h+y)*w+xx] = pp.acc[cl*pp.h*pp.w+at] / pp.weight[at]
				}
			}
		}
		out[i] = t
	}
	return out, nil
}

// flips are the mirrorings of test-time augmentation: none, then the
// width axis, the height axis, and both (NCHW dims).
var flips = [][]int64{nil, {3}, {2}, {2, 3}}

// forwardProbs runs n inputs (n×C×H×W at the model's size, in buf) through
// the model and returns their class probabilities, n×Classes×H×W: the
// softmax of the logits, or with tta the mean of the softmax of every
// flip's prediction flipped back. It runs in its own inference mode and
// scope, like run.
func (p *Predictor) forwardProbs(buf []float32, n int, tta bool) ([]float32, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return nil, ErrClosed
	}
	c, h, w := int64(p.info.Config.InChannels), int64(p.info.Size[0]), int64(p.info.Size[1])
	var out []float32
	var err error
	torch.InferenceMode(func() {
		s := torch.NewScope()
		defer s.Close()
		x := torch.FromSlice(buf, []int64{int64(n), c, h, w}, s).ToDevice(p.dev)
		variants := flips[:1]
		if tta {
			variants = flips
		}
		var sum *torch.Tensor
		for _, dims := range variants {
			in := x
			if dims != nil {
				in = x.Flip(dims...)
			}
			logits := p.model.Forward(in)
			if err = logits.Err(); err != nil {
				return
			}
			pr := logits.Softmax(1)
			if dims != nil {
				pr = pr.Flip(dims...)
			}
			if sum == nil {
				sum = pr
			} else {
				sum = sum.Add(pr)
			}
		}
		if len(variants) > 1 {
			sum = sum.DivScalar(float64(len(variants)))
		}
		if err = sum.Err(); err != nil {
			return
		}
		out, err = sum.Float32s()
	})
	if err != nil {
		return nil, fmt.Errorf("infer: %s: %w", p.info.Model, err)
	}
	return out, nil
}

// resizeProbs resamples k×h×w probabilities to k×oh×ow by nearest
// neighbour (the pixel mapping of resizeLabels, so argmax agrees).
func resizeProbs(src []float32, k, w, h, ow, oh int) *data.Tensor[float32] {
	t := &data.Tensor[float32]{Data: make([]float32, k*ow*oh), Shape: []int{k, oh, ow}}
	for y := range oh {
		sy := min(h-1, int((float64(y)+0.5)*float64(h)/float64(oh)))
		for x := range ow {
			sx := min(w-1, int((float64(x)+0.5)*float64(w)/float64(ow)))
			for c := range k {
				t.Data[(c*oh+y)*ow+x] = src[(c*h+sy)*w+sx]
			}
		}
	}
	return t
}

// argmax is the label map of k×h×w probabilities (the lowest class on
// ties).
func argmax(t *data.Tensor[float32]) *data.Mask {
	k, h, w := t.Shape[0], t.Shape[1], t.Shape[2]
	m := data.NewMask(w, h)
	for i := range h * w {
		best := 0
		for c := 1; c < k; c++ {
			if t.Data[c*h*w+i] > t.Data[best*h*w+i] {
				best = c
			}
		}
		m.Pix[i] = int32(best)
	}
	return m
}
