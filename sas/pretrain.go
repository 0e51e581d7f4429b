// Package sas holds the SAS recipe's training beyond plain supervision:
// self-supervised contrastive pretraining of a segmentation network's
// encoder (the reference's memory-bank InfoNCE, MoCo and SimCLR), and the
// SAS experiment, which measures the recipe against its parts (Run). The
// spatial transformer, a model part, is models.WithSTN.
package sas

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jmedseg/jmedseg/augment"
	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
	"github.com/jmedseg/jmedseg/torch/optim"
)

// Encoder is a segmentation network whose encoder can be pretrained: the
// models that implement models.SASEncoder (UNet to down4, DeepLab to the
// ASPP output).
type Encoder = models.SASEncoder

// Method is a contrastive pretraining method.
type Method string

// The pretraining methods.
const (
	// MemBank is the reference's: queries and keys from the same encoder
	// (keys detached), a queue of past keys as negatives, InfoNCE.
	MemBank Method = "membank"
	// MoCo is momentum contrast (He et al. 2020): keys from a momentum copy
	// of the encoder and head, computed without gradients, a queue of
	// past keys as negatives, InfoNCE with a temperature.
	MoCo Method = "moco"
	// SimCLR (Chen et al. 2020): both views through the encoder with
	// gradients, the other images of the batch as negatives, NT-Xent.
	SimCLR Method = "simclr"
)

// Methods lists the pretraining methods.
var Methods = []Method{MemBank, MoCo, SimCLR}

