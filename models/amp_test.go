package models_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/loss"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
	"github.com/jmedseg/jmedseg/torch/optim"
)

// bf16Tol bounds |loss_bf16 − loss_fp32| per step: bfloat16 keeps 8 bits
// of mantissa (relative steps of 2^-8 ≈ 0.004) through 18 convolutions.
const bf16Tol = 0.02

// A few training steps of the main job's model (make brain: unet width 16,
// CE + Dice, Adam lr 3e-3; here 64×64, batch 4, synthetic images whose
// label is a bright disc) under bf16 autocast give the float32 losses to
// bf16Tol, and the loss falls in both.
func TestAutocastBF16TrainingMatchesFP32(t *testing.T) {
	const n, side, steps = 4, 64, 6
	img := make([]float32, n*3*side*side)
	lab := make([]int64, n*side*side)
	for b := 0; b < n; b++ {
		cx, cy, r := 20+8*b, 30+4*b, 10+2*b
		for y := 0; y < side; y++ {
			for x := 0; x < side; x++ {
				in := (x-cx)*(x-cx)+(y-cy)*(y-cy) < r*r
				v := float32(0.2 + 0.05*math.Sin(float64(x*y)))
				if in {
					v += 0.6
					lab[(b*side+y)*side+x] = 1
				}
				for c := 0; c < 3; c++ {
					img[((b*3+c)*side+y)*side+x] = v
				}
			}
		}
	}
	lossFn, err := loss.Parse("ce:0.5+dice:0.5")
	require.NoError(t, err)
	run := func(bf16 bool) []float64 {
		torch.ManualSeed(1)
		m, err := models.New("unet", models.Config{InChannels: 3, Classes: 2, Width: 16})
		require.NoError(t, err)
		defer m.Free()
		var fwd nn.Module = m
		if bf16 {
			fwd = models.WithAutocast(m, torch.CPU, torch.BFloat16)
		}
		opt, err := optim.NewAdam(optim.AdamConfig{LR: 3e-3}, optim.Params(m.Parameters()))
		require.NoError(t, err)
		defer opt.Free()
		var losses []float64
		for i := 0; i < steps; i++ {
			require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
				x := torch.FromSlice(img, []int64{n, 3, side, side}, s)
				y := torch.FromSlice(lab, []int64{n, side, side}, s)
				logits := fwd.Forward(x)
				assert.Equal(t, torch.Float32, logits.DType())
				l := lossFn.Forward(logits, y)
				if err := l.Backward(); err != nil {
					return err
				}
				v, err := l.Item()
				losses = append(losses, v)
				if err != nil {
					return err
				}
				if err := opt.Step(); err != nil {
					return err
				}
				return opt.ZeroGrad()
			}))
		}
		return losses
	}
	fp32, bf16 := run(false), run(true)
	worst := 0.0
	for i := range fp32 {
		worst = math.Max(worst, math.Abs(fp32[i]-bf16[i]))
	}
	t.Logf("losses fp32 %.4f, bf16 %.4f; largest difference %.4f", fp32, bf16, worst)
	assert.LessOrEqual(t, worst, bf16Tol)
	assert.Less(t, fp32[steps-1], fp32[0])
	assert.Less(t, bf16[steps-1], bf16[0])
	assert.NotEqual(t, fp32, bf16, "bf16 ran in reduced precision")
}
