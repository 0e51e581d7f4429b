package train

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"strings"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/dist"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// Data-parallel training (Options.Group): every rank holds the whole model
// and trains on its own disjoint share of each global batch of
// world × --batch samples; c10d's Reducer averages the gradients in
// buckets while backward runs, so every rank takes the same optimiser step.
// The global batches are a single process's with --batch world × --batch:
// the order comes from the seed and the epoch, and rank r takes positions
// r·batch .. (r+1)·batch−1 of each. Rank 0 alone writes checkpoints, the
// report and progress.

// Dist is what Fit needs to train data-parallel.
type Dist struct {
	Group *dist.Group
	// Batches yields this rank's share of each global batch of an epoch.
	Batches func(ctx context.Context, epoch int) iter.Seq2[*data.Batch, error]
	// Steps is the number of global batches per epoch.
	Steps int
	// Validate scores the model on the validation split, sharded over the
	// group and reduced, so that the result is one process's.
	Validate func(ctx context.Context) (*Evaluation, error)
	// BucketBytes sizes the Reducer's buckets (0: DDP's 25 MiB).
	BucketBytes int64
}

// rank0 reports whether this process writes: rank 0, or not distributed.
func (t *Trainer) rank0() bool { return t.opt.Group == nil || t.opt.Group.Rank() == 0 }

// world is the number of ranks (1 when not distributed).
func (t *Trainer) world() int {
	if t.opt.Group == nil {
		return 1
	}
	return t.opt.Group.Size()
}

// rankSeed gives every rank its own augmentation stream, deterministic by
// seed and rank.
func rankSeed(seed uint64, rank int) uint64 {
	if rank == 0 {
		return seed
	}
	return seed ^ (uint64(rank) * 0x9e3779b97f4a7c15)
}

// shardLoader deals each global batch of global (a loader of world×batch
// samples per batch, whose Order is the single-process one) out to the
// ranks.
type shardLoader struct {
	global  *data.Loader
	samples []data.Sample
	opts    data.LoaderOptions // this rank's: BatchSize batch, in the given order
	rank    int
	world   int
}

func newShardLoader(samples []data.Sample, opts data.LoaderOptions, rank, world int) (*shardLoader, error) {
	batch := opts.BatchSize
	if len(samples) < world*batch {
		return nil, fmt.Errorf("train: %d ranks × --batch %d need at least %d training images (one global batch), the train split has %d: lower --batch or --nproc",
			world, batch, world*batch, len(samples))
	}
	g := opts
	g.BatchSize = world * batch
	g.DropLast = true // every rank must take the same number of steps
	global, err := data.NewLoader(samples, g)
	if err != nil {
		return nil, err
	}
	mine := opts
	mine.Shuffle = false
	mine.DropLast = true
	mine.Seed = rankSeed(opts.Seed, rank)
	return &shardLoader{global: global, samples: samples, opts: mine, rank: rank, world: world}, nil
}

// Epoch yields this rank's batches of epoch, in the global batches' order.
func (s *shardLoader) Epoch(ctx context.Context, epoch int) iter.Seq2[*data.Batch, error] {
	return func(yield func(*data.Batch, error) bool) {
		idx := shardOrder(s.global.Order(epoch), s.global.Len(), s.opts.BatchSize, s.rank, s.world)
		mine := make([]data.Sample, len(idx))
		for k, i := range idx {
			mine[k] = s.samples[i]
		}
		l, err := data.NewLoader(mine, s.opts)
		if err != nil {
			yield(nil, err)
			return
		}
		for batch, err := range l.Epoch(ctx, epoch) {
			if !yield(batch, err) {
				return
			}
		}
	}
}

// shardOrder is rank's share of steps global batches of world×batch
// samples taken from order: positions rank·batch .. (rank+1)·batch−1 of
// each, in order.
func shardOrder(order []int, steps, batch, rank, world int) []int {
	out := make([]int, 0, steps*batch)
	for g := range steps {
		lo := g*world*batch + rank*batch
		out = append(out, order[lo:lo+batch]...)
	}
	return out
}

// syncBN makes every BatchNorm of m normalise with the group's statistics.
func syncBN(m nn.Module, g *dist.Group) int {
	n := 0
	sync := func(x, w, b, rm, rv *torch.Tensor, momentum, eps float64) *torch.Tensor {
		return dist.SyncBatchNorm(g, x, w, b, rm, rv, momentum, eps)
	}
	for _, c := range m.NamedModules() {
		if bn, ok := c.Node.(*nn.BatchNorm); ok {
			bn.Sync = sync
			n++
		}
	}
	return n
}

