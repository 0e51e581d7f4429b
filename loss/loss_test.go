package loss_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/oracle"
	"github.com/jmedseg/jmedseg/loss"
	"github.com/jmedseg/jmedseg/torch"
)

// setup loads the PyTorch formulations (internal/oracle/py/loss_oracle.py).
const setup = "from loss_oracle import *"

// fwd parses spec and returns a case function that gives the loss twice (see
// two in loss_oracle.py: a lone scalar would have its gradient weighed by
// sin(0) = 0 and so checked nothing; now sin(1..n), and two copies do no harm).
func fwd(spec string) func(x []*torch.Tensor) []*torch.Tensor {
	l, err := loss.Parse(spec)
	if err != nil {
		panic(err)
	}
	return func(x []*torch.Tensor) []*torch.Tensor { return two(l.Forward(x[0], x[1])) }
}

func two(v *torch.Tensor) []*torch.Tensor { return oracle.One(torch.Stack([]*torch.Tensor{v, v}, 0)) }

// tol is the tolerance every float64 case meets (the worst seen is 8e-17): |Go − PyTorch| ≤ tol·(1 + |PyTorch|)
// for the values and the gradients with respect to the logits.
const tol = 1e-14

func TestLossesMatchPyTorch(t *testing.T) {
	logits, target := oracle.F64(2, 3, 5, 4), oracle.Index(3, 2, 5, 4)
	bin, binT := oracle.F64(3, 2, 6, 6), oracle.Index(2, 3, 6, 6)
	cases := []oracle.Case{
		{Name: "ce", In: []oracle.Input{logits, target}, Setup: setup, Py: "two(F.cross_entropy(a, b))", Fn: fwd("ce")},
		{Name: "ce_weight_ignore", In: []oracle.Input{logits, target}, Setup: setup, Py: "two(F.cross_entropy(a, b, weight=torch.tensor([0.2, 0.5, 0.3], dtype=a.dtype), ignore_index=2))", Fn: fwd("ce(weight=0.2/0.5/0.3,ignore=2)")},
		{Name: "ce_smoothing", In: []oracle.Input{logits, target}, Setup: setup, Py: "two(F.cross_entropy(a, b, label_smoothing=0.1))", Fn: fwd("ce(smoothing=0.1)")},
		{Name: "iou_reference", In: []oracle.Input{logits, target}, Setup: setup, Py: "two(region(a, b, 'iou'))", Fn: fwd("iou")},
		{Name: "dice_reference", In: []oracle.Input{bin, binT}, Setup: setup, Py: "two(region(a, b, 'dice'))", Fn: fwd("dice")},
		{Name: "dice_perclass_nobg", In: []oracle.Input{logits, target}, Setup: setup, Py: "two(region(a, b, 'dice', smooth=1e-5, perclass=True, nobg=True))", Fn: fwd("dice(perclass,nobg,smooth=1e-5)")},
		{Name: "dice_persample", In: []oracle.Input{logits, target}, Setup: setup, Py: "two(region(a, b, 'dice', persample=True))", Fn: fwd("dice(persample)")},
		{Name: "dice_persample_perclass", In: []oracle.Input{logits, target}, Setup: setup, Py: "two(region(a, b, 'dice', persample=True, perclass=True, smooth=1e-5))", Fn: fwd("dice(persample,perclass,smooth=1e-5)")},
		{Name: "iou_ignore", In: []oracle.Input{logits, oracle.Index(4, 2, 5, 4)}, Setup: setup, Py: "two(region(a, b, 'iou', ignore=3))", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return two(loss.Region{Kind: loss.IoU, Smooth: 1, IgnoreIndex: 3}.Forward(x[0], x[1]))
		}},
		{Name: "tversky", In: []oracle.Input{logits, target}, Setup: setup, Py: "two(region(a, b, 'tversky', alpha=0.3, beta=0.7))", Fn: fwd("tversky")},
		{Name: "tversky_persample_perclass_nobg", In: []oracle.Input{logits, target}, Setup: setup, Py: "two(region(a, b, 'tversky', alpha=0.7, beta=0.2, smooth=1e-5, persample=True, perclass=True, nobg=True))", Fn: fwd("tversky(alpha=0.7,beta=0.2,smooth=1e-5,persample,perclass,nobg)")},
		{Name: "tversky_ignore", In: []oracle.Input{logits, oracle.Index(4, 2, 5, 4)}, Setup: setup, Py: "two(region(a, b, 'tversky', alpha=0.4, beta=0.6, ignore=3))", Fn: fwd("tversky(alpha=0.4,beta=0.6,ignore=3)")},
		{Name: "tversky_1_1_is_iou", In: []oracle.Input{logits, target}, Setup: setup, Py: "two(region(a, b, 'iou', perclass=True))", Fn: fwd("tversky(alpha=1,beta=1,perclass)")},
		{Name: "focal", In: []oracle.Input{logits, target}, Setup: setup, Py: "two(focal(a, b))", Fn: fwd("focal")},
		{Name: "focal_ignore", In: []oracle.Input{logits, target}, Setup: setup, Py: "two(focal(a, b, gamma=1.5, alpha=0.25, ignore=0))", Fn: fwd("focal(gamma=1.5,alpha=0.25,ignore=0)")},
		{Name: "focal_binary_alpha", In: []oracle.Input{bin, binT}, Setup: setup, Py: "two(focal(a, b, gamma=2, alpha=0.25))", Fn: fwd("focal(alpha=0.25)")},
		{Name: "focal_class_alphas", In: []oracle.Input{logits, target}, Setup: setup, Py: "two(focal(a, b, gamma=2, alpha=[0.2, 0.3, 0.5]))", Fn: fwd("focal(alpha=0.2/0.3/0.5)")},
		{Name: "focal_class_alphas_ignore", In: []oracle.Input{logits, oracle.Index(4, 2, 5, 4)}, Setup: setup, Py: "two(focal(a, b, gamma=3, alpha=[0.2, 0.3, 0.5], ignore=3))", Fn: fwd("focal(gamma=3,alpha=0.2/0.3/0.5,ignore=3)")},
		{Name: "focal_no_alpha_scale", In: []oracle.Input{logits, target}, Setup: setup, Py: "two(focal(a, b, gamma=0.5, alpha=None, scale=3))", Fn: fwd("focal(gamma=0.5,alpha=none,scale=3)")},
		{Name: "focal_gamma0_is_ce", In: []oracle.Input{logits, target}, Setup: setup, Py: "two(F.cross_entropy(a, b))", Fn: fwd("focal(gamma=0,alpha=none)")},
		{Name: "sum", In: []oracle.Input{logits, target}, Setup: setup, Py: "two(0.8 * F.cross_entropy(a, b) + 0.2 * region(a, b, 'iou'))", Fn: fwd("ce:0.8+iou:0.2")},
		{Name: "f32_sum", In: []oracle.Input{oracle.F32(2, 2, 8, 8), oracle.Index(2, 2, 8, 8)}, Setup: setup, Py: "two(F.cross_entropy(a, b) + region(a, b, 'dice'))", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			l, _ := loss.Parse("ce+dice")
			return two(l.Forward(x[0], x[1]))
		}},
	}
	for i := range cases {
		if cases[i].Name != "f32_sum" {
			cases[i].Tol = tol
		}
	}
	oracle.Check(t, cases)
}

