package py

import (
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
