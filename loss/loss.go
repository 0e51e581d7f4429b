package loss

import (
	"fmt"
	"strings"

	"github.com/jmedseg/jmedseg/torch"
)

// Loss maps logits and targets to a scalar loss tensor.
type Loss interface {
	Forward(logits, target *torch.Tensor) *torch.Tensor
	// String is the loss in spec syntax, so Parse(l.String()) rebuilds it.
	String() string
}

// NoIgnore means no target value is ignored.
const NoIgnore = torch.NoIgnoreIndex

// CrossEntropy is softmax cross-entropy averaged over the pixels that are
// not ignored (weighted by class weight, as PyTorch does).
type CrossEntropy struct {
	Weight         []float64 // per-class weights, nil for none
	IgnoreIndex    int64     // target value to skip; NoIgnore for none
	LabelSmoothing float64
}

// Forward implements Loss.
func (l CrossEntropy) Forward(logits, target *torch.Tensor) *torch.Tensor {
	var w *torch.Tensor
	if l.Weight != nil {
		w = logits.Scope().Track(torch.FromSlice(l.Weight, nil, logits.DType(), logits.Device()))
		if logits.Scope() == nil {
			defer w.Free()
		}
	}
	return torch.CrossEntropy(logits, target, w, torch.ReduceMean, l.IgnoreIndex, l.LabelSmoothing)
}

func (l CrossEntropy) String() string {
	var opts []string
	if l.Weight != nil {
		opts = append(opts, "weight="+joinFloats(l.Weight))
	}
	if l.IgnoreIndex != NoIgnore {
		opts = append(opts, fmt.Sprintf("ignore=%d", l.IgnoreIndex))
	}
	if l.LabelSmoothing != 0 {
		opts = append(opts, fmt.Sprintf("smoothing=%g", l.LabelSmoothing))
	}
	return withOpts("ce", opts)
}

// Overlap selects which soft overlap Region computes.
type Overlap int

// Soft overlaps.
const (
	IoU Overlap = iota
	Dice
	Tversky
)

// Region is a soft overlap loss (IoU, Dice or Tversky) on probabilities and
// {0,1} targets. With p the probabilities, t the targets and s the
// smoothing, the sums Σpt, Σp and Σt run over the pixels and then over what
// the reduction pools:
//
//	IoU:     1 − (Σpt + s) / (Σp + Σt − Σpt + s)
//	Dice:    1 − (2Σpt + s) / (Σp + Σt + s)
//	Tversky: 1 − (Σpt + s) / (Σpt + α·Σp(1−t) + β·Σ(1−p)t + s)
//
// Tversky's α weighs false positives and β false negatives (Salehi et al.
// 2017; MONAI's TverskyLoss): α = β = 1 is IoU, α = β = ½ Dice up to the
// smoothing.
//
// Reduction. By default (the reference's formulation) one ratio pools every
// class, pixel and image of the batch, background included, with smoothing
// 1. PerClass computes one ratio per class and PerSample one per image (the
// mean over the images, MONAI's default batch=False); with both, one per
// image and class, and the loss is 1 − the mean of the ratios. NoBackground
// leaves channel 0 out.
//
// Probabilities. By default p is the softmax over the channels and t the
// one-hot class map [N,H,W]. Sigmoid (the multi-label form) takes p as the
// sigmoid of each channel; t is then either a {0,1} tensor [N,L,H,W] of the
// logits' shape (one channel per label) or a class map: with one channel the
// binary mask (labels 0 and 1), with more its one-hot encoding.
type Region struct {
	Kind         Overlap
	Alpha, Beta  float64 // Tversky's weights of false positives and false negatives
	Smooth       float64
	PerClass     bool
	PerSample    bool
	NoBackground bool
	Sigmoid      bool
	IgnoreIndex  int64 // pixels with this target count for nothing; NoIgnore for none
}

