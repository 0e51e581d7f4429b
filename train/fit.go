package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/loss"
	"github.com/jmedseg/jmedseg/report"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/dist"
	"github.com/jmedseg/jmedseg/torch/nn"
	"github.com/jmedseg/jmedseg/torch/optim"
)

// Job is a training job made of values the caller built: a model, an
// optimizer, a loss and data loaders. Fit runs it. The directory-and-flags
// path (New, Options, jmedseg train) builds a Job and adds checkpoints,
// resumption and the report on top.
type Job struct {
	// Model is trained in place; it must already be on Device.
	Model nn.Module
	// Optimizer updates the parameters it was given (normally Model's).
	Optimizer optim.Optimizer
	// Scheduler, when set, is stepped after every optimiser step.
	Scheduler *optim.Scheduler
	// Loss compares Model's logits [N, C, H, W] with the masks [N, H, W].
	Loss loss.Loss
	// Train yields the training batches, masks included.
	Train *data.Loader
	// Val, when set, yields the validation batches, scored after every
	// epoch (its order should not be shuffled). Without it no epoch is the
	// best and the records' validation fields stay zero.
	Val *data.Loader
	// Classes names the classes in the validation metrics; by default
	// "class 0", "class 1", ... as many as the model predicts.
	Classes []string
	// Spacing gives an image's pixel spacing (row, column) in mm for the
	// validation's surface distances; nil: 1 mm.
	Spacing func(image string) [2]float64
	// Epochs is the total number of epochs, those Start counts as done
	// included.
	Epochs int
	// StepsPerEpoch, when positive, caps the batches of an epoch.
	StepsPerEpoch int
	// Device is where batches go.
	Device torch.Device
	// Start is where to begin: zero for a new job, or a Progress an earlier
	// run handed to OnEpoch or OnInterrupt, with the model, optimizer,
	// scheduler and RNG restored to that point, to continue exactly.
	Start Progress
	// OnEvent receives "step" and "epoch" events; may be nil.
	OnEvent func(Event)
	// OnEpoch, when set, is called after each epoch's validation and before
	// its "epoch" event, with the progress (the epoch counted as done), the
	// epoch's record and whether it is the best so far by validation
	// foreground Dice. Save checkpoints here; an error stops Fit.
	OnEpoch func(p Progress, rec report.Epoch, best bool) error
	// OnInterrupt, when set, is called when ctx is cancelled, after the
	// step under way, with the progress to resume from (Batch counts the
	// batches of the unfinished epoch already trained). Its error, if any,
	// is what Fit returns.
	OnInterrupt func(p Progress) error
	// Dist, when set, trains data-parallel on one rank of a process group
	// (see dist.go): batches, steps and validation come from it, and Train
	// and Val are not used. Cancelling ctx on any rank stops every rank
	// after the same step.
	Dist *Dist
}

// Progress is how far a job has come: with the model, optimizer, scheduler
// and RNG state, enough to continue it exactly.
type Progress struct {
	Epoch     int            // epochs finished
	Batch     int            // batches of epoch Epoch+1 already trained (after an interruption)
	Step      int64          // optimiser steps taken
	History   report.History // a record per finished epoch
	Best      float64        // best validation foreground Dice, when BestEpoch > 0
	BestEpoch int            // 1-based epoch of Best; 0: none yet
	// LossSum and LossBatches are the training loss summed over the
	// batches of epoch Epoch+1 already trained, and their count (after an
	// interruption), so that the epoch's record covers all its batches.
	LossSum     float64
	LossBatches int
}

