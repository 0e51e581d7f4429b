package data

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
)

// LoaderOptions configures a Loader. Zero values take the documented
// defaults.
type LoaderOptions struct {
	// BatchSize is the number of samples per batch (default 8).
	BatchSize int
	// Workers is the number of decoding goroutines (default GOMAXPROCS).
	Workers int
	// Prefetch bounds how many batches are prepared ahead of the consumer
	// (default 2×Workers).
	Prefetch int
	// Shuffle permutes the samples every epoch (from Seed and the epoch).
	Shuffle bool
	// DropLast drops a final batch smaller than BatchSize.
	DropLast bool
	// Seed drives shuffling and every transform.
	Seed uint64
	// Transform is applied to every example (nil: none).
	Transform Transform
	// Channels is the image channel count after collation (default 3):
	// 1 or 3 for single images (grey images are replicated to 3), or the
	// count of a multi-channel sample's channel files (a *Planes), up to
	// MaxChannels. It does not apply to examples a transform already
	// converted to float (augment.Normalize).
	Channels int
	// Views is the number of independently transformed views per sample
	// (default 1; 2 for contrastive pretraining).
	Views int
	// NoMask loads images only (pretraining, prediction).
	NoMask bool
	// Classes, when positive, makes masks with labels outside [0, Classes)
	// bad samples.
	Classes int
	// Ignore, when positive, is a label masks may hold besides [0, Classes):
	// the void label of a loss that ignores it (such as ce(ignore=255)).
	Ignore int
	// SkipBad skips samples that cannot be loaded, transformed or collated
	// instead of stopping the epoch; they are reported in Batch.Skipped and
	// counted by Loader.Skipped.
	SkipBad bool
}

// Batch is one collated batch.
type Batch struct {
	// Epoch and Index locate the batch: Index counts batches within the
	// epoch from 0.
	Epoch, Index int
	// Image is N×C×H×W float32 (view 0).
	Image *Tensor[float32]
	// Views holds views 1..Views-1, each N×C×H×W.
	Views []*Tensor[float32]
	// Mask is N×H×W int64 class ids (view 0), nil with NoMask.
	Mask *Tensor[int64]
	// Names are the image files of the rows; Indices their positions in the
	// loader's sample list.
	Names   []string
	Indices []int
	// Skipped lists the bad samples left out of this batch (SkipBad), plus
	// those of preceding batches that had no good sample at all.
	Skipped []error
}

// Loader produces batches of samples in parallel. Results depend only on
// the options, the epoch and the samples, never on goroutine scheduling:
// the random generator of sample i in epoch e, view v is seeded from
// (Seed, e, i, v).
type Loader struct {
	samples []Sample
	opts    LoaderOptions
	skipped atomic.Int64
	mu      sync.Mutex
	errs    []error
}

// NewLoader returns a loader over samples.
func NewLoader(samples []Sample, opts LoaderOptions) (*Loader, error) {
	if len(samples) == 0 {
		return nil, errors.New("loader: no samples")
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = 8
	}
	if opts.Workers == 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Prefetch == 0 {
		opts.Prefetch = 2 * opts.Workers
	}
	if opts.Channels == 0 {
		opts.Channels = 3
	}
	if opts.Views == 0 {
		opts.Views = 1
	}
	switch {
	case opts.BatchSize < 0, opts.Workers < 0, opts.Prefetch < 0, opts.Views < 0:
		return nil, fmt.Errorf("loader: negative option in %+v", opts)
	case opts.Channels < 1 || opts.Channels > MaxChannels:
		return nil, fmt.Errorf("loader: wrong channel count %d (want 1 to %d)", opts.Channels, MaxChannels)
	case opts.DropLast && len(samples) < opts.BatchSize:
		return nil, fmt.Errorf("loader: %d samples make no full batch of %d", len(samples), opts.BatchSize)
	}
	return &Loader{samples: samples, opts: opts}, nil
}

// Len returns the number of batches per epoch.
func (l *Loader) Len() int {
	n, b := len(l.samples), l.opts.BatchSize
	if l.opts.DropLast {
		return n / b
	}
	return (n + b - 1) / b
}

// Skipped returns how many bad samples have been skipped so far.
func (l *Loader) Skipped() int64 { return l.skipped.Load() }

// SkippedErrors returns the errors of every sample skipped so far, each
// naming its file, in the order the batches were produced.
func (l *Loader) SkippedErrors() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

func (l *Loader) noteSkipped(errs []error) {
	if len(errs) == 0 {
		return
	}
	l.skipped.Add(int64(len(errs)))
	l.mu.Lock()
	l.errs = append(l.errs, errs...)
	l.mu.Unlock()
}

// Order returns the sample order of an epoch.
func (l *Loader) Order(epoch int) []int {
	if !l.opts.Shuffle {
		o := make([]int, len(l.samples))
		for i := range o {
			o[i] = i
		}
		return o
	}
	r := rand.New(rand.NewPCG(mix(l.opts.Seed, 0x5eed), mix(uint64(epoch), 0xe90c)))
	return r.Perm(len(l.samples))
}

// mix is a splitmix64-style hash of two words.
func mix(a, b uint64) uint64 {
	z := a*0x9e3779b97f4a7c15 ^ (b + 0x632be59bd9b4e019 + a<<6 + a>>2)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// SampleRand returns the generator used for sample index in epoch, view.
func (l *Loader) SampleRand(epoch, index, view int) *rand.Rand {
	return rand.New(rand.NewPCG(mix(l.opts.Seed, uint64(epoch)), mix(uint64(index), uint64(view))))
}

// Epoch returns an iterator over the batches of one epoch. Without SkipBad
// the first bad sample ends the epoch with an error naming its file. The
// iterator stops its goroutines before it returns, whether the loop ran to
// the end, broke early or ctx was cancelled (then it yields ctx.Err()).
func (l *Loader) Epoch(ctx context.Context, epoch int) iter.Seq2[*Batch, error] {
	return func(yield func(*Batch, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		order := l.Order(epoch)
		type result struct {
			b   *Batch
			err error
		}
		type job struct {
			index int
			out   chan result
		}
		slots := make(chan chan result, l.opts.Prefetch)
		jobs := make(chan job)
		var wg sync.WaitGroup
		wg.Go(func() { // dispatcher
			defer close(slots)
			defer close(jobs)
			for b := range l.Len() {
				out := make(chan result, 1)
				select {
				case slots <- out:
				case <-ctx.Done():
					return
				}
				select {
				case jobs <- job{b, out}:
				case <-ctx.Done():
					return
				}
			}
		})
		for range l.opts.Workers {
			wg.Go(func() {
				for j := range jobs {
					lo := j.index * l.opts.BatchSize
					hi := min(lo+l.opts.BatchSize, len(order))
					b, err := l.batch(ctx, epoch, j.index, order[lo:hi])
					j.out <- result{b, err}
				}
			})
		}
		defer wg.Wait()
		defer cancel()
		var pending []error // skipped in batches that came out empty
		for out := range slots {
			var r result
			select {
			case r = <-out:
			case <-ctx.Done():
				yield(nil, ctx.Err())
				return
			}
			if r.err != nil {
				yield(nil, r.err)
				return
			}
			l.noteSkipped(r.b.Skipped)
			if r.b.Image == nil { // every sample skipped
				pending = append(pending, r.b.Skipped...)
				continue
			}
			r.b.Skipped = append(pending, r.b.Skipped...)
			pending = nil
			if !yield(r.b, nil) {
				return
			}
		}
		if err := ctx.Err(); err != nil {
			yield(nil, err)
		}
	}
}
