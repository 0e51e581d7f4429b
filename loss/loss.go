// Package loss holds segmentation losses over logits [N,C,H,W] and int64
// class maps [N,H,W]: cross-entropy, soft IoU, soft Dice, focal, and weighted
// sums of them parsed from a spec such as "ce:0.8+iou:0.2".
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
)

// Region is a soft IoU or Dice loss on softmax probabilities and one-hot
// targets. By default (the reference's formulation) it sums intersections
// and sizes over every class, pixel and image of the batch, background
// included, with smoothing 1:
//
//	IoU:  1 − (Σpt + s) / (Σp + Σt − Σpt + s)
//	Dice: 1 − (2Σpt + s) / (Σp + Σt + s)
//
// PerClass computes the ratio per class over the batch and averages the
// classes; NoBackground leaves class 0 out.
type Region struct {
	Kind         Overlap
	Smooth       float64
	PerClass     bool
	NoBackground bool
	IgnoreIndex  int64 // pixels with this target count for nothing; NoIgnore for none
}

// Forward implements Loss.
func (l Region) Forward(logits, target *torch.Tensor) *torch.Tensor {
	if err := torch.FirstErr(logits, target); err != nil {
		return torch.FromError(err)
	}
	c := logits.Size(1)
	p := logits.Softmax(1)
	tgt := target
	var valid *torch.Tensor
	if l.IgnoreIndex != NoIgnore {
		valid = target.NeScalar(float64(l.IgnoreIndex)).Unsqueeze(1).ToDType(logits.DType())
		tgt = target.MaskedFill(target.EqScalar(float64(l.IgnoreIndex)), 0)
	}
	t := torch.OneHot(tgt, c).Permute(0, 3, 1, 2).ToDType(logits.DType())
	if valid != nil {
		p = p.Mul(valid)
		t = t.Mul(valid)
	}
	if l.NoBackground {
		if c < 2 {
			return torch.FromError(fmt.Errorf("loss %s: no foreground class in %d-class logits", l, c))
		}
		p = p.Narrow(1, 1, c-1)
		t = t.Narrow(1, 1, c-1)
	}
	var dims []int64 // nil: every element
	if l.PerClass {
		dims = []int64{0, 2, 3}
	}
	sum := func(x *torch.Tensor) *torch.Tensor {
		if dims == nil {
			return x.Sum()
		}
		return x.SumDims(dims, false)
	}
	inter, ps, ts := sum(p.Mul(t)), sum(p), sum(t)
	var ratio *torch.Tensor
	if l.Kind == IoU {
		ratio = inter.AddScalar(l.Smooth).Div(ps.Add(ts).Sub(inter).AddScalar(l.Smooth))
	} else {
		ratio = inter.MulScalar(2).AddScalar(l.Smooth).Div(ps.Add(ts).AddScalar(l.Smooth))
	}
	return ratio.Mean().RSubScalar(1)
}

func (l Region) String() string {
	name := "iou"
	if l.Kind == Dice {
		name = "dice"
	}
	var opts []string
	if l.Smooth != 1 {
		opts = append(opts, fmt.Sprintf("smooth=%g", l.Smooth))
	}
	if l.PerClass {
		opts = append(opts, "perclass")
	}
	if l.NoBackground {
		opts = append(opts, "nobg")
	}
	if l.IgnoreIndex != NoIgnore {
		opts = append(opts, fmt.Sprintf("ignore=%d", l.IgnoreIndex))
	}
	return withOpts(name, opts)
}

// Focal is the focal loss mean(α (1−pt)^γ (−log pt)) over pixels that are not
// ignored, where pt is the softmax probability of the true class.
type Focal struct {
	Gamma, Alpha float64
	IgnoreIndex  int64
}

// Forward implements Loss.
func (l Focal) Forward(logits, target *torch.Tensor) *torch.Tensor {
	ce := torch.CrossEntropy(logits, target, nil, torch.ReduceNone, l.IgnoreIndex, 0)
	pt := ce.Neg().Exp()
	per := pt.RSubScalar(1).PowScalar(l.Gamma).Mul(ce).MulScalar(l.Alpha)
	if l.IgnoreIndex == NoIgnore {
		return per.Mean()
	}
	n := target.NeScalar(float64(l.IgnoreIndex)).Sum().ToDType(logits.DType()).ClampMin(1)
	return per.Sum().Div(n)
}

func (l Focal) String() string {
	opts := []string{fmt.Sprintf("gamma=%g", l.Gamma), fmt.Sprintf("alpha=%g", l.Alpha)}
	if l.IgnoreIndex != NoIgnore {
		opts = append(opts, fmt.Sprintf("ignore=%d", l.IgnoreIndex))
	}
	return withOpts("focal", opts)
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
