// Package sas holds the SAS recipe's training beyond plain supervision:
// self-supervised contrastive pretraining of a segmentation network's
// encoder (and later the SAS experiment). The spatial transformer, a model
// part, is models.WithSTN.
package sas

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jmedseg/jmedseg/augment"
	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
	"github.com/jmedseg/jmedseg/torch/optim"
)

// Encoder is a segmentation network whose encoder can be pretrained: UNet
// (to down4) and DeepLab (to the ASPP output).
type Encoder interface {
	nn.Module
	Encode(x *torch.Tensor) *torch.Tensor
}

// Projection is the contrastive projection head: adaptive average pooling
// to 2×2, flatten, ReLU, Linear(4C, dim), L2 normalisation.
type Projection struct {
	nn.Base
	fc *nn.Linear
}

// NewProjection maps C-channel feature maps to dim-dimensional unit vectors.
func NewProjection(c, dim int64) *Projection {
	p := &Projection{}
	p.fc = nn.Register(&p.Base, "fc", nn.NewLinear(4*c, dim))
	return p
}

// Forward implements nn.Module.
func (p *Projection) Forward(f *torch.Tensor) *torch.Tensor {
	z := p.fc.Forward(torch.AdaptiveAvgPool2d(f, [2]int64{2, 2}).Flatten(1, -1).Relu())
	return z.Div(z.Norm(2, []int64{1}, true).ClampMin(1e-12))
}

// InfoNCE is the contrastive loss of queries q [N, D] against their positive
// keys k [N, D] and a queue of negatives [K, D], all unit vectors: cross-
// entropy of [q·k, q·queue] / temperature with the positive at index 0.
func InfoNCE(q, k, queue *torch.Tensor, temperature float64) *torch.Tensor {
	pos := q.Mul(k).SumDims([]int64{1}, true)
	neg := q.Matmul(q.Scope().Track(queue.Transpose(0, 1))) // queue has no scope
	logits := torch.Cat([]*torch.Tensor{pos, neg}, 1).DivScalar(temperature)
	labels := q.Scope().Track(torch.Zeros([]int64{q.Size(0)}, torch.Int64, q.Device()))
	return torch.CrossEntropy(logits, labels, nil, torch.ReduceMean, torch.NoIgnoreIndex, 0)
}

// PretrainOptions configure contrastive pretraining.
type PretrainOptions struct {
	Epochs      int     // 20
	Batch       int     // 8
	LR          float64 // 1e-5 (the reference's)
	Queue       int     // 1024 negatives
	Temperature float64 // 0.07
	Dim         int64   // 128
	Size        [2]int  // view size (H, W)
	Channels    int     // image channels the model takes
	Workers     int
	Seed        uint64
	Device      torch.Device
	OnEpoch     func(epoch int, loss float64, seconds float64)
}

// View is one augmented view for pretraining: the reference's
// RandomResizedCrop (scale 0.2–1), colour jitter p=0.8, Gaussian blur
// p=0.5 and horizontal flip, without ImageNet normalisation so that the
// encoder sees inputs scaled as in supervised training ([0, 1]).
func View(w, h int) augment.Pipeline {
	return augment.Compose(
		augment.RandomResizedCrop{Width: w, Height: h, ScaleMin: 0.2, ScaleMax: 1},
		augment.Maybe(0.8, augment.SASJitter),
		augment.Maybe(0.5, augment.SASBlur),
		augment.HFlip{P: 0.5},
	)
}

