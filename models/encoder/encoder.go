package encoder

import (
	"fmt"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// Encoder is a backbone giving multi-scale features. Split (nn.Splitter)
// returns the taps shallow to deep; Channels and Reductions describe them
// in the same order (reduction r: a map of H/r × W/r for an H×W input
// divisible by r).
type Encoder interface {
	nn.Splitter
	Channels() []int64
	Reductions() []int64
	// Parts lists the encoder's direct children with their names, in
	// registration order, for a model that registers them under names of
	// its own.
	Parts() []nn.NamedModule
}

type optKind uint16

const (
	optInChannels optKind = 1 << iota
	optWidth
	optTaps
	optOutputStride
	optMultigrid
	optLayer4Dilations
	optStem
	optNorm
)

var optNames = []string{"InChannels", "Width", "Taps", "OutputStride", "Multigrid", "Layer4Dilations", "Stem", "Norm"}

// Option configures an encoder. Each constructor lists the options it
// takes; any other is an error on the module.
type Option struct {
	kind optKind
	set  func(*config)
}

type config struct {
	set          optKind
	in, width    int64
	taps         []int
	outputStride int64
	multigrid    []int64
	layer4       []int64
	stem         StemKind
	norm         block.NormFunc
}

func configure(who string, allowed optKind, opts []Option) (config, error) {
	c := config{in: 3, width: 64, outputStride: 32, norm: block.BatchNorm}
	for _, o := range opts {
		if o.set == nil {
			continue
		}
		if o.kind&allowed == 0 {
			return c, fmt.Errorf("encoder: %s does not take option %s", who, optName(o.kind))
		}
		c.set |= o.kind
		o.set(&c)
	}
	if c.in < 1 || c.width < 1 {
		return c, fmt.Errorf("encoder: %s: input channels %d and width %d must be positive", who, c.in, c.width)
	}
	return c, nil
}

func optName(k optKind) string {
	for i, n := range optNames {
		if k == 1<<i {
			return n
		}
	}
	return fmt.Sprintf("#%d", k)
}

// InChannels sets the input channels (3).
func InChannels(c int64) Option { return Option{optInChannels, func(o *config) { o.in = c }} }

// Width sets the base width (64): ResNet's stem and layer1 planes, VGG's
// first stage; deeper stages scale with it.
func Width(w int64) Option { return Option{optWidth, func(o *config) { o.width = w }} }

// Taps selects the feature maps Split returns, by position, ascending. For
// ResNet 0 is the stem's output before max-pooling (1/2) and 1..4 are
// layer1..layer4 (default 1, 2, 3, 4); for VGG 0..4 are the five stages
// before their max-pooling (default all).
func Taps(t ...int) Option {
	return Option{optTaps, func(o *config) { o.taps = append([]int(nil), t...) }}
}

// OutputStride sets ResNet's reduction at layer4: 32 (default), or 16 or 8
// by replacing the strides of layer4 (and layer3) with dilation 2 (and 4).
func OutputStride(s int64) Option {
	return Option{optOutputStride, func(o *config) { o.outputStride = s }}
}

// Multigrid multiplies the dilation of layer4's blocks, DeepLab's
// multigrid (1, 2, 4): at output stride 16 the blocks dilate 2, 4, 8. It
// needs output stride 16 or 8 and one value per block.
func Multigrid(m ...int64) Option {
	return Option{optMultigrid, func(o *config) { o.multigrid = append([]int64(nil), m...) }}
}

// Layer4Dilations sets the dilation of each of layer4's blocks directly
// (EANet's backbone: 1, 4, 8). It needs output stride 16 or 8, one value
// per block, and excludes Multigrid.
func Layer4Dilations(d ...int64) Option {
	return Option{optLayer4Dilations, func(o *config) { o.layer4 = append([]int64(nil), d...) }}
}

// Stem selects ResNet's stem (StemStandard).
func Stem(k StemKind) Option { return Option{optStem, func(o *config) { o.stem = k }} }

// Norm sets ResNet's normalisation (block.BatchNorm); block.NormLayer is
// EANet's GroupNorm rule.
func Norm(f block.NormFunc) Option { return Option{optNorm, func(o *config) { o.norm = f }} }

// checkTaps validates taps against positions 0..n-1 and returns which are
// wanted, and the deepest.
func checkTaps(who string, taps []int, n int) ([]bool, int, error) {
	want := make([]bool, n)
	if len(taps) == 0 {
		return nil, 0, fmt.Errorf("encoder: %s: no taps", who)
	}
	last := -1
	for _, t := range taps {
		if t < 0 || t >= n {
			return nil, 0, fmt.Errorf("encoder: %s: tap %d is not one of 0..%d", who, t, n-1)
		}
		if t <= last {
			return nil, 0, fmt.Errorf("encoder: %s: taps %v are not strictly ascending", who, taps)
		}
		want[t] = true
		last = t
	}
	return want, last, nil
}

func pick(all []int64, want []bool) []int64 {
	var out []int64
	for i, w := range want {
		if w {
			out = append(out, all[i])
		}
	}
	return out
}

// failed carries a construction error as a module, so that registering an
// encoder's Parts elsewhere reports it.
type failed struct{ nn.Base }

func (f *failed) Forward(*torch.Tensor) *torch.Tensor { return torch.FromError(f.Err()) }

// failOn records err on b, so that b.Err and every ancestor's Err report it.
func failOn(b *nn.Base, err error) { b.Fail(err) }

func failedParts(err error) []nn.NamedModule {
	f := &failed{}
	failOn(&f.Base, err)
	return []nn.NamedModule{{Name: "failed", Node: f}}
}
