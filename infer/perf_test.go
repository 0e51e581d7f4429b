package infer_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/infer"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
)

// The load options change speed, not results: fused and channels-last
// logits equal the plain model's to float32 round-off, bf16 ones to bf16's
// precision.
func TestLoadOptionsKeepResults(t *testing.T) {
	path := modelFile(t, models.DefaultNormalization())
	imgs := images(3)
	logits := func(o infer.LoadOptions) []float32 {
		p, err := infer.NewPredictorWith(path, torch.CPU, o)
		require.NoError(t, err)
		defer p.Close()
		ls, err := p.Logits(imgs)
		require.NoError(t, err)
		var v []float32
		for _, l := range ls {
			v = append(v, l.Data...)
		}
		return v
	}
	plain := logits(infer.LoadOptions{NoFuse: true, Layout: infer.LayoutContiguous})
	worst := func(got []float32) (float64, float64) {
		require.Len(t, got, len(plain))
		d, scale := 0.0, 1.0
		for i := range plain {
			d = math.Max(d, math.Abs(float64(got[i]-plain[i])))
			scale = math.Max(scale, math.Abs(float64(plain[i])))
		}
		return d, scale
	}
	cases := []struct {
		name string
		opt  infer.LoadOptions
		tol  float64
	}{
		{"fused, layout per shape (default)", infer.LoadOptions{}, 1e-5},
		{"fused contiguous", infer.LoadOptions{Layout: infer.LayoutContiguous}, 1e-5},
		{"layout channels-last", infer.LoadOptions{Layout: infer.LayoutChannelsLast}, 1e-5},
		{"channels-last", infer.LoadOptions{NoFuse: true, ChannelsLast: true}, 1e-5},
		{"fused channels-last", infer.LoadOptions{ChannelsLast: true}, 1e-5},
		{"bf16", infer.LoadOptions{AMP: "bf16"}, 0.1}, // 8-bit mantissa through 18 layers
	}
	for _, c := range cases {
		d, scale := worst(logits(c.opt))
		t.Logf("%s: largest logit difference %.3g (scale %.3g)", c.name, d, scale)
		assert.LessOrEqual(t, d/scale, c.tol, c.name)
	}
	_, err := infer.NewPredictorWith(path, torch.CPU, infer.LoadOptions{AMP: "fp16"})
	require.ErrorContains(t, err, "needs CUDA")
	_, err = infer.NewPredictorWith(path, torch.CPU, infer.LoadOptions{Layout: "nhwc"})
	require.ErrorContains(t, err, `layout "nhwc"`)
}
