package loss_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/oracle"
	"github.com/jmedseg/jmedseg/loss"
	"github.com/jmedseg/jmedseg/torch"
)

// pyDefs are the losses written the PyTorch way, as the oracle's reference.
const pyDefs = `
def region(a, b, kind, smooth=1.0, perclass=False, nobg=False, ignore=None):
    c = a.shape[1]
    p = a.softmax(1)
    tg = b.clone()
    if ignore is not None:
        valid = (b != ignore).unsqueeze(1).to(a.dtype)
        tg[b == ignore] = 0
    t = F.one_hot(tg, c).permute(0, 3, 1, 2).to(a.dtype)
    if ignore is not None:
        p, t = p * valid, t * valid
    if nobg:
        p, t = p[:, 1:], t[:, 1:]
    dims = (0, 2, 3) if perclass else tuple(range(4))
    i, ps, ts = (p * t).sum(dims), p.sum(dims), t.sum(dims)
    r = (i + smooth) / (ps + ts - i + smooth) if kind == 'iou' else (2 * i + smooth) / (ps + ts + smooth)
    return 1 - r.mean()

def focal(a, b, gamma=2.0, alpha=0.5, ignore=-100):
    ce = F.cross_entropy(a, b, reduction='none', ignore_index=ignore)
    pt = torch.exp(-ce)
    per = alpha * (1 - pt) ** gamma * ce
    return per.sum() / (b != ignore).sum().clamp(min=1) if ignore != -100 else per.mean()
`

func fwd(spec string) func(x []*torch.Tensor) []*torch.Tensor {
	l, err := loss.Parse(spec)
	if err != nil {
		panic(err)
	}
	return func(x []*torch.Tensor) []*torch.Tensor { return oracle.One(l.Forward(x[0], x[1])) }
}

func TestLossesMatchPyTorch(t *testing.T) {
	logits, target := oracle.F64(2, 3, 5, 4), oracle.Index(3, 2, 5, 4)
	bin, binT := oracle.F64(3, 2, 6, 6), oracle.Index(2, 3, 6, 6)
	cases := []oracle.Case{
		{Name: "ce", In: []oracle.Input{logits, target}, Py: "F.cross_entropy(a, b)", Fn: fwd("ce")},
		{Name: "ce_weight_ignore", In: []oracle.Input{logits, target}, Py: "F.cross_entropy(a, b, weight=torch.tensor([0.2, 0.5, 0.3], dtype=a.dtype), ignore_index=2)", Fn: fwd("ce(weight=0.2/0.5/0.3,ignore=2)")},
		{Name: "ce_smoothing", In: []oracle.Input{logits, target}, Py: "F.cross_entropy(a, b, label_smoothing=0.1)", Fn: fwd("ce(smoothing=0.1)")},
		{Name: "iou_reference", In: []oracle.Input{logits, target}, Setup: pyDefs, Py: "region(a, b, 'iou')", Fn: fwd("iou")},
		{Name: "dice_reference", In: []oracle.Input{bin, binT}, Setup: pyDefs, Py: "region(a, b, 'dice')", Fn: fwd("dice")},
		{Name: "dice_perclass_nobg", In: []oracle.Input{logits, target}, Setup: pyDefs, Py: "region(a, b, 'dice', smooth=1e-5, perclass=True, nobg=True)", Fn: fwd("dice(perclass,nobg,smooth=1e-5)")},
		{Name: "iou_ignore", In: []oracle.Input{logits, oracle.Index(4, 2, 5, 4)}, Setup: pyDefs, Py: "region(a, b, 'iou', ignore=3)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return oracle.One(loss.Region{Kind: loss.IoU, Smooth: 1, IgnoreIndex: 3}.Forward(x[0], x[1]))
		}},
		{Name: "focal", In: []oracle.Input{logits, target}, Setup: pyDefs, Py: "focal(a, b)", Fn: fwd("focal")},
		{Name: "focal_ignore", In: []oracle.Input{logits, target}, Setup: pyDefs, Py: "focal(a, b, gamma=1.5, alpha=0.25, ignore=0)", Fn: fwd("focal(gamma=1.5,alpha=0.25,ignore=0)")},
		{Name: "sum", In: []oracle.Input{logits, target}, Setup: pyDefs, Py: "0.8 * F.cross_entropy(a, b) + 0.2 * region(a, b, 'iou')", Fn: fwd("ce:0.8+iou:0.2")},
		{Name: "f32_sum", In: []oracle.Input{oracle.F32(2, 2, 8, 8), oracle.Index(2, 2, 8, 8)}, Setup: pyDefs, Py: "F.cross_entropy(a, b) + region(a, b, 'dice')", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			l, _ := loss.Parse("ce+dice")
			return oracle.One(l.Forward(x[0], x[1]))
		}},
	}
	oracle.Check(t, cases)
}

func TestParse(t *testing.T) {
	tests := []struct {
		spec, want, err string
	}{
		{spec: "ce", want: "ce"},
		{spec: "ce:0.8+iou:0.2", want: "ce:0.8+iou:0.2"},
		{spec: " dice(perclass, nobg) ", want: "dice(perclass,nobg)"},
		{spec: "ce(weight=0/1)+focal(gamma=3):2", want: "ce(weight=0/1)+focal(gamma=3,alpha=0.5):2"},
		{spec: "iou:1", want: "iou"},
		{spec: "", err: "empty"},
		{spec: "hinge", err: `unknown loss "hinge"`},
		{spec: "ce:x", err: "bad weight"},
		{spec: "ce:-1", err: "bad weight"},
		{spec: "dice(bogus)", err: `unknown option "bogus"`},
		{spec: "focal(gamma=two)", err: "not a number"},
		{spec: "ce(weight=1/x)", err: "bad class weight"},
		{spec: "dice(perclass", err: "unclosed"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			l, err := loss.Parse(tc.spec)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, l.String())
			again, err := loss.Parse(l.String())
			require.NoError(t, err)
			assert.Equal(t, l.String(), again.String(), "String round-trips through Parse")
		})
	}
}

func TestPerfectPredictionScoresZero(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	target := torch.FromSlice([]int64{0, 1, 1, 0}, []int64{1, 2, 2}, s)
	logits := torch.OneHot(target, 2).Permute(0, 3, 1, 2).ToDType(torch.Float64).MulScalar(40)
	for _, spec := range []string{"iou(smooth=0)", "dice(smooth=0,perclass,nobg)", "focal"} {
		l, err := loss.Parse(spec)
		require.NoError(t, err)
		v, err := l.Forward(logits, target).Item()
		require.NoError(t, err)
		assert.InDelta(t, 0, v, 1e-9, spec)
	}
	_, err := loss.Region{Kind: loss.Dice, NoBackground: true, IgnoreIndex: loss.NoIgnore}.Forward(torch.Zeros([]int64{1, 1, 2, 2}, s), torch.Zeros([]int64{1, 2, 2}, torch.Int64, s)).Item()
	require.ErrorContains(t, err, "no foreground class")
}

func ExampleParse() {
	l, err := loss.Parse("ce:0.8+iou:0.2")
	if err != nil {
		panic(err)
	}
	s := torch.NewScope()
	defer s.Close()
	logits := torch.Zeros([]int64{1, 2, 2, 2}, s) // uniform predictions
	target := torch.Zeros([]int64{1, 2, 2}, torch.Int64, s)
	v, _ := l.Forward(logits, target).Item()
	fmt.Printf("%s = %.4f\n", l, v)
	// Output: ce:0.8+iou:0.2 = 0.6688
}
