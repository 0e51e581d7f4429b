package block

import (
	"fmt"
	"strings"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// NormFunc makes the normalisation layer for c channels.
type NormFunc func(c int64) nn.Module

// BatchNorm is nn.BatchNorm2d, the default normalisation of every block.
func BatchNorm(c int64) nn.Module { return nn.NewBatchNorm2d(c) }

// InstanceNorm is nn.InstanceNorm2d with PyTorch's defaults (no affine
// parameters, no running statistics), as R2AttU-Net's gates use it.
func InstanceNorm(c int64) nn.Module { return nn.NewInstanceNorm2d(c) }

// GroupNorm returns nn.GroupNorm with a fixed number of groups.
func GroupNorm(groups int64) NormFunc {
	return func(c int64) nn.Module { return nn.NewGroupNorm(groups, c) }
}

// NormLayer is the reference's NormLayer (EANet, LRF-EANet, OneNet,
// LightNet, SimpleUNet): GroupNorm with NormLayerGroups(c) groups, wrapped
// as child "norm", so its keys read "bn1.norm.weight".
func NormLayer(c int64) nn.Module {
	return nn.NewPath("norm", nn.NewGroupNorm(NormLayerGroups(c), c))
}

// NormLayerGroups is the reference's group count for c channels: 32 from
// 512 channels, 16 from 256, 8 from 128, 4 from 64, else 1.
func NormLayerGroups(c int64) int64 {
	switch {
	case c >= 512:
		return 32
	case c >= 256:
		return 16
	case c >= 128:
		return 8
	case c >= 64:
		return 4
	}
	return 1
}

// ActFunc makes an activation module.
type ActFunc func() nn.Module

// ReLU is an in-place ReLU, the default activation. Blocks apply it only to
// tensors they made (a convolution's or normalisation's output), where
// working in place is safe for autograd.
func ReLU() nn.Module { return nn.ReLUInPlace() }

// ReLU6 is nn.ReLU6 (HarDNet's ConvLayer).
func ReLU6() nn.Module { return nn.ReLU6() }

type optKind uint32

const (
	optStride optKind = 1 << iota
	optPadding
	optDilation
	optGroups
	optKernel
	optNoBias
	optNorm
	optAct
	optNameSet
	optReduction
	optGate
	optConvForm
	optAlignCorners
)

var optNames = []string{"Stride", "Padding", "Dilation", "Groups", "Kernel", "NoBias", "Norm", "Act", "Names",
	"Reduction", "Gate", "ConvForm", "AlignCorners"}

// convOpts are the options of a single convolution block.
const convOpts = optStride | optPadding | optDilation | optGroups | optKernel | optNoBias | optNorm | optAct

// Option configures a block. Each constructor lists the options it takes;
// any other is an error on the module, never silently ignored.
type Option struct {
	kind optKind
	set  func(*config)
}

type config struct {
	stride, padding, dilation, kernel []int64
	groups                            int64
	noBias                            bool
	norm                              NormFunc
	act                               ActFunc
	convName, normName                string
	reduction                         int64
	gate                              Gating
	convForm                          bool
	alignCorners                      bool
}

func defaults() config {
	return config{groups: 1, norm: BatchNorm, act: ReLU, convName: "conv", normName: "bn", reduction: 16}
}

// configure applies opts for constructor who, which takes the options in
// allowed.
func configure(who string, allowed optKind, opts []Option) (config, error) {
	c := defaults()
	for _, o := range opts {
		if o.set == nil {
			continue
		}
		if o.kind&allowed == 0 {
			return c, fmt.Errorf("block: %s does not take option %s", who, optName(o.kind))
		}
		o.set(&c)
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

// Stride sets a convolution's stride: one value, or height and width.
func Stride(v ...int64) Option {
	return Option{optStride, func(c *config) { c.stride = v }}
}

// Padding sets a convolution's zero padding: one value, or height and
// width. The default keeps the size at stride 1: dilation·(k-1)/2.
func Padding(v ...int64) Option {
	return Option{optPadding, func(c *config) { c.padding = v }}
}

// Dilation sets a convolution's dilation.
func Dilation(v ...int64) Option {
	return Option{optDilation, func(c *config) { c.dilation = v }}
}

// Groups sets a convolution's groups.
func Groups(g int64) Option { return Option{optGroups, func(c *config) { c.groups = g }} }

// Kernel overrides the square kernel size with h×w (RFB's 1×3 and 3×1).
func Kernel(h, w int64) Option {
	return Option{optKernel, func(c *config) { c.kernel = []int64{h, w} }}
}

// NoBias leaves out the convolution's bias (bias=False); PyTorch's default,
// and the blocks', is a bias.
func NoBias() Option { return Option{optNoBias, func(c *config) { c.noBias = true }} }

// Norm sets the normalisation (BatchNorm by default); nil leaves it out,
// so the activation's index in a Sequential moves up by one.
func Norm(f NormFunc) Option { return Option{optNorm, func(c *config) { c.norm = f }} }

// Act sets the activation (ReLU by default); nil leaves it out.
func Act(f ActFunc) Option { return Option{optAct, func(c *config) { c.act = f }} }

// Names sets ConvNormAct's child names for the convolution and the
// normalisation ("conv" and "bn" by default).
func Names(conv, norm string) Option {
	return Option{optNameSet, func(c *config) { c.convName, c.normName = conv, norm }}
}

// Reduction sets a squeeze-excitation's channel reduction (16 by default).
func Reduction(r int64) Option { return Option{optReduction, func(c *config) { c.reduction = r }} }

// Gating is how a squeeze-excitation turns its excitation into weights.
type Gating int

const (
	// Sigmoid gates each weight independently, as the published SE and
	// scSE do.
	Sigmoid Gating = iota
	// SoftmaxAll is the reference scseunet's gate: softmax without a
	// dimension, normalising over the whole tensor, batch included (a
	// quirk that makes the weights shrink with batch and map size).
	SoftmaxAll
)

// Gate sets a squeeze-excitation's gating (Sigmoid by default).
func Gate(g Gating) Option { return Option{optGate, func(c *config) { c.gate = g }} }

// ConvForm makes SE use 1×1 convolutions "fc1" and "fc2" (torchvision's
// SqueezeExcitation) instead of Linear layers "linear_1" and "linear_2"
// (the reference's).
func ConvForm() Option { return Option{optConvForm, func(c *config) { c.convForm = true }} }

// AlignCorners makes Up's bilinear up-sampling use align_corners=True
// (PyTorch ports such as milesial's); the default is False, Jittor's
// nn.Upsample, which the reference used.
func AlignCorners() Option {
	return Option{optAlignCorners, func(c *config) { c.alignCorners = true }}
}

// convOptions turns a config into nn options for a k×k convolution, with
// the size-keeping padding unless one was set.
func (c config) convOptions(k int64) []nn.Option {
	kh, kw := k, k
	if len(c.kernel) == 2 {
		kh, kw = c.kernel[0], c.kernel[1]
	}
	dh, dw := pair(c.dilation, 1)
	pad := []int64{dh * (kh - 1) / 2, dw * (kw - 1) / 2}
	if len(c.padding) > 0 {
		pad = c.padding
	}
	o := []nn.Option{nn.Kernel(kh, kw), nn.Padding(pad...), nn.Groups(c.groups)}
	if len(c.stride) > 0 {
		o = append(o, nn.Stride(c.stride...))
	}
	if len(c.dilation) > 0 {
		o = append(o, nn.Dilation(c.dilation...))
	}
	if c.noBias {
		o = append(o, nn.NoBias())
	}
	return o
}

func pair(v []int64, def int64) (int64, int64) {
	switch len(v) {
	case 0:
		return def, def
	case 1:
		return v[0], v[0]
	}
	return v[0], v[1]
}

// failed is a module that carries a construction error and returns it
// from Forward: the error channel of constructors that return bare modules.
type failed struct {
	nn.Base
	err error
}

func fail(err error) nn.Module {
	f := &failed{err: err}
	failOn(&f.Base, err)
	return f
}

func (f *failed) Forward(*torch.Tensor) *torch.Tensor { return torch.FromError(f.err) }

// failOn records err on b, so that b.Err and every ancestor's Err report it.
func failOn(b *nn.Base, err error) { b.Fail(err) }

func errorf(who, format string, args ...any) error {
	return fmt.Errorf("block: %s: %s", who, fmt.Sprintf(format, args...))
}

// dim is a named size for positive.
type dim struct {
	name string
	v    int64
}

func positive(who string, ds ...dim) error {
	var bad []string
	for _, d := range ds {
		if d.v < 1 {
			bad = append(bad, fmt.Sprintf("%s %d", d.name, d.v))
		}
	}
	if len(bad) > 0 {
		return errorf(who, "%s must be positive", strings.Join(bad, ", "))
	}
	return nil
}