// Pretrain trains enc's encoder and a projection head with InfoNCE on two
// views of each image, keys from the same encoder (detached) and a queue of
// past keys as negatives, as the reference does. Unlike the reference, the
// projection head is optimised too. It returns the mean loss of each epoch.
func Pretrain(ctx context.Context, enc Encoder, samples []data.Sample, o PretrainOptions) ([]float64, error) {
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
	if o.Size[0] <= 0 || o.Size[1] <= 0 {
		return nil, fmt.Errorf("sas: pretraining needs a view size")
	}
	if len(samples) < 2 {
		return nil, fmt.Errorf("sas: pretraining needs at least 2 images, got %d", len(samples))
	}
	// The encoder's width decides the head's input.
	var c int64
	torch.NoGrad(func() {
		s := torch.NewScope()
		defer s.Close()
		enc.Eval()
		f := enc.Encode(torch.Zeros([]int64{1, int64(o.Channels), int64(o.Size[0]), int64(o.Size[1])}, o.Device, s))
		c = f.Size(1)
	})
	enc.Train(true)
	if c == 0 {
		return nil, fmt.Errorf("sas: the encoder gave no output for a %dx%d input", o.Size[0], o.Size[1])
	}
	head := NewProjection(c, o.Dim)
	defer head.Free()
	if err := head.Err(); err != nil {
		return nil, err
	}
	if err := head.To(o.Device); err != nil {
		return nil, err
	}
	params := append(enc.Parameters(), head.Parameters()...)
	opt, err := optim.NewAdam(optim.AdamConfig{LR: o.LR}, optim.Params(params))
	if err != nil {
		return nil, err
	}
	defer opt.Free()
	queue := torch.Randn([]int64{int64(o.Queue), o.Dim}, o.Device)
	torch.NoGrad(func() {
		n := queue.Norm(2, []int64{1}, true)
		_ = queue.DivInPlace(n)
		n.Free()
	})
	defer queue.Free()
	ptr := int64(0)
	loader, err := data.NewLoader(samples, data.LoaderOptions{BatchSize: o.Batch, Workers: o.Workers, Shuffle: true, DropLast: len(samples) > o.Batch,
		Seed: o.Seed, Transform: View(o.Size[1], o.Size[0]), Channels: o.Channels, Views: 2, NoMask: true})
	if err != nil {
		return nil, err
	}
	var losses []float64
	for epoch := 0; epoch < o.Epochs; epoch++ {
		start := time.Now()
		sum, n := 0.0, 0
		for b, err := range loader.Epoch(ctx, epoch) {
			if err != nil {
				return losses, err
			}
			l, err := contrastiveStep(enc, head, opt, queue, &ptr, b, o)
			if err != nil {
				return losses, fmt.Errorf("sas: epoch %d: %w", epoch+1, err)
			}
			if math.IsNaN(l) || math.IsInf(l, 0) {
				return losses, fmt.Errorf("sas: epoch %d: the contrastive loss is %v", epoch+1, l)
			}
			sum += l
			n++
		}
		if ctx.Err() != nil {
			return losses, ctx.Err()
		}
		losses = append(losses, sum/float64(max(n, 1)))
		if o.OnEpoch != nil {
			o.OnEpoch(epoch+1, losses[len(losses)-1], time.Since(start).Seconds())
		}
	}
	return losses, nil
}

func contrastiveStep(enc Encoder, head *Projection, opt optim.Optimizer, queue *torch.Tensor, ptr *int64, b *data.Batch, o PretrainOptions) (float64, error) {
	s := torch.NewScope()
	defer s.Close()
	shape := []int64{int64(b.Image.Shape[0]), int64(b.Image.Shape[1]), int64(b.Image.Shape[2]), int64(b.Image.Shape[3])}
	v1 := torch.FromSlice(b.Image.Data, shape, s).ToDevice(o.Device)
	v2 := torch.FromSlice(b.Views[0].Data, shape, s).ToDevice(o.Device)
	q := head.Forward(enc.Encode(v1))
	k := head.Forward(enc.Encode(v2)).Detach()
	l := InfoNCE(q, k, queue, o.Temperature)
	v, err := l.Item()
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return v, err
	}
	if err := l.Backward(); err != nil {
		return 0, err
	}
	if err := opt.Step(); err != nil {
		return 0, err
	}
	if err := opt.ZeroGrad(); err != nil {
		return 0, err
	}
	return v, enqueue(queue, k, ptr, s)
}

// enqueue writes keys k [n, D] into the ring buffer queue [K, D] at *ptr,
// replacing the oldest entries, and advances *ptr.
func enqueue(queue, k *torch.Tensor, ptr *int64, s *torch.Scope) error {
	var err error
	torch.NoGrad(func() {
		kq, n := queue.Size(0), k.Size(0)
		for done := int64(0); done < n && err == nil; {
			m := min(n-done, kq-*ptr)
			err = s.Track(queue.Narrow(0, *ptr, m)).CopyFrom(k.Narrow(0, done, m))
			done += m
			*ptr = (*ptr + m) % kq
		}
	})
	return err
}

// EncoderState returns the entries of enc's state dict that belong to its
// encoder: those of every module with a parameter that Encode uses (its
// weights, and buffers such as BatchNorm statistics), found by a backward
// pass through Encode on one zero image of channels × size[0] × size[1] on
// dev, in evaluation mode so that no statistic moves. Gradients are cleared
// before and after. The tensors are enc's own (not copies).
func EncoderState(enc Encoder, channels int, size [2]int, dev torch.Device) ([]nn.Named, error) {
	if err := enc.ZeroGrad(); err != nil {
		return nil, err
	}
	wasTraining := enc.Training()
	enc.Eval()
	defer enc.Train(wasTraining)
	var err error
	used := map[string]bool{} // module paths with a parameter Encode reaches
	torch.WithGrad(func() {
		s := torch.NewScope()
		defer s.Close()
		x := torch.Zeros([]int64{1, int64(channels), int64(size[0]), int64(size[1])}, dev, s)
		if err = enc.Encode(x).Sum().Backward(); err != nil {
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
		return nil, fmt.Errorf("sas: finding the encoder's weights: %w", err)
	}
	if err := enc.ZeroGrad(); err != nil {
		return nil, err
	}
	var out []nn.Named
	for _, n := range enc.StateDict() {
		if used[parentPath(n.Name)] {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("sas: Encode uses none of the model's parameters")
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
