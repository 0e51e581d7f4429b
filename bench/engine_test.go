package bench_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/bench"
	"github.com/jmedseg/jmedseg/torch"
)

// bench --engine jit times the optimised trace after building it in an
// untimed step of its own, and refuses what it cannot time.
func TestEngineJIT(t *testing.T) {
	o := bench.Options{Model: "unet", Batch: 2, Size: 32, Width: 4, Steps: 2, Warmup: 1, Mode: "infer", Device: torch.CPU, Engine: "jit"}
	r, err := bench.Run(o)
	require.NoError(t, err)
	assert.Equal(t, "jit", r.Engine)
	assert.Positive(t, r.BuildSeconds)
	assert.Len(t, r.StepSeconds, 2)
	assert.Positive(t, r.StepMedian)

	bad := o
	bad.Mode = "train"
	_, err = bench.Run(bad)
	assert.ErrorContains(t, err, "--engine jit is for --mode infer")
	bad = o
	bad.AMP = "bf16"
	_, err = bench.Run(bad)
	assert.ErrorContains(t, err, "does not combine with amp")
	bad = o
	bad.Engine = "fast"
	_, err = bench.Run(bad)
	assert.ErrorContains(t, err, `engine "fast"`)
}
