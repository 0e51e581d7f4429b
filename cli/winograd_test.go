package cli

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/torch"
)

// TestWinogradFlag: every command's --winograd sets the process-wide mode;
// a bad value names the flag and the choices.
func TestWinogradFlag(t *testing.T) {
	defer torch.SetWinograd(torch.SetWinograd(torch.Winograd()))
	// bench with an unknown model: setup applies the flag, then the model
	// is refused (a cheap command to run in full).
	run := func(mode string) error { return runApp("bench", "--model", "no-such-model", "--winograd", mode) }
	err := run("fast")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `--winograd: winograd mode "fast": want off, inference or training`)

	require.ErrorContains(t, run("off"), "no-such-model")
	assert.Equal(t, torch.WinogradOff, torch.Winograd())
	if !torch.WinogradAvailable() {
		err := run("training")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "no Winograd kernels")
		return
	}
	for _, m := range []torch.WinogradMode{torch.WinogradInference, torch.WinogradTraining} {
		require.ErrorContains(t, run(m.String()), "no-such-model")
		assert.Equal(t, m, torch.Winograd())
	}
}

// TestCPUCacheFlag: every command's --cpu-cache sets the CPU block cache's
// limit; a bad value names the flag.
func TestCPUCacheFlag(t *testing.T) {
	defer torch.SetCPUCache(torch.CPUCacheLimit())
	run := func(v string) error { return runApp("bench", "--model", "no-such-model", "--cpu-cache", v) }
	err := run("lots")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `--cpu-cache: "lots" is not a size`)
	for _, c := range []struct {
		v    string
		want int64
	}{{"off", 0}, {"512MiB", 512 << 20}, {"0", 0}, {"3000000", 3000000}} {
		require.ErrorContains(t, run(c.v), "no-such-model")
		assert.Equal(t, c.want, torch.CPUCacheLimit(), c.v)
	}
}