// Forward implements Loss.
func (l Region) Forward(logits, target *torch.Tensor) *torch.Tensor {
	t, valid, err := targets(logits, target, l.Sigmoid, l.IgnoreIndex, l)
	if err != nil {
		return torch.FromError(err)
	}
	p := probs(logits, l.Sigmoid, valid)
	if l.NoBackground {
		if p, t, err = dropBackground(p, t, l); err != nil {
			return torch.FromError(err)
		}
	}
	dims := []int64{2, 3}
	if !l.PerSample {
		dims = append(dims, 0)
	}
	if !l.PerClass {
		dims = append(dims, 1)
	}
	inter, ps, ts := p.Mul(t).SumDims(dims, false), p.SumDims(dims, false), t.SumDims(dims, false)
	var ratio *torch.Tensor
	switch l.Kind {
	case IoU:
		ratio = inter.AddScalar(l.Smooth).Div(ps.Add(ts).Sub(inter).AddScalar(l.Smooth))
	case Tversky: // Σp(1−t) = Σp − Σpt and Σ(1−p)t = Σt − Σpt
		den := inter.Add(ps.Sub(inter).MulScalar(l.Alpha)).Add(ts.Sub(inter).MulScalar(l.Beta))
		ratio = inter.AddScalar(l.Smooth).Div(den.AddScalar(l.Smooth))
	default:
		ratio = inter.MulScalar(2).AddScalar(l.Smooth).Div(ps.Add(ts).AddScalar(l.Smooth))
	}
	return ratio.Mean().RSubScalar(1)
}

func (l Region) String() string {
	name := "iou"
	var opts []string
	switch l.Kind {
	case Dice:
		name = "dice"
	case Tversky:
		name = "tversky"
		opts = append(opts, fmt.Sprintf("alpha=%g", l.Alpha), fmt.Sprintf("beta=%g", l.Beta))
	}
	if l.Smooth != 1 {
		opts = append(opts, fmt.Sprintf("smooth=%g", l.Smooth))
	}
	if l.PerSample {
		opts = append(opts, "persample")
	}
	if l.PerClass {
		opts = append(opts, "perclass")
	}
	if l.NoBackground {
		opts = append(opts, "nobg")
	}
	if l.Sigmoid {
		opts = append(opts, "sigmoid")
	}
	if l.IgnoreIndex != NoIgnore {
		opts = append(opts, fmt.Sprintf("ignore=%d", l.IgnoreIndex))
	}
	return withOpts(name, opts)
}

// Focal is the focal loss of Lin et al. (RetinaNet, 2017), as MONAI's
// FocalLoss defines it, averaged over the pixels that are not ignored:
//
//	softmax: mean over pixels of  scale · α_y · (1−p_y)^γ · (−log p_y)
//	sigmoid: mean over pixels and channels of
//	         scale · α_t · (1−p_t)^γ · BCE(x, t),  p_t = p if t = 1 else 1−p
//
// where p_y is the softmax probability of the true class y. Alpha balances
// the classes: one value α weighs the foreground classes by α and the
// background (class 0) by 1−α, as MONAI's softmax form does (in the binary
// case, α for the foreground and 1−α for the background); one value per
// class weighs each class by its own. In the sigmoid form, α_t = α for the
// positives of a channel and 1−α for its negatives (one α, or one per
// channel). A nil Alpha (alpha=none) weighs every class by 1. Scale is a plain factor on
// the whole loss (0 stands for 1); it is what focal's alpha meant before
// the balancing α (then one factor, default 0.5, which is the balancing
// α = 0.5). The mean is over pixels as in PyTorch's cross-entropy, where
// MONAI's also divides by the number of channels.
type Focal struct {
	Gamma       float64
	Alpha       []float64 // balancing: nil, one α (foreground α, background 1−α) or one per class
	Scale       float64   // a plain factor; 0 means 1
	Sigmoid     bool      // the multi-label form (see Region for the targets)
	IgnoreIndex int64
}

