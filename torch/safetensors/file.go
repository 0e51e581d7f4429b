package safetensors

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ReadFile reads and decodes the safetensors file at path. Errors name the
// path; decoding errors are [*Error] values with Path set.
func ReadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := Decode(b)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Path = path
		}
		return nil, err
	}
	return f, nil
}

// WriteFile encodes f and writes it to path atomically: the data goes to a
// temporary file in the same directory, which is synced, closed and then
// renamed over path, after which the directory is synced. On any error the
// temporary file is removed and an existing file at path is left untouched.
//
// A new file gets mode 0644; a replaced file keeps its mode.
func WriteFile(path string, f *File) error {
	return writeFile(path, f, nil)
}

// writeFile implements WriteFile; wrap, if not nil, wraps the temporary
// file's writer (tests use it to inject write failures).
func writeFile(path string, f *File, wrap func(io.Writer) io.Writer) error {
	// Validate first so that an invalid File does not even create a
	// temporary file.
	if _, err := encodeHeader(f); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Path = path
		}
		return err
	}
	mode := fs.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("safetensors: write %s: not a regular file", path)
		}
		mode = fi.Mode().Perm()
	}

	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := writeTemp(tmp, f, mode, wrap); err != nil {
		tmp.Close() // may already be closed; that error is irrelevant
		os.Remove(tmp.Name())
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	// The new file is in place; make the rename durable.
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("safetensors: write %s: sync directory: %w", path, err)
	}
	return nil
}

// writeTemp encodes f into tmp, sets its mode, syncs and closes it.
func writeTemp(tmp *os.File, f *File, mode fs.FileMode, wrap func(io.Writer) io.Writer) error {
	var w io.Writer = tmp
	if wrap != nil {
		w = wrap(w)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if err := Encode(bw, f); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	return tmp.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