// ParseMethod reads a method name (case-insensitive).
func ParseMethod(s string) (Method, error) {
	for _, m := range Methods {
		if strings.EqualFold(s, string(m)) {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown pretraining method %q (want membank, moco or simclr)", s)
}

// usesQueue reports whether the method keeps a queue of negatives.
func (m Method) usesQueue() bool { return m == MemBank || m == MoCo }

// PretrainOptions configure contrastive pretraining. Zero values select
// the defaults noted.
type PretrainOptions struct {
	Method      Method  // membank
	Epochs      int     // 20
	Batch       int     // 8
	LR          float64 // 1e-5 (the reference's), Adam
	Queue       int     // 1024 negatives (membank, moco)
	Temperature float64 // 0.07
	Dim         int64   // 128
	// Momentum is MoCo's key-encoder momentum m in key ← m·key + (1−m)·query
	// (0.999, MoCo's); 0 selects it, so a momentum of 0 cannot be asked
	// for (use a tiny one).
	Momentum float64
	Size     [2]int // view size (H, W)
	Channels int    // image channels the model takes
	// Norm is the input normalisation after [0, 1] scaling: it must be the
	// one the fine-tuning run uses (train.Options.Normalize; zero is the
	// default, [0, 1] scaling alone, as in training).
	Norm models.Normalization
	// NewKey builds a fresh model of the encoder's layout for MoCo's key
	// encoder (its weights are copied from the encoder). Needed for MoCo.
	NewKey  func() (Encoder, error)
	Workers int
	Seed    uint64
	Device  torch.Device
	OnEpoch func(EpochStats)
}

func (o *PretrainOptions) defaults() {
	if o.Method == "" {
		o.Method = MemBank
	}
	if o.Epochs == 0 {
		o.Epochs = 20
	}
	if o.Batch == 0 {
		o.Batch = 8
	}
	if o.LR == 0 {
		o.LR = 1e-5
	}
	if o.Queue == 0 {
		o.Queue = 1024
	}
	if o.Temperature == 0 {
		o.Temperature = 0.07
	}
	if o.Dim == 0 {
		o.Dim = 128
	}
	if o.Momentum == 0 {
		o.Momentum = 0.999
	}
	if o.Norm.Scale == "" {
		o.Norm.Scale = models.ScaleUnit
	}
}

func (o *PretrainOptions) validate() error {
	if _, err := ParseMethod(string(o.Method)); err != nil {
		return fmt.Errorf("sas: %w", err)
	}
	switch {
	case o.Size[0] <= 0 || o.Size[1] <= 0:
		return fmt.Errorf("sas: pretraining needs a view size")
	case o.Channels != 1 && o.Channels != 3:
		return fmt.Errorf("sas: pretraining takes 1- or 3-channel images, not %d", o.Channels)
	case o.Epochs < 1 || o.Batch < 1 || o.Queue < 1 || o.Dim < 1:
		return fmt.Errorf("sas: epochs %d, batch %d, queue %d and dimension %d must be positive", o.Epochs, o.Batch, o.Queue, o.Dim)
	case !(o.LR > 0) || math.IsInf(o.LR, 0):
		return fmt.Errorf("sas: learning rate %g: want a positive finite number", o.LR)
	case !(o.Temperature > 0) || math.IsInf(o.Temperature, 0):
		return fmt.Errorf("sas: temperature %g: want a positive finite number", o.Temperature)
	case !(o.Momentum > 0 && o.Momentum < 1):
		return fmt.Errorf("sas: momentum %g: want a number between 0 and 1", o.Momentum)
	case o.Method == MoCo && o.NewKey == nil:
		return fmt.Errorf("sas: MoCo needs a key encoder (PretrainOptions.NewKey)")
	}
	if err := o.Norm.Check(int64(o.Channels)); err != nil {
		return fmt.Errorf("sas: %w", err)
	}
	return nil
}

// Chance is the top-1 accuracy of guessing the positive at random among
// the candidates of one query: 1/(1+Queue) with a queue, 1/(2·Batch−1)
// for SimCLR.
func (o PretrainOptions) Chance() float64 {
	o.defaults()
	if o.Method.usesQueue() {
		return 1 / float64(1+o.Queue)
	}
	return 1 / float64(max(2*o.Batch-1, 1))
}

// EpochStats record one epoch of pretraining.
type EpochStats struct {
	Epoch int `json:"epoch"`
	// Loss is the mean contrastive loss over the epoch's steps.
	Loss float64 `json:"loss"`
	// Accuracy is the contrastive task's positive-pair top-1 accuracy: the
	// fraction of queries (of embeddings, for SimCLR) whose most similar
	// candidate is their positive, counted before each step's update.
	Accuracy float64 `json:"positive_top1"`
	Steps    int     `json:"steps"`
	Seconds  float64 `json:"seconds"`
}

// View is one augmented view for pretraining: the reference's
// RandomResizedCrop (scale 0.2–1), colour jitter p=0.8, Gaussian blur
// p=0.5 and horizontal flip; then, unlike the reference (which used
// ImageNet statistics here and none in fine-tuning), norm, the input
// normalisation fine-tuning uses. With the default normalisation the
// views are scaled to [0, 1] alone, as in supervised training.
func View(w, h int, norm models.Normalization) augment.Pipeline {
	p := augment.Compose(
		augment.RandomResizedCrop{Width: w, Height: h, ScaleMin: 0.2, ScaleMax: 1},
		augment.Maybe(0.8, augment.SASJitter),
		augment.Maybe(0.5, augment.SASBlur),
		augment.HFlip{P: 0.5},
	)
	if len(norm.Mean) > 0 {
		p = append(p, augment.Normalize{Mean: norm.Mean, Std: norm.Std})
	}
	return p
}

// Learner is contrastive pretraining's state: the encoder and its
// projection head under training, the key encoder and head (MoCo), the
// queue of negatives (membank, MoCo) and the optimizer. Step trains on one
// batch of view pairs.
type Learner struct {
	o         PretrainOptions
	enc       Encoder
	head      *Projection
	params    []*torch.Tensor // the encoder's parameters Encode uses, then the head's
	key       Encoder
	keyHead   *Projection
	keyParams []*torch.Tensor // their twins in the key encoder and head
	opt       optim.Optimizer
	queue     *torch.Tensor
	ptr       int64
	channels  int64 // of Encode's output
}

// NewLearner prepares pretraining of enc (already on o.Device): a
// projection head sized by the encoder's output, Adam over the encoder's
// parameters (those Encode uses) and the head, and for MoCo the key
// encoder and head as copies of both. The queue starts as random unit
// vectors (torch's generator). Close frees what it made.
func NewLearner(enc Encoder, o PretrainOptions) (*Learner, error) {
	o.defaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	used, c, err := encoderUse(enc, o.Channels, o.Size, o.Device)
	if err != nil {
		return nil, err
	}
	enc.Train(true)
	l := &Learner{o: o, enc: enc, channels: c}
	ok := false
	defer func() {
		if !ok {
			l.Close()
		}
	}()
	if l.head, err = newHead(c, o.Dim, o.Device); err != nil {
		return nil, err
	}
	var names []string
	for _, p := range enc.NamedParameters() {
		if used[parentPath(p.Name)] {
			l.params = append(l.params, p.Tensor)
			names = append(names, p.Name)
		}
	}
	l.params = append(l.params, l.head.Parameters()...)
	if o.Method == MoCo {
		if err := l.buildKey(names); err != nil {
			return nil, err
		}
	}
	opt, err := optim.NewAdam(optim.AdamConfig{LR: o.LR}, optim.Params(l.params))
	if err != nil {
		return nil, err
	}
	l.opt = opt
	if o.Method.usesQueue() {
		l.queue = torch.Randn([]int64{int64(o.Queue), o.Dim}, o.Device)
		torch.NoGrad(func() {
			n := l.queue.Norm(2, []int64{1}, true)
			err = l.queue.DivInPlace(n)
			n.Free()
		})
		if err != nil {
			return nil, err
		}
	}
	ok = true
	return l, nil
}

func newHead(c, dim int64, dev torch.Device) (*Projection, error) {
	h := NewProjection(c, dim)
	if err := h.Err(); err != nil {
		h.Free()
		return nil, err
	}
	if err := h.To(dev); err != nil {
		h.Free()
		return nil, err
	}
	return h, nil
}

// buildKey makes MoCo's key encoder and head: copies of the encoder's
// whole state and of the head, frozen, in training mode (their BatchNorm
// layers use batch statistics, as MoCo's key encoder does).
func (l *Learner) buildKey(names []string) error {
	key, err := l.o.NewKey()
	if err != nil {
		return fmt.Errorf("sas: building MoCo's key encoder: %w", err)
	}
	l.key = key
	if err := key.Err(); err != nil {
		return err
	}
	if err := key.To(l.o.Device); err != nil {
		return err
	}
	if err := copyState(key, l.enc); err != nil {
		return fmt.Errorf("sas: MoCo's key encoder: %w", err)
	}
	if l.keyHead, err = newHead(l.channels, l.o.Dim, l.o.Device); err != nil {
		return err
	}
	if err := copyState(l.keyHead, l.head); err != nil {
		return err
	}
	if err := key.Freeze(); err != nil {
		return err
	}
	if err := l.keyHead.Freeze(); err != nil {
		return err
	}
	key.Train(true)
	kp := map[string]*torch.Tensor{}
	for _, p := range key.NamedParameters() {
		kp[p.Name] = p.Tensor
	}
	for _, n := range names {
		t, ok := kp[n]
		if !ok {
			return fmt.Errorf("sas: MoCo's key encoder has no parameter %q: NewKey built another layout", n)
		}
		l.keyParams = append(l.keyParams, t)
	}
	l.keyParams = append(l.keyParams, l.keyHead.Parameters()...)
	return nil
}

// copyState copies src's state dict into dst's, entry by entry by name;
// both must have the same entries with the same shapes.
func copyState(dst, src nn.Node) error {
	sd := map[string]*torch.Tensor{}
	for _, n := range src.StateDict() {
		sd[n.Name] = n.Tensor
	}
	var err error
	torch.NoGrad(func() {
		for _, n := range dst.StateDict() {
			t, ok := sd[n.Name]
			if !ok {
				err = fmt.Errorf("the copy has %q, the original does not", n.Name)
				return
			}
			if err = n.Tensor.CopyFrom(t); err != nil {
				err = fmt.Errorf("%s: %w", n.Name, err)
				return
			}
		}
	})
	return err
}

// Head is the projection head under training.
func (l *Learner) Head() *Projection { return l.head }

// Key returns MoCo's key encoder and head (nil for the other methods).
func (l *Learner) Key() (Encoder, *Projection) { return l.key, l.keyHead }

// Queue is the queue of negatives [Queue, Dim] (nil for SimCLR). It is
// the learner's: read it, do not free it.
func (l *Learner) Queue() *torch.Tensor { return l.queue }

// Close frees the head, the key encoder and head, the queue and the
// optimizer (not the encoder, which is the caller's).
func (l *Learner) Close() {
	if l.opt != nil {
		l.opt.Free()
		l.opt = nil
	}
	if l.head != nil {
		l.head.Free()
	}
	if l.keyHead != nil {
		l.keyHead.Free()
	}
	if l.key != nil {
		l.key.Free()
	}
	if l.queue != nil {
		l.queue.Free()
	}
	l.head, l.keyHead, l.key, l.queue = nil, nil, nil, nil
}

// StepResult is one training step: its loss, and how many of its Count
// queries found their positive first (top-1).
type StepResult struct {
	Loss        float64
	Hits, Count int
}

// Step trains on one batch: v1 and v2 [N, C, H, W] hold two views of the
// same N images (the caller's; they are not freed). The queries are v1's,
// the keys v2's (SimCLR: both are both). A loss that is not finite is an
// error, returned before any weight changes.
func (l *Learner) Step(v1, v2 *torch.Tensor) (StepResult, error) {
	s := torch.NewScope()
	defer s.Close()
	a, b := s.Track(v1.Shallow()), s.Track(v2.Shallow())
	var logits, targets, keys *torch.Tensor
	switch l.o.Method {
	case SimCLR:
		z1 := l.head.Forward(l.enc.Encode(a))
		z2 := l.head.Forward(l.enc.Encode(b))
		logits = NTXentLogits(z1, z2, l.o.Temperature)
		targets = NTXentTargets(z1.Size(0), z1.Device(), s)
	default:
		q := l.head.Forward(l.enc.Encode(a))
		var err error
		torch.NoGrad(func() {
			if l.o.Method == MoCo {
				// MoCo updates the key encoder before it encodes the keys.
				if err = MomentumUpdate(l.keyParams, l.params, l.o.Momentum); err != nil {
					return
				}
				keys = l.keyHead.Forward(l.key.Encode(b))
				return
			}
			keys = l.head.Forward(l.enc.Encode(b)) // the reference: the same encoder
		})
		if err != nil {
			return StepResult{}, err
		}
		logits = InfoNCELogits(q, keys, l.queue, l.o.Temperature)
		targets = infoNCETargets(q)
	}
	loss := torch.CrossEntropy(logits, targets, nil, torch.ReduceMean, torch.NoIgnoreIndex, 0)
	v, err := loss.Item()
	if err != nil {
		return StepResult{}, err
	}
	r := StepResult{Loss: v, Count: int(logits.Size(0))}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return r, fmt.Errorf("the contrastive loss is %v", v)
	}
	if r.Hits, err = Top1(logits, targets); err != nil {
		return r, err
	}
	if err := loss.Backward(); err != nil {
		return r, err
	}
	if err := l.opt.Step(); err != nil {
		return r, err
	}
	if err := l.opt.ZeroGrad(); err != nil {
		return r, err
	}
	if keys != nil {
		return r, enqueue(l.queue, keys, &l.ptr, s)
	}
	return r, nil
}

// Pretrain trains enc's encoder (already on o.Device) and a projection
// head on two views of each image of samples with the chosen method. Unlike
// the reference, the projection head is optimised too, and the views are
// normalised as fine-tuning normalises its inputs (o.Norm). It returns the
// record of each epoch finished.
func Pretrain(ctx context.Context, enc Encoder, samples []data.Sample, o PretrainOptions) ([]EpochStats, error) {
	o.defaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	if len(samples) < 2 {
		return nil, fmt.Errorf("sas: pretraining needs at least 2 images, got %d", len(samples))
	}
	loader, err := data.NewLoader(samples, data.LoaderOptions{BatchSize: o.Batch, Workers: o.Workers, Shuffle: true, DropLast: len(samples) > o.Batch,
		Seed: o.Seed, Transform: View(o.Size[1], o.Size[0], o.Norm), Channels: o.Channels, Views: 2, NoMask: true})
	if err != nil {
		return nil, err
	}
	l, err := NewLearner(enc, o)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var hist []EpochStats
	for epoch := 0; epoch < o.Epochs; epoch++ {
		start := time.Now()
		sum, steps, hits, count := 0.0, 0, 0, 0
		for b, err := range loader.Epoch(ctx, epoch) {
			if err != nil {
				return hist, err
			}
			r, err := l.batch(b)
			if err != nil {
				return hist, fmt.Errorf("sas: epoch %d, batch %d: %w", epoch+1, steps+1, err)
			}
			sum += r.Loss
			steps++
			hits += r.Hits
			count += r.Count
		}
		if ctx.Err() != nil {
			return hist, ctx.Err()
		}
		e := EpochStats{Epoch: epoch + 1, Loss: sum / float64(max(steps, 1)), Accuracy: float64(hits) / float64(max(count, 1)),
			Steps: steps, Seconds: time.Since(start).Seconds()}
		hist = append(hist, e)
		if o.OnEpoch != nil {
			o.OnEpoch(e)
		}
	}
	return hist, nil
}

// batch runs one loader batch through Step.
func (l *Learner) batch(b *data.Batch) (StepResult, error) {
	s := torch.NewScope()
	defer s.Close()
	sh := b.Image.Shape
	shape := []int64{int64(sh[0]), int64(sh[1]), int64(sh[2]), int64(sh[3])}
	v1 := torch.FromSlice(b.Image.Data, shape, s)
	v2 := torch.FromSlice(b.Views[0].Data, shape, s)
	if l.o.Device != torch.CPU {
		v1, v2 = v1.ToDevice(l.o.Device), v2.ToDevice(l.o.Device)
	}
	return l.Step(v1, v2)
}

// encoderUse finds the module paths with a parameter that Encode uses, by
// a backward pass through Encode on one zero image of channels ×
// size[0] × size[1] on dev, in evaluation mode so that no statistic
// moves, and the channels of Encode's output. Gradients are cleared before
// and after; the training mode is restored.
func encoderUse(enc Encoder, channels int, size [2]int, dev torch.Device) (map[string]bool, int64, error) {
	if err := enc.ZeroGrad(); err != nil {
		return nil, 0, err
	}
	wasTraining := enc.Training()
	enc.Eval()
	defer enc.Train(wasTraining)
	var err error
	var c int64
	used := map[string]bool{}
	torch.WithGrad(func() {
		s := torch.NewScope()
		defer s.Close()
		x := torch.Zeros([]int64{1, int64(channels), int64(size[0]), int64(size[1])}, dev, s)
		f := enc.Encode(x)
		if err = f.Err(); err != nil {
			return
		}
		if f.Dim() != 4 {
			err = fmt.Errorf("Encode gave a %d-D output %v, want [N, C, H, W]", f.Dim(), f.Shape())
			return
		}
		c = f.Size(1)
		if err = f.Sum().Backward(); err != nil {
			return
		}
		for _, p := range enc.NamedParameters() {
			if g := p.Tensor.Grad(); g != nil {
				s.Track(g)
				used[parentPath(p.Name)] = true
			}
		}
	})
	if err != nil {
		return nil, 0, fmt.Errorf("sas: running the encoder on a %dx%d input: %w", size[0], size[1], err)
	}
	if err := enc.ZeroGrad(); err != nil {
		return nil, 0, err
	}
	if len(used) == 0 {
		return nil, 0, fmt.Errorf("sas: Encode uses none of the model's parameters")
	}
	return used, c, nil
}

// EncoderState returns the entries of enc's state dict that belong to its
// encoder: those of every module with a parameter that Encode uses (its
// weights, and buffers such as BatchNorm statistics), found by a backward
// pass through Encode on one zero image of channels × size[0] × size[1] on
// dev, in evaluation mode so that no statistic moves. Gradients are cleared
// before and after. The tensors are enc's own (not copies).
func EncoderState(enc Encoder, channels int, size [2]int, dev torch.Device) ([]nn.Named, error) {
	used, _, err := encoderUse(enc, channels, size, dev)
	if err != nil {
		return nil, err
	}
	var out []nn.Named
	for _, n := range enc.StateDict() {
		if used[parentPath(n.Name)] {
			out = append(out, n)
		}
	}
	return out, nil
}

// parentPath is the module path of a state-dict key ("a.b.weight" → "a.b").
func parentPath(key string) string {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i]
	}
	return ""
}
