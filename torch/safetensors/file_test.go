package safetensors

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dirNames lists the entries of dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFileReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	want := sampleFile()
	require.NoError(t, WriteFile(path, want))

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, encode(t, want), b)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o644), fi.Mode().Perm())
	assert.Equal(t, []string{"model.safetensors"}, dirNames(t, dir), "no temporary files left")

	got, err := ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, encode(t, want), encode(t, got))

	// Replacing keeps the existing mode.
	require.NoError(t, os.Chmod(path, 0o600))
	require.NoError(t, WriteFile(path, &File{Metadata: map[string]string{"v": "2"}}))
	fi, err = os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
	got, err = ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"v": "2"}, got.Metadata)
	assert.Equal(t, []string{"model.safetensors"}, dirNames(t, dir))
}

func TestWriteFileRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	require.NoError(t, WriteFile("rel.safetensors", sampleFile()))
	_, err := ReadFile(filepath.Join(dir, "rel.safetensors"))
	require.NoError(t, err)
	assert.Equal(t, []string{"rel.safetensors"}, dirNames(t, dir))
}

// A write that fails midway must leave the old file intact and remove the
// temporary file.
func TestWriteFileAtomicOnWriteError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	old := &File{Metadata: map[string]string{"version": "old"}, Tensors: []Tensor{FromFloat32("w", []int64{1}, []float32{1})}}
	require.NoError(t, WriteFile(path, old))
	oldBytes, err := os.ReadFile(path)
	require.NoError(t, err)

	big := &File{Tensors: []Tensor{FromFloat32("big", []int64{1 << 20}, make([]float32, 1<<20))}}
	for _, limit := range []int{0, 100, 3 << 20} {
		err := writeFile(path, big, func(w io.Writer) io.Writer {
			return &limitWriter{w: w, left: limit}
		})
		require.ErrorIs(t, err, errDiskFull, "limit %d", limit)
		assert.Contains(t, err.Error(), path)

		b, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, oldBytes, b, "old file must be untouched")
		assert.Equal(t, []string{"model.safetensors"}, dirNames(t, dir), "temporary file must be removed")
	}
}

// limitWriter forwards up to left bytes to w, then fails.
type limitWriter struct {
	w    io.Writer
	left int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.left {
		n, _ := l.w.Write(p[:l.left])
		l.left = 0
		return n, errDiskFull
	}
	l.left -= len(p)
	return l.w.Write(p)
}

func TestWriteFileInvalidFileCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	require.NoError(t, os.WriteFile(path, []byte("old"), 0o644))

	bad := &File{Tensors: []Tensor{FromFloat32("w", []int64{3}, []float32{1})}}
	err := WriteFile(path, bad)
	require.ErrorIs(t, err, ErrInvalid)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, path, e.Path)
	assert.Equal(t, "w", e.Tensor)
	assert.Contains(t, err.Error(), path)

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "old", string(b))
	assert.Equal(t, []string{"model.safetensors"}, dirNames(t, dir))
}

// A temporary file that cannot be created beside the target (its "directory"
// is a regular file) is an error naming the path, and nothing is written.
// File permissions cannot make this fail for root, who runs CI; the
// descriptor-limit case in file_unix_test.go covers an existing target.
func TestWriteFileDirIsAFile(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notDir, []byte("old"), 0o644))
	path := filepath.Join(notDir, "model.safetensors")

	err := WriteFile(path, sampleFile())
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.ENOTDIR)
	assert.Contains(t, err.Error(), path)
	b, err := os.ReadFile(notDir)
	require.NoError(t, err)
	assert.Equal(t, "old", string(b))
}

func TestWriteFileErrors(t *testing.T) {
	dir := t.TempDir()
	// Target is a directory.
	sub := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(sub, 0o755))
	err := WriteFile(sub, &File{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), sub)
	fi, err := os.Stat(sub)
	require.NoError(t, err)
	assert.True(t, fi.IsDir())

	// Missing parent directory.
	missing := filepath.Join(dir, "nope", "x.safetensors")
	err = WriteFile(missing, &File{})
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), missing)
	assert.Equal(t, []string{"sub"}, dirNames(t, dir))
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.safetensors")
	_, err := ReadFile(missing)
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), missing)

	bad := filepath.Join(dir, "bad.safetensors")
	require.NoError(t, os.WriteFile(bad, raw(`{"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}`, []byte{1, 2}), 0o644))
	_, err = ReadFile(bad)
	require.ErrorIs(t, err, ErrTruncated)
	var e *Error
	require.True(t, errors.As(err, &e))
	assert.Equal(t, bad, e.Path)
	assert.Equal(t, "x", e.Tensor)
	assert.Contains(t, err.Error(), "safetensors: "+bad+`: tensor "x": `)
}
