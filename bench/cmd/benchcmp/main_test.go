package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// write renders a report that measured one mode only (-modes train or
// -modes infer), with tricks, without failing on the missing mode.
func TestWriteOneMode(t *testing.T) {
	measured := func(goS, pyS float64) *pair {
		return &pair{Go: side{Seconds: goS, PeakMiB: 900}, PyTorch: side{Seconds: pyS, PeakMiB: 800}, Ratio: goS / pyS}
	}
	tricks := []trick{{Name: "fused"}, {Name: "no-cache"}}
	for _, mode := range []string{"train", "infer"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			rep := &report{Plan: "perf512", Reps: 1, Tricks: tricks, Rows: []*result{{
				row:    row{"unet", 8, 512, 64, 2, 2, 1},
				Modes:  map[string]*pair{mode: measured(2, 4)},
				Tricks: map[string]map[string]*pair{"fused": {mode: measured(1.5, 3)}, "no-cache": {mode: measured(3, 4)}},
			}}}
			require.NoError(t, write(dir, "x", rep))
			b, err := os.ReadFile(filepath.Join(dir, "x.md"))
			require.NoError(t, err)
			md := string(b)
			assert.Contains(t, md, "| unet | 8 | 512² | "+mode+" | 4.000 | 2.000 (0.50) | 1.500 (0.38, 0.50) | 3.000 |")
			assert.Contains(t, md, "| unet | 8 | 512² | "+mode+" | 900 / 800 | 900 / 800 | 900 / 800 |")
			assert.Equal(t, 1, strings.Count(md, "| unet | 8 | 512² | "+mode+" | 4.000"), "one tricks line for the mode measured")
		})
	}
}