// Fit trains job.Model for the epochs job.Start has not done and returns
// the history of every epoch (job.Start's included). Every libtorch call
// of the job runs on one OS thread. Cancelling ctx stops after the step
// under way and calls OnInterrupt; the error wraps ctx.Err(). A NaN or
// infinite loss stops before the weights are touched, with an error
// wrapping ErrNonFinite that names the epoch and batch.
func Fit(ctx context.Context, job Job) (report.History, error) {
	switch {
	case job.Model == nil || job.Optimizer == nil || job.Loss == nil || job.Train == nil:
		return nil, errors.New("train: a job needs a model, an optimizer, a loss and a training loader")
	case job.Epochs < 1:
		return nil, fmt.Errorf("train: a job needs at least 1 epoch, has %d", job.Epochs)
	case job.Start.Epoch < 0 || job.Start.Batch < 0 || job.Start.Epoch > job.Epochs:
		return nil, fmt.Errorf("train: bad start %d epochs + %d batches for a job of %d epochs", job.Start.Epoch, job.Start.Batch, job.Epochs)
	}
	if err := job.Model.Err(); err != nil {
		return nil, fmt.Errorf("train: the model is broken: %w", err)
	}
	// One OS thread for every libtorch call of the job: glibc gives each
	// thread its own malloc arena, and a goroutine hopping between threads
	// spreads the step's tensors over several, raising peak memory.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	emit := func(e Event) {
		if job.OnEvent != nil {
			job.OnEvent(e)
		}
	}
	p := job.Start
	p.History = append(report.History(nil), p.History...)
	steps := job.Train.Len()
	batches := job.Train.Epoch
	world := 1
	var reducer *dist.Reducer
	if d := job.Dist; d != nil {
		// The ranks decide together when to stop (agree), so the loader
		// and validation must not see a cancellation one rank got alone.
		steps, batches, world = d.Steps, d.Batches, d.Group.Size()
		r, err := dist.NewReducer(d.Group, trainParams(job.Model), d.BucketBytes, true)
		if err != nil {
			return nil, distErr(d.Group, "making the gradient reducer", err)
		}
		defer r.Close()
		reducer = r
	}
	dataCtx := ctx
	if reducer != nil {
		dataCtx = context.WithoutCancel(ctx)
	}
	stopped := false // every rank agreed to stop (distributed), or ctx was cancelled
	if job.StepsPerEpoch > 0 && job.StepsPerEpoch < steps {
		steps = job.StepsPerEpoch
	}
	val := evalSetup{model: job.Model, dev: job.Device, lossFn: job.Loss, classes: job.Classes, spacing: job.Spacing}
	lr := func() float64 { return job.Optimizer.Groups()[0].LR }
	for epoch := p.Epoch; epoch < job.Epochs; epoch++ {
		job.Model.Train(true)
		start := time.Now()
		var sum float64
		var n, images int
		ran := 0 // batches trained in this process (timing), n: in the epoch (the loss)
		done := 0
		skip := 0
		if epoch == job.Start.Epoch && job.Start.Batch > 0 {
			skip = job.Start.Batch
			sum, n = job.Start.LossSum, job.Start.LossBatches // the batches before the interruption
		}
		for b, err := range batches(dataCtx, epoch) {
			if err != nil {
				if dataCtx.Err() != nil {
					break
				}
				return p.History, fmt.Errorf("train: epoch %d: %w", epoch+1, err)
			}
			if done >= steps {
				break
			}
			for _, bad := range b.Skipped {
				emit(Event{Kind: "info", Message: "skipped: " + bad.Error()})
			}
			if done < skip {
				done++ // trained before the interruption
				continue
			}
			var l float64
			var err error
			if reducer != nil {
				l, stopped, err = distStep(job, reducer, b, ctx.Err() != nil)
			} else {
				l, err = trainStep(job, b)
			}
			if err != nil {
				return p.History, fmt.Errorf("train: epoch %d, batch %d: %w", epoch+1, done+1, err)
			}
			if math.IsNaN(l) || math.IsInf(l, 0) {
				return p.History, fmt.Errorf("%w at epoch %d, batch %d (%v, lr %g): training stopped before the weights were touched",
					ErrNonFinite, epoch+1, done+1, l, lr())
			}
			p.Step++
			sum += l
			n++
			ran++
			done++
			images += len(b.Names) * world // the group's throughput
			el := time.Since(start).Seconds()
			ips := float64(images) / el
			left := time.Duration(float64(steps-done)*el/float64(max(ran, 1))*1e9) + time.Duration(float64((job.Epochs-epoch-1)*steps)*el/float64(max(ran, 1))*1e9)
			emit(Event{Kind: "step", Epoch: epoch + 1, Epochs: job.Epochs, Step: done, Steps: steps, Loss: l, LR: lr(), ImagesPerSec: ips, ETA: left})
			if reducer == nil && ctx.Err() != nil {
				stopped = true
			}
			if stopped {
				break
			}
		}
		if reducer == nil && ctx.Err() != nil {
			stopped = true
		}
		if stopped {
			p.Epoch, p.Batch = epoch, done
			p.LossSum, p.LossBatches = sum, n
			if job.OnInterrupt != nil {
				if err := job.OnInterrupt(p); err != nil {
					return p.History, err
				}
			}
			cause := ctx.Err()
			if cause == nil {
				cause = fmt.Errorf("another rank was interrupted: %w", context.Canceled)
			}
			return p.History, fmt.Errorf("train: interrupted at epoch %d, batch %d: %w", epoch+1, done, cause)
		}
		rec := report.Epoch{Epoch: epoch + 1, TrainLoss: sum / float64(max(n, 1)), LR: lr()}
		if ran > 0 {
			rec.ImagesPerSecond = float64(images) / time.Since(start).Seconds()
		}
		best := false
		if job.Val != nil || (job.Dist != nil && job.Dist.Validate != nil) {
			var ev *Evaluation
			var err error
			if job.Dist != nil {
				ev, err = job.Dist.Validate(dataCtx)
			} else {
				ev, err = evaluate(ctx, val, job.Val, nil, nil)
			}
			if err != nil {
				return p.History, fmt.Errorf("train: validating epoch %d: %w", epoch+1, err)
			}
			rec.ValLoss = ev.Loss
			rec.ValDice = float64(ev.Metrics.Split.Foreground.Dice)
			rec.ValIoU = float64(ev.Metrics.Split.Foreground.IoU)
			best = p.BestEpoch == 0 || math.IsNaN(p.Best) || rec.ValDice > p.Best
		}
		rec.Seconds = time.Since(start).Seconds()
		p.History = append(p.History, rec)
		p.Epoch, p.Batch = epoch+1, 0
		p.LossSum, p.LossBatches = 0, 0
		if best {
			p.Best, p.BestEpoch = rec.ValDice, epoch+1
		}
		if job.OnEpoch != nil {
			if err := job.OnEpoch(p, rec, best); err != nil {
				return p.History, err
			}
		}
		emit(Event{Kind: "epoch", Epoch: epoch + 1, Epochs: job.Epochs, Record: &rec, Best: best})
	}
	return p.History, nil
}

