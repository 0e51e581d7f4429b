//go:build unix

package safetensors

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// When the temporary file cannot be created, WriteFile returns an error
// naming the path and the existing file stays as it was. A read-only
// directory does not stop root (CI runs as root), so the creation is made to
// fail by lowering the open-file limit to the lowest free descriptor, which
// stops root too. The limit is the process's: nothing else in this package
// runs in parallel with it.
func TestWriteFileCannotCreateTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	require.NoError(t, WriteFile(path, &File{Metadata: map[string]string{"v": "old"}}))

	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	probe, err := os.Open(os.DevNull)
	require.NoError(t, err)
	lowest := uint64(probe.Fd())
	require.NoError(t, probe.Close())

	low := lim
	low.Cur = lowest
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low))
	err = WriteFile(path, sampleFile())
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim))

	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.EMFILE)
	assert.Contains(t, err.Error(), path)
	got, err := ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "old", got.Metadata["v"])
	assert.Equal(t, []string{"model.safetensors"}, dirNames(t, dir), "no temporary file left")
}
