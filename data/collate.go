package data

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
)

// LoadExample reads the image and (unless noMask) the mask of a sample and
// checks that they agree: a missing mask, a mask of the wrong size and,
// with classes > 0, labels outside [0, classes) are errors naming the file.
func LoadExample(s Sample, noMask bool, classes int) (*Example, error) {
	return loadExample(s, noMask, classes, 0)
}

// loadExample is LoadExample where masks may also hold the label void
// (when it is not in [0, classes); 0: none).
func loadExample(s Sample, noMask bool, classes int, void int) (*Example, error) {
	img, err := ReadSampleImage(s)
	if err != nil {
		return nil, err
	}
	ex := &Example{Name: s.Image, Image: img}
	if noMask {
		return ex, nil
	}
	if s.Mask == "" {
		return nil, &FileError{File: s.Image, Err: fmt.Errorf("image has no mask")}
	}
	m, err := ReadMask(s.Mask)
	if err != nil {
		return nil, err
	}
	if b := img.Bounds(); b.Dx() != m.W || b.Dy() != m.H {
		return nil, &FileError{File: s.Mask, Err: fmt.Errorf("mask of the wrong size: %dx%d, image %s is %dx%d", m.W, m.H, s.Image, b.Dx(), b.Dy())}
	}
	if classes > 0 {
		if err := m.checkRange(classes, void); err != nil {
			return nil, &FileError{File: s.Mask, Err: fmt.Errorf("labels out of range: %w", err)}
		}
	}
	ex.Mask = m
	return ex, nil
}

// prepared holds the float views and mask of one sample.
type prepared struct {
	idx   int
	views []*Tensor[float32]
	mask  *Mask
}

// prepare loads one sample and makes its views.
func (l *Loader) prepare(epoch, idx int) (*prepared, error) {
	s := l.samples[idx]
	p := &prepared{idx: idx}
	base, err := loadExample(s, l.opts.NoMask, l.opts.Classes, l.opts.Ignore)
	if err != nil {
		return nil, err
	}
	for v := range l.opts.Views {
		ex := base
		if l.opts.Views > 1 {
			c := *base
			if base.Mask != nil {
				c.Mask = base.Mask.Clone()
			}
			ex = &c
		}
		if l.opts.Transform != nil {
			if err := safeApply(l.opts.Transform, l.SampleRand(epoch, idx, v), ex); err != nil {
				return nil, &FileError{File: s.Image, Err: fmt.Errorf("transform: %w", err)}
			}
		}
		t := ex.Float
		if t == nil {
			if t, err = ToCHW(ex.Image, l.opts.Channels); err != nil {
				return nil, &FileError{File: s.Image, Err: err}
			}
		}
		if len(t.Shape) != 3 || len(t.Data) != t.Shape[0]*t.Shape[1]*t.Shape[2] {
			return nil, &FileError{File: s.Image, Err: fmt.Errorf("transform produced a tensor of shape %v, want C×H×W", t.Shape)}
		}
		if ex.Mask != nil && (ex.Mask.W != t.Shape[2] || ex.Mask.H != t.Shape[1]) {
			return nil, &FileError{File: s.Mask, Err: fmt.Errorf("mask of the wrong size after transform: %dx%d, image %dx%d", ex.Mask.W, ex.Mask.H, t.Shape[2], t.Shape[1])}
		}
		p.views = append(p.views, t)
		if v == 0 {
			p.mask = ex.Mask
		}
	}
	return p, nil
}

// batch loads and collates the samples idx.
func (l *Loader) batch(ctx context.Context, epoch, index int, idx []int) (*Batch, error) {
	b := &Batch{Epoch: epoch, Index: index}
	var ok []*prepared
	bad := func(err error) error {
		if !l.opts.SkipBad {
			return err
		}
		b.Skipped = append(b.Skipped, err)
		return nil
	}
	for _, i := range idx {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, err := l.prepare(epoch, i)
		if err == nil && len(ok) > 0 && !slices.Equal(p.views[0].Shape, ok[0].views[0].Shape) {
			err = &FileError{File: l.samples[i].Image, Err: fmt.Errorf("collated shape %v differs from %v of %s in the same batch (add augment.Resize)",
				p.views[0].Shape, ok[0].views[0].Shape, l.samples[ok[0].idx].Image)}
		}
		if err != nil {
			if err := bad(err); err != nil {
				return nil, err
			}
			continue
		}
		ok = append(ok, p)
	}
	if len(ok) == 0 {
		return b, nil
	}
	n := len(ok)
	shape := ok[0].views[0].Shape
	plane := shape[0] * shape[1] * shape[2]
	for v := range l.opts.Views {
		t := &Tensor[float32]{Data: make([]float32, n*plane), Shape: []int{n, shape[0], shape[1], shape[2]}}
		for r, p := range ok {
			if !slices.Equal(p.views[v].Shape, shape) {
				return nil, &FileError{File: l.samples[p.idx].Image, Err: fmt.Errorf("view %d has shape %v, view 0 %v", v, p.views[v].Shape, shape)}
			}
			copy(t.Data[r*plane:], p.views[v].Data)
		}
		if v == 0 {
			b.Image = t
		} else {
			b.Views = append(b.Views, t)
		}
	}
	if !l.opts.NoMask {
		hw := shape[1] * shape[2]
		m := &Tensor[int64]{Data: make([]int64, n*hw), Shape: []int{n, shape[1], shape[2]}}
		for r, p := range ok {
			for i, v := range p.mask.Pix {
				m.Data[r*hw+i] = int64(v)
			}
		}
		b.Mask = m
	}
	for _, p := range ok {
		b.Names = append(b.Names, l.samples[p.idx].Image)
		b.Indices = append(b.Indices, p.idx)
	}
	return b, nil
}

// safeApply runs a transform and turns a panic into an error, so that one
// faulty transform cannot bring the whole process down.
func safeApply(t Transform, r *rand.Rand, ex *Example) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return t.Apply(r, ex)
}
