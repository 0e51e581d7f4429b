package report

import (
	"fmt"
	"image"
	"image/png"
	"io"
	"os"

	"github.com/jmedseg/jmedseg/internal/atomicfile"
)

// writeAtomic writes path through a temporary file in the same directory,
// renamed into place once fully written; on failure nothing is left behind.
func writeAtomic(path string, write func(io.Writer) error) error {
	if err := atomicfile.Write(path, write); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// SavePNG encodes img as a PNG file at path, atomically: the file appears
// complete or not at all.
func SavePNG(path string, img image.Image) error {
	if img == nil {
		return fmt.Errorf("report: SavePNG %s: nil image", path)
	}
	return writeAtomic(path, func(w io.Writer) error { return png.Encode(w, img) })
}

// mkdirAll creates dir and its parents.
func mkdirAll(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