// The sigmoid (multi-label) forms: one sigmoid per channel, with label maps
// [N,L,H,W] of {0,1}, a binary class map for one channel, or a class map
// one-hot encoded over the channels.
func TestSigmoidLossesMatchPyTorch(t *testing.T) {
	multi, labels := oracle.F64(2, 3, 5, 4), oracle.Index(2, 2, 3, 5, 4)
	one, mask := oracle.F64(3, 1, 6, 5), oracle.Index(2, 3, 6, 5)
	classes, cmap := oracle.F64(2, 3, 5, 4), oracle.Index(3, 2, 5, 4)
	type form struct {
		name string
		in   []oracle.Input
	}
	forms := []form{{"labelmap", []oracle.Input{multi, labels}}, {"binary", []oracle.Input{one, mask}}, {"onehot", []oracle.Input{classes, cmap}}}
	specs := []struct{ name, spec, py string }{
		{"dice", "dice(sigmoid)", "region(a, b, 'dice', sigmoid=True)"},
		{"dice_persample_perclass", "dice(sigmoid,persample,perclass,smooth=1e-5)", "region(a, b, 'dice', sigmoid=True, persample=True, perclass=True, smooth=1e-5)"},
		{"iou", "iou(sigmoid,perclass)", "region(a, b, 'iou', sigmoid=True, perclass=True)"},
		{"tversky", "tversky(sigmoid,alpha=0.3,beta=0.7,persample)", "region(a, b, 'tversky', sigmoid=True, alpha=0.3, beta=0.7, persample=True)"},
		{"focal", "focal(sigmoid)", "sigmoid_focal(a, b)"},
		{"focal_alpha", "focal(sigmoid,gamma=1.5,alpha=0.25)", "sigmoid_focal(a, b, gamma=1.5, alpha=0.25)"},
		{"focal_noalpha_scale", "focal(sigmoid,gamma=2,alpha=none,scale=2)", "sigmoid_focal(a, b, gamma=2, alpha=None, scale=2)"},
		{"focal_gamma0", "focal(sigmoid,gamma=0,alpha=none)", "F.binary_cross_entropy_with_logits(a, b.to(a.dtype) if b.dim() == 4 else targets_of(a, b, True)[0])"},
		{"bce", "bce", "bce(a, b)"},
	}
	var cases []oracle.Case
	for _, f := range forms {
		for _, s := range specs {
			cases = append(cases, oracle.Case{Name: f.name + "/" + s.name, In: f.in, Setup: setup, Py: "two(" + s.py + ")", Fn: fwd(s.spec), Tol: tol})
		}
	}
	// Per-label alphas (three labels) and ignored pixels (class maps only).
	cases = append(cases,
		oracle.Case{Name: "labelmap/focal_label_alphas", In: []oracle.Input{multi, labels}, Setup: setup, Py: "two(sigmoid_focal(a, b, alpha=[0.2, 0.7, 0.5]))", Fn: fwd("focal(sigmoid,alpha=0.2/0.7/0.5)"), Tol: tol},
		oracle.Case{Name: "binary/ignore/dice", In: []oracle.Input{one, oracle.Index(3, 3, 6, 5)}, Setup: setup, Py: "two(region(a, b, 'dice', sigmoid=True, ignore=2))", Fn: fwd("dice(sigmoid,ignore=2)"), Tol: tol},
		oracle.Case{Name: "binary/ignore/focal", In: []oracle.Input{one, oracle.Index(3, 3, 6, 5)}, Setup: setup, Py: "two(sigmoid_focal(a, b, alpha=0.25, ignore=2))", Fn: fwd("focal(sigmoid,alpha=0.25,ignore=2)"), Tol: tol},
		oracle.Case{Name: "binary/ignore/bce", In: []oracle.Input{one, oracle.Index(3, 3, 6, 5)}, Setup: setup, Py: "two(bce(a, b, ignore=2))", Fn: fwd("bce(ignore=2)"), Tol: tol},
		oracle.Case{Name: "onehot/ignore/bce", In: []oracle.Input{classes, oracle.Index(4, 2, 5, 4)}, Setup: setup, Py: "two(bce(a, b, ignore=3))", Fn: fwd("bce(ignore=3)"), Tol: tol},
	)
	oracle.Check(t, cases)
}

