package data

import (
	"image"
	"math/rand/v2"
)

// Example is one decoded sample on its way through the transforms.
type Example struct {
	// Name identifies the sample in errors, normally the image file path.
	Name string
	// Image is the decoded image (grey or colour, 8- or 16-bit).
	Image image.Image
	// Mask is the label map, or nil when the sample has none.
	Mask *Mask
	// Float, when set by a transform (e.g. augment.Normalize), replaces
	// Image at collation time. It must be C×H×W.
	Float *Tensor[float32]
}

// Transform changes an example in place. Implementations must draw all
// randomness from r so that results are reproducible; they return errors
// instead of panicking.
type Transform interface {
	Apply(r *rand.Rand, ex *Example) error
}

// TransformFunc adapts a function to the Transform interface.
type TransformFunc func(r *rand.Rand, ex *Example) error

// Apply calls f(r, ex).
func (f TransformFunc) Apply(r *rand.Rand, ex *Example) error { return f(r, ex) }

// Tensor is a dense array with a shape, in C (row-major) order; the torch
// binding turns it into a tensor without copying semantics changing.
type Tensor[T float32 | int64] struct {
	Data  []T
	Shape []int
}
