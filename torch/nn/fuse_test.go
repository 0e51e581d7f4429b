package nn_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/fusetest"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// foldTol bounds |folded − unfolded| relative to the output's largest
// magnitude (at least 1).
const foldTol = 1e-5

// relDiff is the largest |got − ref| over the largest |ref| (at least 1).
func relDiff(t *testing.T, ref, got []float32) float64 {
	t.Helper()
	require.Len(t, got, len(ref))
	scale, worst := 1.0, 0.0
	for i := range ref {
		scale = math.Max(scale, math.Abs(float64(ref[i])))
		worst = math.Max(worst, math.Abs(float64(got[i]-ref[i])))
	}
	return worst / scale
}

// A Sequential's transposed convolution → BatchNorm folds, for grouped and
// ungrouped weights [in, out/groups, kh, kw], with and without a bias, and
// the output stays the unfolded one to foldTol. A wrong grouping (scaling
// dimension 0, or ignoring groups) would scale the wrong output channels.
func TestFoldBatchNormTransposed(t *testing.T) {
	for _, tc := range []struct {
		name            string
		in, out, k      int64
		opts            []nn.Option
		affine, tracked bool
	}{
		{"plain", 4, 6, 3, nil, true, true},
		{"stride 2, output padding", 6, 4, 3, []nn.Option{nn.Stride(2), nn.Padding(1), nn.OutputPadding(1)}, true, true},
		{"no bias", 4, 8, 2, []nn.Option{nn.Stride(2), nn.NoBias()}, true, true},
		{"groups 2", 4, 6, 3, []nn.Option{nn.Groups(2), nn.Padding(1)}, true, true},
		{"groups 4 no bias", 8, 12, 2, []nn.Option{nn.Groups(4), nn.Stride(2), nn.NoBias()}, true, true},
		{"depthwise", 6, 6, 3, []nn.Option{nn.Groups(6)}, true, true},
		{"not affine", 4, 6, 3, []nn.Option{nn.Groups(2)}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			torch.ManualSeed(3)
			conv := nn.NewConvTranspose2d(tc.in, tc.out, tc.k, tc.opts...)
			var bnOpts []nn.Option
			if !tc.affine {
				bnOpts = append(bnOpts, nn.Affine(false))
			}
			bn := nn.NewBatchNorm2d(tc.out, bnOpts...)
			m := nn.Seq(conv, bn, nn.ReLU())
			require.NoError(t, m.Err())
			defer m.Free()
			require.Equal(t, 1, fusetest.RandomiseBatchNorms(t, m))
			m.Eval()
			x := torch.Randn([]int64{2, tc.in, 5, 7})
			defer x.Free()
			ref := fusetest.Forward(t, m, x)
			rep, err := nn.FuseSequentials(m)
			require.NoError(t, err)
			assert.Equal(t, []string{"1"}, rep.Folded)
			assert.Equal(t, 1, rep.InPlace)
			require.NotNil(t, conv.Bias, "the fold gives the convolution a bias")
			d := relDiff(t, ref, fusetest.Forward(t, m, x))
			assert.LessOrEqual(t, d, foldTol)
			t.Logf("%s: largest relative difference %.3g", tc.name, d)
		})
	}
}

// FoldBatchNormTransposed refuses what it cannot fold exactly, naming the
// problem.
func TestFoldBatchNormTransposedRefuses(t *testing.T) {
	conv := nn.NewConvTranspose2d(4, 6, 3)
	defer conv.Free()
	bn := nn.NewBatchNorm2d(5)
	defer bn.Free()
	conv.Eval()
	bn.Eval()
	err := nn.FoldBatchNormTransposed(conv, bn)
	require.ErrorIs(t, err, nn.ErrNotFoldable)
	assert.Contains(t, err.Error(), "5 BatchNorm features, 6 convolution outputs")
	bn6 := nn.NewBatchNorm2d(6)
	defer bn6.Free()
	require.ErrorContains(t, nn.FoldBatchNormTransposed(conv, bn6), "training mode")
	require.ErrorIs(t, nn.FoldBatchNormTransposed(nil, bn6), nn.ErrNotFoldable)
}