// Edge cases of the targets, for every loss: no foreground at all, nothing
// but foreground (class 1), and a class absent from one sample of the
// batch while present in the other.
func TestLossEdgeCasesMatchPyTorch(t *testing.T) {
	const h, w = 6, 5
	type kind struct {
		name string
		tgt  []oracle.Input // one input, or two samples joined along the batch
	}
	kinds := func(c int64) []kind {
		return []kind{
			{"empty", []oracle.Input{oracle.Index(1, 2, h, w)}},
			{"full", []oracle.Input{{Shape: []int64{2, h, w}, DType: torch.Int64, Lo: 1, Hi: 2}}},
			{"absent", []oracle.Input{oracle.Index(c-1, 1, h, w), oracle.Index(c, 1, h, w)}},
		}
	}
	specs := []struct {
		name, spec, py string
		classes        int64
	}{
		{"dice", "dice", "region(a, B, 'dice')", 3},
		{"dice_persample_perclass_nobg", "dice(persample,perclass,nobg)", "region(a, B, 'dice', persample=True, perclass=True, nobg=True)", 3},
		{"dice_persample_binary", "dice(persample,perclass,nobg,smooth=1e-5)", "region(a, B, 'dice', persample=True, perclass=True, nobg=True, smooth=1e-5)", 2},
		{"iou_perclass", "iou(perclass)", "region(a, B, 'iou', perclass=True)", 3},
		{"tversky_persample", "tversky(persample,perclass)", "region(a, B, 'tversky', alpha=0.3, beta=0.7, persample=True, perclass=True)", 3},
		{"focal_alpha", "focal(alpha=0.25)", "focal(a, B, alpha=0.25)", 2},
		{"focal_class_alphas", "focal(gamma=1,alpha=0.1/0.6/0.3)", "focal(a, B, gamma=1, alpha=[0.1, 0.6, 0.3])", 3},
		{"sigmoid_dice", "dice(sigmoid,persample,perclass)", "region(a, B, 'dice', sigmoid=True, persample=True, perclass=True)", 3},
		{"sigmoid_focal", "focal(sigmoid,alpha=0.25)", "sigmoid_focal(a, B, alpha=0.25)", 3},
		{"bce", "bce", "bce(a, B)", 3},
		{"dualterm", "dualterm", "dualterm(a, B)", 2},
		{"dualterm_3", "dualterm(lambda=0.5,k=0.1,smooth=0.5)", "dualterm(a, B, lam=0.5, k=0.1, smooth=0.5)", 3},
	}
	var cases []oracle.Case
	for _, s := range specs {
		l, err := loss.Parse(s.spec)
		require.NoError(t, err, s.spec)
		for _, k := range kinds(s.classes) {
			setupB, join := setup+"\nB = b", false
			if len(k.tgt) == 2 {
				setupB, join = setup+"\nB = torch.cat([b, c])", true
			}
			cases = append(cases, oracle.Case{
				Name: s.name + "/" + k.name, In: append([]oracle.Input{oracle.F64(2, s.classes, h, w)}, k.tgt...), Setup: setupB, Py: "two(" + s.py + ")", Tol: tol,
				Fn: func(x []*torch.Tensor) []*torch.Tensor {
					b := x[1]
					if join {
						b = torch.Cat([]*torch.Tensor{x[1], x[2]}, 0)
					}
					return two(l.Forward(x[0], b))
				},
			})
		}
	}
	oracle.Check(t, cases)
}

