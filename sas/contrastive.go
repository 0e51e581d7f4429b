package sas

import (
	"fmt"
	"math"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

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

// InfoNCELogits are the logits of the InfoNCE task of queries q [N, D]
// against their positive keys k [N, D] and a queue of negatives [K, D]
// (all unit vectors): [q·k, q·queue] / temperature, [N, 1+K], the positive
// in column 0.
func InfoNCELogits(q, k, queue *torch.Tensor, temperature float64) *torch.Tensor {
	pos := q.Mul(k).SumDims([]int64{1}, true)
	neg := q.Matmul(q.Scope().Track(queue.Transpose(0, 1))) // the queue has no scope
	return torch.Cat([]*torch.Tensor{pos, neg}, 1).DivScalar(temperature)
}

// InfoNCE is the contrastive loss of queries q [N, D] against their
// positive keys k [N, D] and a queue of negatives [K, D], all unit vectors:
// the cross-entropy of InfoNCELogits with the positive at index 0 (MoCo's
// loss, and the reference's).
func InfoNCE(q, k, queue *torch.Tensor, temperature float64) *torch.Tensor {
	logits := InfoNCELogits(q, k, queue, temperature)
	return torch.CrossEntropy(logits, infoNCETargets(q), nil, torch.ReduceMean, torch.NoIgnoreIndex, 0)
}

func infoNCETargets(q *torch.Tensor) *torch.Tensor {
	return q.Scope().Track(torch.Zeros([]int64{q.Size(0)}, torch.Int64, q.Device()))
}

// NTXentLogits are the logits of SimCLR's task for two views z1, z2 [N, D]
// (unit vectors) of N images: the similarities of the 2N embeddings
// [z1; z2] with each other divided by the temperature, [2N, 2N], with each
// embedding's similarity to itself masked out (−∞). Row i's positive is
// its other view, column (i+N) mod 2N (NTXentTargets); the other 2N−2
// columns are its negatives.
func NTXentLogits(z1, z2 *torch.Tensor, temperature float64) *torch.Tensor {
	z := torch.Cat([]*torch.Tensor{z1, z2}, 0)
	n := z.Size(0)
	sim := z.Matmul(z.Transpose(0, 1)).DivScalar(temperature)
	self := z.Scope().Track(torch.Eye(n, torch.Bool, z.Device()))
	return sim.MaskedFill(self, math.Inf(-1))
}

// NTXentTargets are the positives' columns of NTXentLogits for N images:
// N, N+1, …, 2N−1, 0, 1, …, N−1, in s (on dev).
func NTXentTargets(n int64, dev torch.Device, s *torch.Scope) *torch.Tensor {
	idx := make([]int64, 2*n)
	for i := range idx {
		idx[i] = (int64(i) + n) % (2 * n)
	}
	t := torch.FromSlice(idx, []int64{2 * n}, s)
	if dev != torch.CPU {
		t = t.ToDevice(dev)
	}
	return t
}

// NTXent is SimCLR's normalised-temperature cross-entropy for two views
// z1, z2 [N, D] (unit vectors) of N images, with in-batch negatives: the
// mean cross-entropy of NTXentLogits over all 2N embeddings.
func NTXent(z1, z2 *torch.Tensor, temperature float64) *torch.Tensor {
	logits := NTXentLogits(z1, z2, temperature)
	return torch.CrossEntropy(logits, NTXentTargets(z1.Size(0), z1.Device(), logits.Scope()), nil, torch.ReduceMean, torch.NoIgnoreIndex, 0)
}

// Top1 is the number of rows of logits [M, C] whose largest entry is in
// the column targets [M] names: the contrastive task's positive-pair
// top-1 hits.
func Top1(logits, targets *torch.Tensor) (int, error) {
	var hits float64
	var err error
	torch.NoGrad(func() {
		hits, err = logits.Argmax(1, false).Eq(targets).ToDType(torch.Float64).Sum().Item()
	})
	return int(math.Round(hits)), err
}

// MomentumUpdate moves every key tensor towards its query twin:
// key ← m·key + (1−m)·query (MoCo's key-encoder update), without
// recording gradients. The two lists pair up by position.
func MomentumUpdate(key, query []*torch.Tensor, m float64) error {
	if len(key) != len(query) {
		return fmt.Errorf("sas: momentum update of %d key tensors from %d query tensors", len(key), len(query))
	}
	var err error
	torch.NoGrad(func() {
		for i := range key {
			// lerp: key + (1−m)(query − key)
			if err = key[i].LerpInPlace(query[i], 1-m); err != nil {
				return
			}
		}
	})
	return err
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