// Grouped Conv2d folding (weight [out, in/groups, kh, kw]) stays exact.
func TestFoldBatchNormGrouped(t *testing.T) {
	torch.ManualSeed(4)
	m := nn.Seq(nn.NewConv2d(4, 6, 3, nn.Groups(2), nn.Padding(1), nn.NoBias()), nn.NewBatchNorm2d(6))
	defer m.Free()
	fusetest.RandomiseBatchNorms(t, m)
	m.Eval()
	x := torch.Randn([]int64{2, 4, 6, 6})
	defer x.Free()
	ref := fusetest.Forward(t, m, x)
	rep, err := nn.FuseSequentials(m)
	require.NoError(t, err)
	require.Len(t, rep.Folded, 1)
	assert.LessOrEqual(t, relDiff(t, ref, fusetest.Forward(t, m, x)), foldTol)
}

// aliasing registers its inner Sequential twice, as "body" and "alias";
// its Forward applies body only. It names "alias" an alias when declare is
// set.
type aliasing struct {
	nn.Base
	body    *nn.Sequential
	declare []string
}

func (a *aliasing) Forward(x *torch.Tensor) *torch.Tensor { return a.body.Forward(x) }
func (a *aliasing) Aliases() []string                     { return a.declare }

func newAliasing(declare ...string) *aliasing {
	a := &aliasing{declare: declare}
	a.body = nn.Register(&a.Base, "body", nn.Seq(nn.NewConv2d(2, 3, 3, nn.Padding(1), nn.NoBias()), nn.NewBatchNorm2d(3), nn.ReLU()))
	a.RegisterModule("alias", a.body)
	return a
}

// A module registered twice folds once the parent declares the second
// registration an alias, and not otherwise; the state dict keeps both
// keys, holding the folded tensors.
func TestFuseAliases(t *testing.T) {
	t.Run("declared", func(t *testing.T) {
		torch.ManualSeed(6)
		a := newAliasing("alias")
		defer a.Free()
		keys := func() []string {
			var k []string
			for _, p := range a.StateDict() {
				k = append(k, p.Name)
			}
			return k
		}
		before := keys()
		fusetest.RandomiseBatchNorms(t, a)
		a.Eval()
		x := torch.Randn([]int64{1, 2, 5, 5})
		defer x.Free()
		ref := fusetest.Forward(t, a, x)
		tree, err := nn.ForwardTree(a)
		require.NoError(t, err)
		var names []string
		for _, m := range tree {
			names = append(names, m.Name)
		}
		assert.Equal(t, []string{"body", "body.0", "body.1", "body.2"}, names)
		rep, err := nn.FuseSequentials(a)
		require.NoError(t, err)
		assert.Equal(t, []string{"body.1"}, rep.Folded)
		assert.Empty(t, rep.Skipped)
		assert.LessOrEqual(t, relDiff(t, ref, fusetest.Forward(t, a, x)), foldTol)
		// The fold gave body.0 a bias: both aliases list it.
		after := keys()
		assert.Len(t, after, len(before)+2)
		assert.Subset(t, after, append(before, "body.0.bias", "alias.0.bias"))
	})
	t.Run("undeclared", func(t *testing.T) {
		a := newAliasing()
		defer a.Free()
		a.Eval()
		rep, err := nn.FuseSequentials(a)
		require.NoError(t, err)
		assert.Empty(t, rep.Folded)
		require.NotEmpty(t, rep.Skipped)
		assert.Contains(t, rep.Skipped[0], "more than one place")
	})
	t.Run("alias of nothing", func(t *testing.T) {
		a := newAliasing("body", "alias")
		defer a.Free()
		a.Eval()
		_, err := nn.FuseSequentials(a)
		require.ErrorContains(t, err, "body is named an alias but its module is registered nowhere else")
	})
}
