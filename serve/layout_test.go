package serve_test

import (
	"log"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/jmedseg/jmedseg/infer"
	"github.com/jmedseg/jmedseg/serve"
	"github.com/jmedseg/jmedseg/torch"
)

// With the eager engine and the automatic layout, New times the layouts
// of every batch size up to MaxBatch before it returns (so no request
// waits for it); a fixed layout or the jit engine skips that.
func TestLayoutsChosenAtStart(t *testing.T) {
	ckpt := modelFile(t, t.TempDir(), "tiny.safetensors", tiny)
	const line = "memory layout chosen for batch sizes 1 to 3"
	for _, c := range []struct {
		name string
		load infer.LoadOptions
		want bool
	}{
		{"auto", infer.LoadOptions{}, true},
		{"auto named", infer.LoadOptions{Layout: infer.LayoutAuto, Engine: infer.EngineEager}, true},
		{"contiguous", infer.LoadOptions{Layout: infer.LayoutContiguous}, false},
		{"channels-last", infer.LoadOptions{ChannelsLast: true}, false},
		{"jit", infer.LoadOptions{Engine: infer.EngineJIT}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf syncBuffer
			newServer(t, serve.Config{Checkpoints: []string{ckpt}, Device: torch.CPU, MaxBatch: 3, Load: c.load, Log: log.New(&buf, "", 0)})
			if c.want {
				assert.Contains(t, buf.String(), line)
			} else {
				assert.NotContains(t, buf.String(), "memory layout chosen")
			}
		})
	}
}
