package nn

import (
	"fmt"
	"strings"
)

// Option configures a layer: Stride, Padding, NoBias and so on. Each
// layer's doc lists the options it takes; passing it another one is a
// construction error (reported by Err), never silently ignored.
type Option func(*config)

// opt names one kind of option, as a bit of config.set.
type opt uint32

const (
	optKernel opt = 1 << iota
	optStride
	optPadding
	optDilation
	optOutputPadding
	optGroups
	optNoBias
	optEps
	optMomentum
	optAffine
	optTrackStats
	optCeilMode
	optExcludePad
	optAlignCorners
	optBatchFirst
	optNormFirst
	optGELU
	optDropout
)

var optNames = []string{"Kernel", "Stride", "Padding", "Dilation", "OutputPadding", "Groups", "NoBias", "Eps",
	"Momentum", "Affine", "TrackRunningStats", "CeilMode", "ExcludePadding", "AlignCorners", "BatchFirst",
	"NormFirst", "GELUActivation", "DropoutP"}

type config struct {
	kernel        []int64
	stride        []int64
	padding       []int64
	dilation      []int64
	outputPadding []int64
	groups        int64
	noBias        bool
	eps           *float64
	momentum      *float64
	affine        *bool
	trackStats    *bool
	ceilMode      bool
	excludePad    bool
	alignCorners  bool
	batchFirst    bool
	normFirst     bool
	gelu          bool
	dropout       *float64
	set           opt
}

// configure applies opts for layer, which takes the options in allowed;
// any other is an error naming the layer and the option.
func configure(layer string, allowed opt, opts []Option) (config, error) {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if extra := c.set &^ allowed; extra != 0 {
		var names []string
		for i, n := range optNames {
			if extra&(1<<i) != 0 {
				names = append(names, n)
			}
		}
		return c, fmt.Errorf("nn: %s does not take the option %s", layer, strings.Join(names, ", "))
	}
	return c, nil
}

// pair2 turns an option's values into (h, w): one value is used for both.
func pair2(v []int64, def int64) [2]int64 {
	switch len(v) {
	case 0:
		return [2]int64{def, def}
	case 1:
		return [2]int64{v[0], v[0]}
	}
	return [2]int64{v[0], v[1]}
}

func one(v []int64, def int64) int64 {
	if len(v) == 0 {
		return def
	}
	return v[0]
}

// Kernel overrides the kernel size, e.g. Kernel(1, 3) for a 1×3 kernel.
func Kernel(v ...int64) Option { return func(c *config) { c.kernel = v; c.set |= optKernel } }

// Stride sets the stride: one value for every dimension or one per dimension.
func Stride(v ...int64) Option { return func(c *config) { c.stride = v; c.set |= optStride } }

// Padding sets the zero padding: one value or one per dimension.
func Padding(v ...int64) Option { return func(c *config) { c.padding = v; c.set |= optPadding } }

// Dilation sets the dilation: one value or one per dimension.
func Dilation(v ...int64) Option { return func(c *config) { c.dilation = v; c.set |= optDilation } }

// OutputPadding sets ConvTranspose2d's extra output size.
func OutputPadding(v ...int64) Option {
	return func(c *config) { c.outputPadding = v; c.set |= optOutputPadding }
}

// Groups sets the number of convolution groups.
func Groups(g int64) Option { return func(c *config) { c.groups = g; c.set |= optGroups } }

// NoBias leaves out the bias (bias=False).
func NoBias() Option { return func(c *config) { c.noBias = true; c.set |= optNoBias } }

// Eps sets a normalisation's epsilon.
func Eps(e float64) Option { return func(c *config) { c.eps = &e; c.set |= optEps } }

// Momentum sets the running-statistics momentum of BatchNorm and
// InstanceNorm; a negative value means PyTorch's momentum=None (a
// cumulative moving average).
func Momentum(m float64) Option { return func(c *config) { c.momentum = &m; c.set |= optMomentum } }

// Affine turns a normalisation's learnable weight and bias on or off.
func Affine(on bool) Option { return func(c *config) { c.affine = &on; c.set |= optAffine } }

// TrackRunningStats turns running statistics (buffers) on or off.
func TrackRunningStats(on bool) Option {
	return func(c *config) { c.trackStats = &on; c.set |= optTrackStats }
}

// CeilMode makes pooling round output sizes up.
func CeilMode() Option { return func(c *config) { c.ceilMode = true; c.set |= optCeilMode } }

// ExcludePadding makes AvgPool2d ignore padded zeros (count_include_pad=False).
func ExcludePadding() Option { return func(c *config) { c.excludePad = true; c.set |= optExcludePad } }

// AlignCorners sets align_corners=True for bilinear Upsample.
func AlignCorners() Option {
	return func(c *config) { c.alignCorners = true; c.set |= optAlignCorners }
}

// BatchFirst makes attention layers take [batch, sequence, feature] inputs.
func BatchFirst() Option { return func(c *config) { c.batchFirst = true; c.set |= optBatchFirst } }

// NormFirst makes TransformerEncoderLayer normalise before each block (pre-norm).
func NormFirst() Option { return func(c *config) { c.normFirst = true; c.set |= optNormFirst } }

// GELUActivation makes TransformerEncoderLayer's feed-forward use GELU instead of ReLU.
func GELUActivation() Option { return func(c *config) { c.gelu = true; c.set |= optGELU } }

// DropoutP sets the dropout probability of attention layers.
func DropoutP(p float64) Option { return func(c *config) { c.dropout = &p; c.set |= optDropout } }

func orF(p *float64, def float64) float64 {
	if p == nil {
		return def
	}
	return *p
}

func orB(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}
