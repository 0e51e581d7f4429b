package encoder_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/fusetest"
	"github.com/jmedseg/jmedseg/models/encoder"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// TestResNetFoldsEveryBatchNorm: with the blocks' and stems' FoldPairs, the
// fusion pass folds every BatchNorm of every ResNet layout, and the taps
// equal the unfused ones to 1e-5 of their scale.
func TestResNetFoldsEveryBatchNorm(t *testing.T) {
	stems := []encoder.StemKind{encoder.StemStandard, encoder.StemDeep, encoder.StemDeepNorm, encoder.StemDeepFlat}
	for _, depth := range []int{18, 50} {
		for _, stem := range stems {
			t.Run(fmt.Sprintf("%d-%v", depth, stem), func(t *testing.T) {
				torch.ManualSeed(5)
				r := encoder.NewResNet(depth, encoder.Width(4), encoder.Stem(stem), encoder.Taps(0, 1, 2, 3, 4), encoder.OutputStride(16))
				require.NoError(t, r.Err())
				defer r.Free()
				bns := fusetest.RandomiseBatchNorms(t, r)
				r.Eval()
				x := torch.Randn([]int64{2, 3, 32, 32})
				defer x.Free()
				taps := func() [][]float32 {
					var out [][]float32
					torch.InferenceMode(func() {
						s := torch.NewScope()
						defer s.Close()
						for _, y := range r.Split(x) {
							v, err := s.Track(y).Float32s()
							require.NoError(t, err)
							out = append(out, v)
						}
					})
					return out
				}
				ref := taps()
				rep, err := nn.FuseSequentials(r)
				require.NoError(t, err)
				assert.Len(t, rep.Folded, bns, "every BatchNorm folds: %v", rep.Skipped)
				got := taps()
				require.Len(t, got, len(ref))
				for i := range ref {
					scale, worst := 1.0, 0.0
					for j := range ref[i] {
						scale = math.Max(scale, math.Abs(float64(ref[i][j])))
						worst = math.Max(worst, math.Abs(float64(got[i][j]-ref[i][j])))
					}
					assert.LessOrEqual(t, worst/scale, 1e-5, "tap %d", i)
				}
			})
		}
	}
}