// Forward implements Loss.
func (l Focal) Forward(logits, target *torch.Tensor) *torch.Tensor {
	if err := torch.FirstErr(logits, target); err != nil {
		return torch.FromError(err)
	}
	if n := int64(len(l.Alpha)); n > 1 && n != logits.Size(1) {
		return torch.FromError(fmt.Errorf("loss %s: %d class alphas for %d-channel logits (give one per class, background first)", l, n, logits.Size(1)))
	}
	var per, valid *torch.Tensor
	if l.Sigmoid {
		t, v, err := targets(logits, target, true, l.IgnoreIndex, l)
		if err != nil {
			return torch.FromError(err)
		}
		valid = v
		bce := torch.BCEWithLogits(logits, t, nil, nil, torch.ReduceNone)
		// 1−p_t = σ(−x·(2t−1)), without the cancellation of 1−exp(−bce)
		q := logits.Mul(t.MulScalar(2).SubScalar(1)).Neg().Sigmoid()
		per = q.PowScalar(l.Gamma).Mul(bce)
		if l.Alpha != nil {
			a, done := l.alphas(logits)
			defer done()
			// α_t = α·t + (1−α)·(1−t) = (1−α) + (2α−1)·t
			per = per.Mul(a.RSubScalar(1).Add(a.MulScalar(2).SubScalar(1).Mul(t)))
		}
		if valid != nil {
			per = per.Mul(valid)
		}
	} else {
		ce := torch.CrossEntropy(logits, target, nil, torch.ReduceNone, l.IgnoreIndex, 0)
		pt := ce.Neg().Exp()
		per = pt.RSubScalar(1).PowScalar(l.Gamma).Mul(ce)
		if l.Alpha != nil {
			a, done := l.alphas(logits)
			defer done()
			y := target
			if l.IgnoreIndex != NoIgnore { // ignored pixels have ce = 0; any class will do
				y = target.MaskedFill(target.EqScalar(float64(l.IgnoreIndex)), 0)
			}
			per = per.Mul(a.IndexSelect(0, y.Reshape(-1)).Reshape(y.Shape()...))
		}
		if l.IgnoreIndex != NoIgnore {
			valid = target.NeScalar(float64(l.IgnoreIndex)).ToDType(logits.DType())
		}
	}
	if l.Scale != 0 && l.Scale != 1 {
		per = per.MulScalar(l.Scale)
	}
	if valid == nil {
		return per.Mean()
	}
	// per's elements per valid pixel: 1 (softmax) or the channels (sigmoid)
	n := valid.Sum().MulScalar(float64(per.Numel() / valid.Numel())).ClampMin(1)
	return per.Sum().Div(n)
}

// alphas returns the per-class balancing weights, [C] (softmax) or
// [1,C,1,1] (sigmoid), and a function that frees them when logits have no
// scope to own them.
func (l Focal) alphas(logits *torch.Tensor) (*torch.Tensor, func()) {
	c := logits.Size(1)
	w := l.Alpha
	if len(w) == 1 {
		if l.Sigmoid { // one α for every channel
			w = fill(int(c), w[0])
		} else { // background 1−α, every foreground class α
			w = fill(int(c), w[0])
			w[0] = 1 - w[0]
		}
	}
	var s []int64 // nil: [C]
	if l.Sigmoid {
		s = []int64{1, c, 1, 1}
	}
	t := logits.Scope().Track(torch.FromSlice(w, s, logits.DType(), logits.Device()))
	if logits.Scope() == nil {
		return t, t.Free
	}
	return t, func() {}
}

func (l Focal) String() string {
	opts := []string{fmt.Sprintf("gamma=%g", l.Gamma)}
	if l.Alpha != nil {
		opts = append(opts, "alpha="+joinFloats(l.Alpha))
	} else {
		opts = append(opts, "alpha=none")
	}
	if l.Scale != 0 && l.Scale != 1 {
		opts = append(opts, fmt.Sprintf("scale=%g", l.Scale))
	}
	if l.Sigmoid {
		opts = append(opts, "sigmoid")
	}
	if l.IgnoreIndex != NoIgnore {
		opts = append(opts, fmt.Sprintf("ignore=%d", l.IgnoreIndex))
	}
	return withOpts("focal", opts)
}

func fill(n int, v float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// Term is one weighted part of a Sum.
type Term struct {
	Weight float64
	Loss   Loss
}

// Sum is a weighted sum of losses.
type Sum []Term

// Forward implements Loss.
func (s Sum) Forward(logits, target *torch.Tensor) *torch.Tensor {
	if len(s) == 0 {
		return torch.FromError(fmt.Errorf("loss: empty sum"))
	}
	var total *torch.Tensor
	for _, t := range s {
		v := t.Loss.Forward(logits, target)
		if t.Weight != 1 {
			v = v.MulScalar(t.Weight)
		}
		if total == nil {
			total = v
		} else {
			total = total.Add(v)
		}
	}
	return total
}

func (s Sum) String() string {
	parts := make([]string, len(s))
	for i, t := range s {
		parts[i] = t.Loss.String()
		if t.Weight != 1 {
			parts[i] += fmt.Sprintf(":%g", t.Weight)
		}
	}
	return strings.Join(parts, "+")
}

func withOpts(name string, opts []string) string {
	if len(opts) == 0 {
		return name
	}
	return name + "(" + strings.Join(opts, ",") + ")"
}

func joinFloats(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%g", x)
	}
	return strings.Join(s, "/")
}