// The Dual-Term loss on shapes (a disc and a bar, so that the distances to
// the boundary reach several pixels), on random class maps, with an
// ignored label, in float32, and its maps against the brute-force distance.
func TestDualTermMatchesPyTorch(t *testing.T) {
	const n, h, w = 2, 16, 14
	lab := make([]int64, n*h*w)
	for i := 0; i < n; i++ {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				dy, dx := float64(y)-6.5-float64(i), float64(x)-6
				switch {
				case dy*dy+dx*dx < 20+10*float64(i):
					lab[(i*h+y)*w+x] = 1
				case y >= 12 && x >= 2+i:
					lab[(i*h+y)*w+x] = 2
				case i == 1 && x == 0:
					lab[(i*h+y)*w+x] = 255 // void
				}
			}
		}
	}
	shapes := fmt.Sprintf("%s\nB = torch.tensor(%s).reshape(%d, %d, %d)", setup, strings.ReplaceAll(fmt.Sprint(lab), " ", ","), n, h, w)
	withShapes := func(spec string) func(x []*torch.Tensor) []*torch.Tensor {
		l, err := loss.Parse(spec)
		require.NoError(t, err)
		return func(x []*torch.Tensor) []*torch.Tensor {
			return two(l.Forward(x[0], torch.FromSlice(lab, []int64{n, h, w}, x[0].Scope())))
		}
	}
	cases := []oracle.Case{
		{Name: "shapes", In: []oracle.Input{oracle.F64(n, 3, h, w)}, Setup: shapes, Py: "two(dualterm(a, B, ignore=255))", Fn: withShapes("dualterm(ignore=255)"), Tol: tol},
		{Name: "shapes_params", In: []oracle.Input{oracle.F64(n, 3, h, w)}, Setup: shapes, Py: "two(dualterm(a, B, lam=2.5, k=0.05, smooth=1e-5, ignore=255))", Fn: withShapes("dualterm(lambda=2.5,k=0.05,smooth=1e-5,ignore=255)"), Tol: tol},
		{Name: "maps", In: []oracle.Input{oracle.NoGrad(oracle.F64(1))}, Setup: shapes, Py: "shape_maps(B, 3, 0.2, ignore=255)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return oracle.One(torch.FromSlice(loss.ShapeMaps(lab, n, 3, h, w, 0.2, 255), []int64{n, 2, h, w}, x[0].Scope()))
		}, Tol: tol},
		{Name: "random", In: []oracle.Input{oracle.F64(2, 3, 9, 7), oracle.Index(3, 2, 9, 7)}, Setup: setup, Py: "two(dualterm(a, b))", Fn: fwd("dualterm"), Tol: tol},
		{Name: "random_ignore", In: []oracle.Input{oracle.F64(2, 2, 9, 7), oracle.Index(3, 2, 9, 7)}, Setup: setup, Py: "two(dualterm(a, b, lam=0.3, ignore=2))", Fn: fwd("dualterm(lambda=0.3,ignore=2)"), Tol: tol},
		{Name: "f32", In: []oracle.Input{oracle.F32(n, 3, h, w)}, Setup: shapes, Py: "two(dualterm(a, B, ignore=255))", Fn: withShapes("dualterm(ignore=255)")},
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
		{spec: "focal(gamma=2,alpha=0.5)", want: "focal(gamma=2,alpha=0.5)"}, // the old default spec, same value
		{spec: "focal(scale=0.5,alpha=0.2/0.8,sigmoid,ignore=255)", want: "focal(gamma=2,alpha=0.2/0.8,scale=0.5,sigmoid,ignore=255)"},
		{spec: "focal(alpha=none)", want: "focal(gamma=2,alpha=none)"},
		{spec: "tversky", want: "tversky(alpha=0.3,beta=0.7)"},
		{spec: "tversky(beta=0.9,alpha=0.1,persample,perclass,nobg,sigmoid,smooth=0)", want: "tversky(alpha=0.1,beta=0.9,smooth=0,persample,perclass,nobg,sigmoid)"},
		{spec: "dice(persample)", want: "dice(persample)"},
		{spec: "bce+dice(sigmoid):0.5", want: "bce+dice(sigmoid):0.5"},
		{spec: "dualterm", want: "dualterm(lambda=1,k=0.2)"},
		{spec: "ce+dualterm(k=0.1,lambda=0.5,smooth=1e-5,ignore=255):0.5", want: "ce+dualterm(lambda=0.5,k=0.1,smooth=1e-05,ignore=255):0.5"},
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
	onehot := torch.OneHot(target, 2).Permute(0, 3, 1, 2).ToDType(torch.Float64)
	logits := onehot.MulScalar(40)
	sigmoidLogits := onehot.MulScalar(2).SubScalar(1).MulScalar(40) // ±40: every sigmoid right
	for _, spec := range []string{"iou(smooth=0)", "dice(smooth=0,perclass,nobg)", "dice(smooth=0,persample,perclass)", "tversky(smooth=0)",
		"tversky(alpha=0.9,beta=0.1,smooth=0,persample,perclass,nobg)", "focal", "focal(alpha=0.25)", "focal(alpha=0.3/0.7,gamma=0)"} {
		l, err := loss.Parse(spec)
		require.NoError(t, err)
		v, err := l.Forward(logits, target).Item()
		require.NoError(t, err)
		assert.InDelta(t, 0, v, 1e-9, spec)
	}
	for _, spec := range []string{"dice(sigmoid,smooth=0)", "tversky(sigmoid,smooth=0,persample)", "focal(sigmoid)", "bce"} {
		l, err := loss.Parse(spec)
		require.NoError(t, err)
		v, err := l.Forward(sigmoidLogits, target).Item()
		require.NoError(t, err)
		assert.InDelta(t, 0, v, 1e-9, spec)
	}
	_, err := loss.Region{Kind: loss.Dice, NoBackground: true, IgnoreIndex: loss.NoIgnore}.Forward(torch.Zeros([]int64{1, 1, 2, 2}, s), torch.Zeros([]int64{1, 2, 2}, torch.Int64, s)).Item()
	require.ErrorContains(t, err, "no foreground class")
}