// broadcastState copies rank 0's tensors into every rank's, one collective
// per dtype.
func broadcastState(g *dist.Group, named []nn.Named) error {
	byType := map[torch.DType][]*torch.Tensor{}
	var order []torch.DType
	for _, n := range named {
		dt := n.Tensor.DType()
		if _, ok := byType[dt]; !ok {
			order = append(order, dt)
		}
		byType[dt] = append(byType[dt], n.Tensor)
	}
	for _, dt := range order {
		if err := g.Broadcast(0, byType[dt]...); err != nil {
			return err
		}
	}
	return nil
}

// distErr says which rank failed and what that usually means.
func distErr(g *dist.Group, what string, err error) error {
	msg := err.Error()
	hint := ""
	switch {
	case strings.Contains(msg, "Timed out") || strings.Contains(msg, "timed out") || strings.Contains(msg, "Timeout"):
		hint = fmt.Sprintf(" (no answer within --dist-timeout %s: another rank hung or died)", g.Timeout())
	case strings.Contains(msg, "Connection closed") || strings.Contains(msg, "Connection reset") || strings.Contains(msg, "Broken pipe") ||
		strings.Contains(msg, "closed by peer") || strings.Contains(msg, "Socket"):
		hint = " (another rank died)"
	}
	var te *torch.Error
	if errors.As(err, &te) && len(te.Inputs) > 3 { // a broadcast of every weight: name two
		te.Inputs = append(te.Inputs[:2:2], fmt.Sprintf("... (%d tensors)", len(te.Inputs)))
	}
	return fmt.Errorf("rank %d of %d: %s failed%s: %w", g.Rank(), g.Size(), what, hint, err)
}

// agree all-reduces one step's loss and flags so that every rank takes the
// same decision: the group's mean loss (the global batch's, for a loss that
// averages over images), whether any rank's loss was not finite, and
// whether any rank was asked to stop.
func agree(g *dist.Group, loss float64, stop bool) (mean float64, nonFinite, stopAll bool, err error) {
	bad := 0.0
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		bad, loss = 1, 0
	}
	st := 0.0
	if stop {
		st = 1
	}
	s := torch.NewScope()
	defer s.Close()
	v := torch.FromSlice([]float64{loss, bad, st}, []int64{3}, s)
	if err := g.AllReduce(dist.Sum, v); err != nil {
		return 0, false, false, err
	}
	out, err := v.Float64s()
	if err != nil {
		return 0, false, false, err
	}
	if out[1] > 0 {
		return math.NaN(), true, out[2] > 0, nil
	}
	return out[0] / float64(g.Size()), false, out[2] > 0, nil
}

// distStep is trainStep on one rank of a group: the Reducer averages the
// gradients during backward. stop is this rank's wish to stop (Ctrl-C);
// stopAll is the group's.
func distStep(job Job, r *dist.Reducer, b *data.Batch, stop bool) (loss float64, stopAll bool, err error) {
	if b.Mask == nil {
		return 0, false, errors.New("the batch has no masks (a loader with NoMask cannot train)")
	}
	g := job.Dist.Group
	s := torch.NewScope()
	defer s.Close()
	x, y := batchTensors(b, job.Device, s)
	if err := r.PrepareForward(); err != nil {
		return 0, false, distErr(g, "preparing the forward", err)
	}
	l := job.Loss.Forward(job.Model.Forward(x), y)
	v, err := l.Item()
	if err != nil {
		if isDistErr(err) {
			return 0, false, distErr(g, "the forward (SyncBatchNorm)", err)
		}
		return 0, false, err
	}
	mean, bad, stopAll, err := agree(g, v, stop)
	if err != nil {
		return 0, false, distErr(g, "the loss all-reduce", err)
	}
	if bad {
		return mean, stopAll, nil // every rank stops before the weights are touched
	}
	if err := r.PrepareBackward(l); err != nil {
		return 0, false, distErr(g, "preparing the backward", err)
	}
	if err := l.Backward(); err != nil {
		return 0, false, distErr(g, "the gradient all-reduce", err)
	}
	if err := job.Optimizer.Step(); err != nil {
		return 0, false, err
	}
	if err := job.Optimizer.ZeroGrad(); err != nil {
		return 0, false, err
	}
	if job.Scheduler != nil {
		job.Scheduler.Step()
	}
	return mean, stopAll, nil
}

// isDistErr tells a failed collective inside an op (SyncBatchNorm) from a
// plain op error.
func isDistErr(err error) bool {
	msg := err.Error()
	for _, s := range []string{"gloo", "Gloo", "Connection", "Timed out", "closed by peer", "Socket"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// trainParams are the parameters the Reducer averages: those that train.
func trainParams(m nn.Module) []*torch.Tensor {
	var out []*torch.Tensor
	for _, p := range m.Parameters() {
		if p.RequiresGrad() {
			out = append(out, p)
		}
	}
	return out
}
