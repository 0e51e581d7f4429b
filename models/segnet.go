package models

import (
	"fmt"

	"github.com/jmedseg/jmedseg/models/encoder"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "segnet", Description: "SegNet (VGG16-BN encoder, max-pooling indices into max-unpooling, mirrored decoder)", DefaultWidth: 64, RefParams: 29_444_162, Multiple: 32,
		TestWidth: 4, TestSizes: [][2]int64{{32, 32}, {64, 96}, {128, 128}, {512, 512}}, Twin: "segnet.SegNet",
		Build: func(c Config) (nn.Module, error) { return NewSegNet(c), nil }})
}

// segnetStages are the convolutions per stage, shallow to deep, of VGG16
// and of SegNet's mirrored decoder.
var segnetStages = [5]int{2, 2, 3, 3, 3}

// SegNet is the reference's SegNet (model/SegNet.py). The encoder is
// models/encoder's VGG16-BN: five stages of 2, 2, 3, 3, 3 conv3 (with bias)
// + BatchNorm + ReLU at w, 2w, 4w, 8w, 8w channels, each followed by a 2×2
// max-pooling that keeps its indices. The decoder mirrors it: per stage,
// deepest first, a 2×2 max-unpooling to the positions of that stage's
// indices, then the stage's convolutions in reverse, each conv3 +
// BatchNorm + ReLU, the last of a stage mapping to the shallower stage's
// width; the very last, conv11d, maps w channels to the classes with
// neither norm nor ReLU.
//
// State-dict keys are the reference's flat attribute names rather than
// VGG's "features.N": the encoder's convolutions and norms are registered
// as "conv11", "bn11", "conv12", "bn12", "conv21", ... "conv53", "bn53",
// and the decoder's as "conv53d", "bn53d", "conv52d", ... "bn12d",
// "conv11d", in that order ("conv42d.weight", "bn31d.running_var").
//
// w is the width (64 in the reference). Input sides must be multiples of
// 32 (five poolings); the smallest input is 32×32.
type SegNet struct {
	nn.Base
	enc    [5][]nn.Module // stage s's conv, bn, ReLU, ... (before its pooling)
	dec    [5][]nn.Module // decoder stage s (after unpooling with stage s's indices)
	pool   *nn.MaxPool2d
	unpool *nn.MaxUnpool2d
}

// NewSegNet builds SegNet of width c.Width (64 in the reference;
// 29,444,162 parameters with 3 input channels and 2 classes).
func NewSegNet(c Config) *SegNet {
	w := c.Width
	m := &SegNet{}
	b := &m.Base
	vgg := encoder.NewVGG16BN(encoder.InChannels(c.InChannels), encoder.Width(w))
	if vgg.Err() != nil {
		b.RegisterModule("features", vgg) // carries the error to Err
		return m
	}
	// Re-register VGG16-BN's layers under the reference's names, stage by
	// stage (its max-poolings are replaced by the index-keeping pool).
	f := vgg.Features()
	s, j := 0, 0
	for i := 0; i < f.Len(); i++ {
		switch l := f.At(i).(type) {
		case *nn.MaxPool2d:
			s, j = s+1, 0
			continue
		case *nn.Conv2d:
			j++
			b.RegisterModule(fmt.Sprintf("conv%d%d", s+1, j), l)
		case *nn.BatchNorm:
			b.RegisterModule(fmt.Sprintf("bn%d%d", s+1, j), l)
		}
		m.enc[s] = append(m.enc[s], f.At(i))
	}
	chans := [5]int64{w, 2 * w, 4 * w, 8 * w, 8 * w}
	for s := 4; s >= 0; s-- {
		for j := segnetStages[s]; j >= 1; j-- {
			out := chans[s]
			if j == 1 {
				if s == 0 {
					m.dec[s] = append(m.dec[s], nn.Register(b, "conv11d", nn.NewConv2d(w, c.Classes, 3, nn.Padding(1))))
					break
				}
				out = chans[s-1]
			}
			name := fmt.Sprintf("%d%dd", s+1, j)
			m.dec[s] = append(m.dec[s],
				nn.Register(b, "conv"+name, nn.NewConv2d(chans[s], out, 3, nn.Padding(1))),
				nn.Register(b, "bn"+name, nn.NewBatchNorm2d(out)),
				nn.ReLUInPlace())
		}
	}
	m.pool = nn.Register(b, "max_pool2d", nn.NewMaxPool2d(2))
	m.unpool = nn.Register(b, "max_unpool2d", nn.NewMaxUnpool2d(2))
	return m
}

// FoldPairs implements nn.PairFolder: every stage, encoder and decoder,
// applies its modules in order, so each convolution directly followed by a
// BatchNorm hands it its output alone.
func (m *SegNet) FoldPairs(fold func(*nn.Conv2d, nn.Module) nn.Module) error {
	for _, stages := range []*[5][]nn.Module{&m.enc, &m.dec} {
		for _, st := range stages {
			for i := 0; i+1 < len(st); i++ {
				if conv, ok := st[i].(*nn.Conv2d); ok {
					st[i+1] = fold(conv, st[i+1])
				}
			}
		}
	}
	return nil
}

// Forward implements nn.Module: logits [N, classes, H, W] for an input
// whose sides are multiples of 32.
func (m *SegNet) Forward(x *torch.Tensor) *torch.Tensor {
	if err := checkInputSides("segnet", x, 32, 32); err != nil {
		return torch.FromError(err)
	}
	if m.pool == nil {
		return torch.FromError(m.Err())
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		var ids [5]*torch.Tensor
		for s := range m.enc {
			// A stage in its own frame: only the pooled map and its
			// indices outlive it.
			r := nn.FrameN([]*torch.Tensor{x}, func(xs []*torch.Tensor) []*torch.Tensor {
				y := xs[0]
				for _, l := range m.enc[s] {
					y = l.Forward(y)
				}
				o, i := m.pool.ForwardWithIndices(y)
				return []*torch.Tensor{o, i}
			})
			if len(r) != 2 {
				return r[0]
			}
			x, ids[s] = r[0], r[1]
		}
		for s := 4; s >= 0; s-- {
			x = nn.Frame2(x, ids[s], func(x, idx *torch.Tensor) *torch.Tensor {
				y := m.unpool.Unpool(x, idx, nil)
				for _, l := range m.dec[s] {
					y = l.Forward(y)
				}
				return y
			})
		}
		return x
	})
}
