package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bench --profile: the Chrome trace written, the operators printed; an
// existing trace is kept unless --force.
func TestBenchProfile(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "trace.json")
	args := []string{"jmedseg", "bench", "--model", "unet", "--width", "4", "--batch", "1", "--size", "32",
		"--steps", "1", "--warmup", "0", "--threads", "1", "--profile", trace, "--profile-top", "5"}
	run := func(extra ...string) (string, error) {
		var out bytes.Buffer
		app := App()
		app.Writer, app.ErrWriter = &out, &out
		err := app.RunContext(context.Background(), append(append([]string(nil), args...), extra...))
		return out.String(), err
	}
	out, err := run()
	require.NoError(t, err, out)
	assert.Contains(t, out, "operator")
	assert.Contains(t, out, "(Chrome trace: "+trace+")")
	assert.Contains(t, out, "more operators")
	b, err := os.ReadFile(trace)
	require.NoError(t, err)
	require.True(t, json.Valid(b))
	assert.Contains(t, string(b), "aten::")

	require.NoError(t, os.WriteFile(trace, []byte("mine"), 0o644))
	_, err = run()
	require.ErrorContains(t, err, "--force")
	b, _ = os.ReadFile(trace)
	assert.Equal(t, "mine", string(b), "kept without --force")

	out, err = run("--force", "--json")
	require.NoError(t, err, out)
	var r struct {
		Profile []struct {
			Name  string `json:"name"`
			Calls int64  `json:"calls"`
		} `json:"profile"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	assert.NotEmpty(t, r.Profile)
	b, _ = os.ReadFile(trace)
	assert.True(t, json.Valid(b), "replaced with --force")
}
