package py

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheckTwin(t *testing.T) {
	for _, tc := range []struct {
		twin, err string
	}{
		{"unet.UNet", ""},
		{"setr.SETR", ""},
		{"unet.Up", ""},
		{"unet.UNe", "defines no class UNe"},
		{"nope.UNet", "no twins/nope.py"},
		{"UNet", "not module.Class"},
		{"", "not module.Class"},
		{"unet.UNet.x", "not module.Class"},
	} {
		err := CheckTwin(tc.twin)
		if tc.err == "" {
			assert.NoError(t, err, tc.twin)
		} else {
			assert.ErrorContains(t, err, tc.err, tc.twin)
		}
	}
}

// Every embedded oracle script is there for Run.
func TestScriptsEmbedded(t *testing.T) {
	for _, s := range []string{"ops_oracle.py", "nn_oracle.py", "optim_oracle.py", "safetensors_gen.py", "stio.py", "twin_check.py"} {
		_, err := files.ReadFile(s)
		assert.NoError(t, err, s)
	}
}

// recorder is a testing.TB that notes Skipf and Fatalf instead of stopping.
type recorder struct {
	testing.TB
	skipped, failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Skipf(string, ...any)  { r.skipped = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

// Without PyTorch a test skips, except on CI, where it fails.
func TestMissingPythonFailsOnCI(t *testing.T) {
	missing := errors.New("no torch")
	for _, tc := range []struct {
		name       string
		err        error
		ci         bool
		skip, fail bool
	}{
		{"present", nil, false, false, false},
		{"present on CI", nil, true, false, false},
		{"missing", missing, false, true, false},
		{"missing on CI", missing, true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			requirePython(r, tc.err, tc.ci)
			assert.Equal(t, tc.skip, r.skipped, "skipped")
			assert.Equal(t, tc.fail, r.failed, "failed")
		})
	}
}

func TestOnCI(t *testing.T) {
	for v, want := range map[string]bool{"": false, "0": false, "false": false, "FALSE": false, "1": true, "true": true, "yes": true} {
		t.Setenv("CI", v)
		assert.Equal(t, want, OnCI(), "CI=%q", v)
	}
}
