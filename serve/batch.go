package serve

import (
	"context"
	"errors"
	"image"
	"os"
	"sync"
	"time"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/infer"
)

var (
	errQueueFull = errors.New("the model's queue is full")
	errClosed    = errors.New("the server is shutting down")
)

// job is one request's work for a model: a 2D image to batch with others,
// or a NIfTI volume predicted on its own (a volume is a batch of slices).
type job struct {
	ctx    context.Context
	img    image.Image // a 2D image, or
	volIn  string      // a NIfTI file to predict into
	volOut string      // this file
	done   chan result // buffered: a worker never waits for the handler
}

type result struct {
	mask *data.Mask // of img
	err  error
}

// batcher runs one model's jobs: each worker takes the first job waiting,
// waits up to window for more images (up to max) and predicts them in one
// call.
type batcher struct {
	p      *infer.Predictor
	jobs   chan *job
	max    int
	window time.Duration
	m      *modelMetrics
	mu     sync.RWMutex // submit holds it for reading, close for writing
	closed bool
	wg     sync.WaitGroup
}

func newBatcher(p *infer.Predictor, maxBatch int, window time.Duration, workers, queue int, m *modelMetrics) *batcher {
	b := &batcher{p: p, jobs: make(chan *job, queue), max: maxBatch, window: window, m: m}
	b.wg.Add(workers)
	for range workers {
		go b.work()
	}
	return b
}

// submit queues j, or fails at once when the queue is full or closed.
func (b *batcher) submit(j *job) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return errClosed
	}
	select {
	case b.jobs <- j:
		b.m.queued.Set(float64(len(b.jobs)))
		return nil
	default:
		return errQueueFull
	}
}

// wait submits j and waits for its result or the end of j.ctx.
func (b *batcher) wait(j *job) result {
	j.done = make(chan result, 1)
	if err := b.submit(j); err != nil {
		return result{err: err}
	}
	select {
	case r := <-j.done:
		return r
	case <-j.ctx.Done():
		return result{err: j.ctx.Err()}
	}
}

// close stops taking jobs and returns when the workers have answered every
// queued one.
func (b *batcher) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.jobs)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *batcher) work() {
	defer b.wg.Done()
	var next *job // a volume met while gathering a batch
	for {
		j := next
		next = nil
		if j == nil {
			var ok bool
			if j, ok = <-b.jobs; !ok {
				return
			}
		}
		if j.volIn != "" {
			b.runVolume(j)
			continue
		}
		batch := []*job{j}
		var timer *time.Timer
		var expired <-chan time.Time
		if b.window > 0 && b.max > 1 {
			timer = time.NewTimer(b.window)
			expired = timer.C
		}
	gather:
		for len(batch) < b.max {
			var k *job
			var ok bool
			if expired == nil { // no window: only the jobs already waiting
				select {
				case k, ok = <-b.jobs:
				default:
					break gather
				}
			} else {
				select {
				case k, ok = <-b.jobs:
				case <-expired:
					break gather
				}
			}
			if !ok {
				break gather
			}
			if k.volIn != "" {
				next = k
				break gather
			}
			batch = append(batch, k)
		}
		if timer != nil {
			timer.Stop()
		}
		b.m.queued.Set(float64(len(b.jobs)))
		b.runBatch(batch)
	}
}

// runBatch predicts the images of the jobs still wanted, in one call; when
// that fails, each on its own, so that one bad image fails only itself.
func (b *batcher) runBatch(batch []*job) {
	live := batch[:0:0]
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.done <- result{err: err} // timed out or gone while queued
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	imgs := make([]image.Image, len(live))
	for i, j := range live {
		imgs[i] = j.img
	}
	start := time.Now()
	masks, err := b.p.PredictBatch(imgs)
	b.m.batches.Observe(float64(len(live)))
	b.m.inference.Observe(time.Since(start).Seconds())
	if err == nil {
		for i, j := range live {
			j.done <- result{mask: masks[i]}
		}
		return
	}
	if len(live) == 1 {
		live[0].done <- result{err: err}
		return
	}
	for _, j := range live {
		m, err := b.p.Predict(j.img)
		j.done <- result{mask: m, err: err}
	}
}

// runVolume predicts a NIfTI volume from file to file.
func (b *batcher) runVolume(j *job) {
	if err := j.ctx.Err(); err != nil {
		j.done <- result{err: err}
		return
	}
	start := time.Now()
	err := b.p.Volume(j.volIn, j.volOut)
	b.m.batches.Observe(1)
	b.m.inference.Observe(time.Since(start).Seconds())
	if err != nil || j.ctx.Err() != nil {
		os.Remove(j.volOut) // nobody will read it
	}
	j.done <- result{err: err}
}