// trainStep runs one optimisation step and returns the loss; a non-finite
// loss returns before backward, leaving the weights untouched.
func trainStep(job Job, b *data.Batch) (float64, error) {
	if b.Mask == nil {
		return 0, fmt.Errorf("the batch has no masks (a loader with NoMask cannot train)")
	}
	s := torch.NewScope()
	defer s.Close()
	x, y := batchTensors(b, job.Device, s)
	l := job.Loss.Forward(job.Model.Forward(x), y)
	v, err := l.Item()
	if err != nil {
		return 0, err
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v, nil // the caller stops before the weights are touched
	}
	if err := l.Backward(); err != nil {
		return 0, err
	}
	if err := job.Optimizer.Step(); err != nil {
		return 0, err
	}
	if err := job.Optimizer.ZeroGrad(); err != nil {
		return 0, err
	}
	if job.Scheduler != nil {
		job.Scheduler.Step()
	}
	return v, nil
}

// batchTensors moves a collated batch onto dev inside scope s.
func batchTensors(b *data.Batch, dev torch.Device, s *torch.Scope) (x, y *torch.Tensor) {
	x = torch.FromSlice(b.Image.Data, shape64(b.Image.Shape), s).ToDevice(dev)
	if b.Mask != nil {
		y = torch.FromSlice(b.Mask.Data, shape64(b.Mask.Shape), s).ToDevice(dev)
	}
	return x, y
}

func shape64(s []int) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[i] = int64(v)
	}
	return out
}