// The Dual-Term loss at a perfect prediction is its shape term alone: the
// Dice term is 0 and Σ|D − t|/Σt is the mean of 1 − D over the class.
func TestDualTermAtAPerfectPrediction(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	// a 1×5 bar of class 1 in a 3×7 image: distances 1,1,1,1,1 (every pixel touches the background)
	lab := make([]int64, 3*7)
	for x := 1; x <= 5; x++ {
		lab[7+x] = 1
	}
	target := torch.FromSlice(lab, []int64{1, 3, 7}, s)
	logits := torch.OneHot(target, 2).Permute(0, 3, 1, 2).ToDType(torch.Float64).MulScalar(60)
	l, err := loss.Parse("dualterm(smooth=0,k=0.2,lambda=2)")
	require.NoError(t, err)
	v, err := l.Forward(logits, target).Item()
	require.NoError(t, err)
	// dn = 1/(1+1e-8) on every pixel: D = σ((1−dn)/k) ≈ σ(0) = ½
	d := 1 / (1 + math.Exp(-(1-1/(1+1e-8))/0.2))
	assert.InDelta(t, 2*(1-d), v, 1e-9)
}

// Every loss has a gradient with respect to the logits (so that the oracle's
// gradient comparisons compare something), and none leaves a tensor alive
// after its scope closes.
func TestGradientsAndNoLeaks(t *testing.T) {
	specs := []string{"ce", "iou", "dice(persample,perclass,nobg)", "tversky(persample)", "focal(alpha=0.25)", "focal(alpha=0.2/0.3/0.5,ignore=255)",
		"dice(sigmoid)", "focal(sigmoid,alpha=0.2/0.7/0.5)", "bce(ignore=255)", "dualterm(ignore=255)", "ce:0.5+dualterm:0.5"}
	torch.SettleLeaks()
	before, _ := torch.Live()
	for _, spec := range specs {
		l, err := loss.Parse(spec)
		require.NoError(t, err)
		err = torch.WithScope(func(s *torch.Scope) error {
			x := torch.Randn([]int64{2, 3, 8, 8}, torch.Float64, s)
			require.NoError(t, x.SetRequiresGrad(true))
			y := torch.RandInt(0, 3, []int64{2, 8, 8}, s)
			if strings.Contains(spec, "ignore=255") {
				y = y.MaskedFill(torch.Rand([]int64{2, 8, 8}, s).LtScalar(0.1), 255)
			}
			if err := l.Forward(x, y).Backward(); err != nil {
				return err
			}
			g, err := s.Track(x.Grad()).Abs().Sum().Item()
			if err != nil {
				return err
			}
			assert.Greater(t, g, 1e-6, "%s: no gradient", spec)
			return nil
		})
		require.NoError(t, err, spec)
	}
	torch.SettleLeaks()
	after, _ := torch.Live()
	assert.Equal(t, before, after, "live tensors after the scopes closed")
}

