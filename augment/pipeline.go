package augment

import (
	"fmt"
	"math/rand/v2"

	"github.com/jmedseg/jmedseg/data"
)

// Pipeline applies its transforms in order; it is itself a data.Transform.
type Pipeline []data.Transform

// Compose returns a Pipeline of ts.
func Compose(ts ...data.Transform) Pipeline { return Pipeline(ts) }

// Apply runs every transform in order and stops at the first error.
func (p Pipeline) Apply(r *rand.Rand, ex *data.Example) error {
	for _, t := range p {
		if err := t.Apply(r, ex); err != nil {
			return err
		}
	}
	return nil
}

// Maybe applies t with probability p. The decision consumes one random
// number whether or not t runs.
func Maybe(p float64, t data.Transform) data.Transform {
	return &maybe{p: p, t: t}
}

type maybe struct {
	p float64
	t data.Transform
}

func (m *maybe) Apply(r *rand.Rand, ex *data.Example) error {
	if r.Float64() < m.p {
		return m.t.Apply(r, ex)
	}
	return nil
}

func (m *maybe) String() string { return fmt.Sprintf("Maybe(%g, %v)", m.p, m.t) }

// uniform draws from [lo, hi).
func uniform(r *rand.Rand, lo, hi float64) float64 {
	return lo + (hi-lo)*r.Float64()
}

// checkExample validates that ex has an image and, if it has a mask, that
// the mask matches the image size.
func checkExample(ex *data.Example) error {
	if ex.Image == nil {
		return fmt.Errorf("%s: no image", ex.Name)
	}
	if ex.Float != nil {
		return fmt.Errorf("%s: image already converted to float (put Normalize last)", ex.Name)
	}
	if ex.Mask != nil {
		b := ex.Image.Bounds()
		if ex.Mask.W != b.Dx() || ex.Mask.H != b.Dy() {
			return fmt.Errorf("%s: mask of the wrong size: %dx%d, image is %dx%d", ex.Name, ex.Mask.W, ex.Mask.H, b.Dx(), b.Dy())
		}
	}
	return nil
}
