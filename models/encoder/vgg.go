package encoder

import (
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// VGG is VGG16's convolutional part in torchvision's layout: "features",
// an nn.Sequential of conv3 (with bias), BatchNorm for VGG16-BN, ReLU per
// convolution and a 2×2 max-pooling between stages ("features.0.weight",
// VGG16-BN's "features.1.running_mean"), with 2, 2, 3, 3, 3 convolutions
// of w, 2w, 4w, 8w, 8w channels. The taps are the stages' outputs before
// their pooling (1, 2, 4, 8, 16). The classifier and the last pooling
// (features.30, or 43 with BN) are left out: they have no parameters the
// zoo uses, and the indices of the rest are unchanged.
type VGG struct {
	nn.Base
	features   *nn.Sequential
	stages     [][2]int // index range in features, the leading pool included
	want       []bool
	channels   []int64
	reductions []int64
	parts      []nn.NamedModule
}

// NewVGG16 builds VGG16 without BatchNorm (TernausNet's encoder).
// Options: InChannels (3), Width (64), Taps (0..4).
func NewVGG16(opts ...Option) *VGG { return newVGG("VGG16", false, opts) }

// NewVGG16BN builds VGG16 with BatchNorm after every convolution (SegNet's
// encoder). Options: InChannels (3), Width (64), Taps (0..4).
func NewVGG16BN(opts ...Option) *VGG { return newVGG("VGG16-BN", true, opts) }

func newVGG(who string, bn bool, opts []Option) *VGG {
	v := &VGG{}
	c, err := configure(who, optInChannels|optWidth|optTaps, opts)
	if err == nil && c.set&optTaps == 0 {
		c.taps = []int{0, 1, 2, 3, 4}
	}
	var last int
	if err == nil {
		v.want, last, err = checkTaps(who, c.taps, 5)
	}
	if err != nil {
		failOn(&v.Base, err)
		v.parts = failedParts(err)
		return v
	}
	w := c.width
	v.channels = []int64{w, 2 * w, 4 * w, 8 * w, 8 * w}
	v.reductions = []int64{1, 2, 4, 8, 16}
	convs := []int{2, 2, 3, 3, 3}
	seq := nn.Seq()
	in := c.in
	for s := 0; s <= last; s++ {
		start := seq.Len()
		if s > 0 {
			seq.Append(nn.NewMaxPool2d(2))
		}
		for i := 0; i < convs[s]; i++ {
			seq.Append(nn.NewConv2d(in, v.channels[s], 3, nn.Padding(1)))
			if bn {
				seq.Append(nn.NewBatchNorm2d(v.channels[s]))
			}
			seq.Append(nn.ReLUInPlace())
			in = v.channels[s]
		}
		v.stages = append(v.stages, [2]int{start, seq.Len()})
	}
	v.features = nn.Register(&v.Base, "features", seq)
	v.parts = []nn.NamedModule{{Name: "features", Node: seq}}
	return v
}

// Split returns the selected taps, shallow to deep.
func (v *VGG) Split(x *torch.Tensor) []*torch.Tensor {
	if v.features == nil {
		return []*torch.Tensor{torch.FromError(v.Err())}
	}
	return nn.FrameN([]*torch.Tensor{x}, func(xs []*torch.Tensor) []*torch.Tensor {
		var out []*torch.Tensor
		x := xs[0]
		for s, r := range v.stages {
			// Each stage in its own frame: only its output outlives it.
			x = nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
				for i := r[0]; i < r[1]; i++ {
					x = v.features.At(i).Forward(x)
				}
				return x
			})
			if v.want[s] {
				out = append(out, x)
			}
		}
		return out
	})
}

// Channels implements Encoder.
func (v *VGG) Channels() []int64 { return pick(v.channels, v.want) }

// Reductions implements Encoder.
func (v *VGG) Reductions() []int64 { return pick(v.reductions, v.want) }

// Parts implements Encoder: "features". After a failed construction it
// holds one module that carries the error.
func (v *VGG) Parts() []nn.NamedModule { return v.parts }

// Features returns the "features" Sequential (TernausNet registers it as
// "encoder" and views its convolutions as conv1..conv5).
func (v *VGG) Features() *nn.Sequential { return v.features }