// Bad inputs give errors that name the loss and the problem, at Forward.
func TestForwardErrors(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x3 := torch.Randn([]int64{2, 3, 4, 4}, torch.Float64, s)
	x1 := torch.Randn([]int64{2, 1, 4, 4}, torch.Float64, s)
	y := torch.RandInt(0, 2, []int64{2, 4, 4}, s)
	labels := torch.RandInt(0, 2, []int64{2, 3, 4, 4}, s)
	tests := []struct {
		spec   string
		x, y   *torch.Tensor
		errHas string
	}{
		{"focal(alpha=0.2/0.8)", x3, y, "focal(gamma=2,alpha=0.2/0.8): 2 class alphas for 3-channel logits"},
		{"focal(sigmoid,alpha=0.2/0.8)", x3, labels, "2 class alphas for 3-channel logits"},
		{"dice", x3, labels, "a label map [2 3 4 4] is for the sigmoid form"},
		{"dice(sigmoid,ignore=255)", x3, labels, "ignore=255 needs a class map"},
		{"bce", x3, torch.RandInt(0, 2, []int64{2, 2, 4, 4}, s), "label map of shape [2 2 4 4] for logits [2 3 4 4]"},
		{"tversky", x3, torch.RandInt(0, 2, []int64{2, 4, 5}, s), "target of shape [2 4 5] for logits [2 3 4 4]: want a class map [2,4,4]"},
		{"dualterm", x1, y, "dualterm(lambda=1,k=0.2): no foreground class in 1-class logits"},
		{"dice(sigmoid,nobg)", x1, y, "no foreground class"},
		{"dualterm", torch.Randn([]int64{2, 4, 4}, torch.Float64, s), y, "logits of shape [2 4 4]: want [N,C,H,W]"},
	}
	for _, tc := range tests {
		l, err := loss.Parse(tc.spec)
		require.NoError(t, err)
		_, err = l.Forward(tc.x, tc.y).Item()
		assert.ErrorContains(t, err, tc.errHas, tc.spec)
	}
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
