package loss

import (
	"fmt"
	"slices"

	"github.com/jmedseg/jmedseg/torch"
)

// BCE is binary cross-entropy on logits, one sigmoid per channel (the
// multi-label form), averaged over the channels and the pixels that are not
// ignored. The targets are those of Region's Sigmoid form: a {0,1} label
// map [N,L,H,W] of the logits' shape, or a class map [N,H,W] (with one
// channel the binary mask, with more its one-hot encoding).
type BCE struct {
	IgnoreIndex int64 // class-map targets only; NoIgnore for none
}

// Forward implements Loss.
func (l BCE) Forward(logits, target *torch.Tensor) *torch.Tensor {
	t, valid, err := targets(logits, target, true, l.IgnoreIndex, l)
	if err != nil {
		return torch.FromError(err)
	}
	if valid == nil {
		return torch.BCEWithLogits(logits, t, nil, nil, torch.ReduceMean)
	}
	per := torch.BCEWithLogits(logits, t, nil, nil, torch.ReduceNone).Mul(valid)
	return per.Sum().Div(valid.Sum().MulScalar(float64(logits.Size(1))).ClampMin(1))
}

func (l BCE) String() string {
	if l.IgnoreIndex != NoIgnore {
		return fmt.Sprintf("bce(ignore=%d)", l.IgnoreIndex)
	}
	return "bce"
}

// targets returns the {0,1} targets [N,C,H,W] of logits [N,C,H,W] and the
// mask [N,1,H,W] of the pixels that count (nil when none is ignored), with
// the targets of ignored pixels zeroed. A class map [N,H,W] becomes its
// one-hot encoding; in the sigmoid (multi-label) form a one-channel logit
// takes it as the binary mask, and a label map of the logits' shape is
// taken as it is.
func targets(logits, target *torch.Tensor, sigmoid bool, ignore int64, l Loss) (t, valid *torch.Tensor, err error) {
	if err := torch.FirstErr(logits, target); err != nil {
		return nil, nil, err
	}
	ls, ts := logits.Shape(), target.Shape()
	if len(ls) != 4 {
		return nil, nil, fmt.Errorf("loss %s: logits of shape %v: want [N,C,H,W]", l, ls)
	}
	switch {
	case len(ts) == 4 && sigmoid:
		if !slices.Equal(ls, ts) {
			return nil, nil, fmt.Errorf("loss %s: label map of shape %v for logits %v: want the same shape", l, ts, ls)
		}
		if ignore != NoIgnore {
			return nil, nil, fmt.Errorf("loss %s: ignore=%d needs a class map [N,H,W], not a label map %v", l, ignore, ts)
		}
		return target.ToDType(logits.DType()), nil, nil
	case len(ts) == 4:
		return nil, nil, fmt.Errorf("loss %s: a label map %v is for the sigmoid form (add the sigmoid option); softmax wants a class map [N,H,W]", l, ts)
	case len(ts) != 3 || ts[0] != ls[0] || ts[1] != ls[2] || ts[2] != ls[3]:
		return nil, nil, fmt.Errorf("loss %s: target of shape %v for logits %v: want a class map [%d,%d,%d]", l, ts, ls, ls[0], ls[2], ls[3])
	}
	tgt := target
	if ignore != NoIgnore {
		valid = target.NeScalar(float64(ignore)).Unsqueeze(1).ToDType(logits.DType())
		tgt = target.MaskedFill(target.EqScalar(float64(ignore)), 0)
	}
	c := ls[1]
	if sigmoid && c == 1 { // the binary mask: one_hot refuses labels above 1
		t = torch.OneHot(tgt, 2).Narrow(3, 1, 1)
	} else {
		t = torch.OneHot(tgt, c)
	}
	t = t.Permute(0, 3, 1, 2).ToDType(logits.DType())
	if valid != nil {
		t = t.Mul(valid)
	}
	return t, valid, nil
}

// probs returns the softmax over channels or the sigmoid of each, zeroed
// where valid (when not nil) is 0.
func probs(logits *torch.Tensor, sigmoid bool, valid *torch.Tensor) *torch.Tensor {
	var p *torch.Tensor
	if sigmoid {
		p = logits.Sigmoid()
	} else {
		p = logits.Softmax(1)
	}
	if valid != nil {
		p = p.Mul(valid)
	}
	return p
}

// dropBackground leaves channel 0 out of p and t.
func dropBackground(p, t *torch.Tensor, l Loss) (*torch.Tensor, *torch.Tensor, error) {
	c := p.Size(1)
	if c < 2 {
		return nil, nil, fmt.Errorf("loss %s: no foreground class in %d-class logits", l, c)
	}
	return p.Narrow(1, 1, c-1), t.Narrow(1, 1, c-1), nil
}
