package encoder

import (
	"fmt"
	"strconv"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// StemKind is a ResNet stem. Every stem halves the input twice (a stride-2
// convolution, then max-pooling) and its tap 0 is the map before the
// pooling. w is the base width.
type StemKind int

const (
	// StemStandard is torchvision's: "conv1" 7×7 stride 2 in → w (no bias),
	// "bn1", ReLU, "maxpool" 3×3 stride 2 padding 1. Tap 0 has w channels.
	StemStandard StemKind = iota
	// StemDeep is the reference backbone's (model/backbone/resnet.py, used
	// by deeplab, pspnet, danet, ocnet, ocrnet and resunet): "conv1" an
	// nn.Sequential of conv3 stride 2 in → w, norm, ReLU, conv3 w → w, norm,
	// ReLU, conv3 w → 2w with neither norm nor ReLU (keys conv1.0, conv1.1,
	// conv1.3, conv1.4, conv1.6), then "maxpool" 3×3 stride 2 padding 1.
	// Tap 0 has 2w channels.
	StemDeep
	// StemDeepNorm is EANet's backbone stem: StemDeep's "conv1", then "bn1"
	// (a norm of 2w channels) and ReLU, and a 2×2 max-pooling of stride 2.
	StemDeepNorm
	// StemDeepFlat is the layout of this project's deeplab: "conv1", "bn1",
	// "conv2", "bn2", "conv3" as siblings (the deep stem's convolutions and
	// norms), a ReLU after each of the three convolutions' stages, then
	// "maxpool" 3×3 stride 2 padding 1. It has StemDeep's parameters; it
	// differs in names and in the ReLU after conv3, which the reference
	// does not apply.
	StemDeepFlat
)

func (k StemKind) String() string {
	switch k {
	case StemStandard:
		return "standard"
	case StemDeep:
		return "deep"
	case StemDeepNorm:
		return "deep+norm"
	case StemDeepFlat:
		return "deep (flat)"
	}
	return "stem(" + strconv.Itoa(int(k)) + ")"
}

// resBlock is BasicBlock or Bottleneck.
type resBlock interface {
	nn.Module
	expansion() int64
}

// Bottleneck is ResNet's 1×1 → 3×3 → 1×1 residual block of expansion 4,
// with the stride on the 3×3 (torchvision's v1.5 and the reference's):
// "conv1", "bn1", "conv2", "bn2", "conv3", "bn3" and, where the identity
// does not fit, "downsample" (0: 1×1 conv, 1: norm). Convolutions have no
// bias; the 3×3 pads by its dilation.
type Bottleneck struct {
	nn.Base
	conv1, conv2, conv3 *nn.Conv2d
	bn1, bn2, bn3       nn.Module
	downsample          *nn.Sequential // nil when the identity fits
}

// NewBottleneck maps in channels to 4·planes; norm nil means BatchNorm.
func NewBottleneck(in, planes, stride, dilation int64, norm block.NormFunc) *Bottleneck {
	if norm == nil {
		norm = block.BatchNorm
	}
	k := &Bottleneck{}
	if in < 1 || planes < 1 || stride < 1 || dilation < 1 {
		failOn(&k.Base, fmt.Errorf("encoder: Bottleneck(%d, %d, stride %d, dilation %d): sizes must be positive", in, planes, stride, dilation))
		return k
	}
	b := &k.Base
	k.conv1 = nn.Register(b, "conv1", nn.NewConv2d(in, planes, 1, nn.NoBias()))
	k.bn1 = nn.Register(b, "bn1", norm(planes))
	k.conv2 = nn.Register(b, "conv2", nn.NewConv2d(planes, planes, 3, nn.Stride(stride), nn.Padding(dilation), nn.Dilation(dilation), nn.NoBias()))
	k.bn2 = nn.Register(b, "bn2", norm(planes))
	k.conv3 = nn.Register(b, "conv3", nn.NewConv2d(planes, 4*planes, 1, nn.NoBias()))
	k.bn3 = nn.Register(b, "bn3", norm(4*planes))
	k.downsample = downsample(b, in, 4*planes, stride, norm)
	return k
}

func downsample(b *nn.Base, in, out, stride int64, norm block.NormFunc) *nn.Sequential {
	if stride == 1 && in == out {
		return nil
	}
	return nn.Register(b, "downsample", nn.Seq(nn.NewConv2d(in, out, 1, nn.Stride(stride), nn.NoBias()), norm(out)))
}

func (k *Bottleneck) expansion() int64 { return 4 }

// FoldPairs implements nn.PairFolder: each convolution's output goes to its
// norm alone (conv1→bn1, conv2→bn2, conv3→bn3); the downsample is an
// nn.Sequential, which the tree pass folds.
func (k *Bottleneck) FoldPairs(fold func(*nn.Conv2d, nn.Module) nn.Module) error {
	if k.conv1 == nil {
		return k.Err()
	}
	k.bn1, k.bn2, k.bn3 = fold(k.conv1, k.bn1), fold(k.conv2, k.bn2), fold(k.conv3, k.bn3)
	return nil
}

// Forward implements nn.Module.
func (k *Bottleneck) Forward(x *torch.Tensor) *torch.Tensor {
	if k.conv1 == nil {
		return torch.FromError(k.Err())
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		// The residual branch in its own frame: its intermediates die
		// before the addition, as in PyTorch (inference peak memory).
		out := nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
			out := nn.ReluInPlace(k.bn1.Forward(k.conv1.Forward(x)))
			out = nn.ReluInPlace(k.bn2.Forward(k.conv2.Forward(out)))
			return k.bn3.Forward(k.conv3.Forward(out))
		})
		return nn.ReluInPlace(out.Add(identity(k.downsample, x)))
	})
}

func identity(down *nn.Sequential, x *torch.Tensor) *torch.Tensor {
	if down == nil {
		return x
	}
	return down.Forward(x)
}

// BasicBlock is ResNet-18/34's residual block of two 3×3 convolutions,
// expansion 1: "conv1" (with the stride), "bn1", "conv2", "bn2" and, where
// the identity does not fit, "downsample". Both 3×3s pad by their dilation
// (torchvision refuses dilation here; the reference's layouts need it only
// for Bottleneck).
type BasicBlock struct {
	nn.Base
	conv1, conv2 *nn.Conv2d
	bn1, bn2     nn.Module
	downsample   *nn.Sequential
}

// NewBasicBlock maps in channels to planes; norm nil means BatchNorm.
func NewBasicBlock(in, planes, stride, dilation int64, norm block.NormFunc) *BasicBlock {
	if norm == nil {
		norm = block.BatchNorm
	}
	k := &BasicBlock{}
	if in < 1 || planes < 1 || stride < 1 || dilation < 1 {
		failOn(&k.Base, fmt.Errorf("encoder: BasicBlock(%d, %d, stride %d, dilation %d): sizes must be positive", in, planes, stride, dilation))
		return k
	}
	b := &k.Base
	k.conv1 = nn.Register(b, "conv1", nn.NewConv2d(in, planes, 3, nn.Stride(stride), nn.Padding(dilation), nn.Dilation(dilation), nn.NoBias()))
	k.bn1 = nn.Register(b, "bn1", norm(planes))
	k.conv2 = nn.Register(b, "conv2", nn.NewConv2d(planes, planes, 3, nn.Padding(dilation), nn.Dilation(dilation), nn.NoBias()))
	k.bn2 = nn.Register(b, "bn2", norm(planes))
	k.downsample = downsample(b, in, planes, stride, norm)
	return k
}

func (k *BasicBlock) expansion() int64 { return 1 }

// FoldPairs implements nn.PairFolder (conv1→bn1, conv2→bn2).
func (k *BasicBlock) FoldPairs(fold func(*nn.Conv2d, nn.Module) nn.Module) error {
	if k.conv1 == nil {
		return k.Err()
	}
	k.bn1, k.bn2 = fold(k.conv1, k.bn1), fold(k.conv2, k.bn2)
	return nil
}

// Forward implements nn.Module.
func (k *BasicBlock) Forward(x *torch.Tensor) *torch.Tensor {
	if k.conv1 == nil {
		return torch.FromError(k.Err())
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		out := nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
			return k.bn2.Forward(k.conv2.Forward(nn.ReluInPlace(k.bn1.Forward(k.conv1.Forward(x)))))
		})
		return nn.ReluInPlace(out.Add(identity(k.downsample, x)))
	})
}

var resnetDepths = map[int]struct {
	blocks     [4]int
	bottleneck bool
}{
	18:  {[4]int{2, 2, 2, 2}, false},
	34:  {[4]int{3, 4, 6, 3}, false},
	50:  {[4]int{3, 4, 6, 3}, true},
	101: {[4]int{3, 4, 23, 3}, true},
}

// ResNet is a residual network without its classifier: a stem and
// layer1..layer4 ("layer1.0.conv1.weight"), as torchvision and the
// reference name them, built up to the deepest tap.
//
// Output stride 32 is torchvision's network. At 16, layer4 keeps layer3's
// resolution with dilation 2; at 8, layer3 and layer4 dilate 2 and 4. As in
// the reference backbone, every block of a dilated layer, the first one
// included, uses the layer's dilation (torchvision gives the first block
// the previous dilation).
type ResNet struct {
	nn.Base
	stem       []nn.Module // applied in order before max-pooling
	maxpool    *nn.MaxPool2d
	layers     []*nn.Sequential
	want       []bool
	channels   []int64
	reductions []int64
	parts      []nn.NamedModule
}

// NewResNet builds ResNet-18, 34, 50 or 101. Options: InChannels (3),
// Width (64), Taps (1, 2, 3, 4), OutputStride (32), Multigrid,
// Layer4Dilations, Stem (StemStandard), Norm (block.BatchNorm).
func NewResNet(depth int, opts ...Option) *ResNet {
	r := &ResNet{}
	who := "ResNet-" + strconv.Itoa(depth)
	c, err := configure(who, optInChannels|optWidth|optTaps|optOutputStride|optMultigrid|optLayer4Dilations|optStem|optNorm, opts)
	if err != nil {
		r.fail(err)
		return r
	}
	arch, ok := resnetDepths[depth]
	if !ok {
		r.fail(fmt.Errorf("encoder: ResNet depth %d is not one of 18, 34, 50, 101", depth))
		return r
	}
	dil, err := layerDilations(who, c, arch.blocks)
	if err != nil {
		r.fail(err)
		return r
	}
	if c.set&optTaps == 0 {
		c.taps = []int{1, 2, 3, 4}
	}
	want, last, err := checkTaps(who, c.taps, 5)
	if err != nil {
		r.fail(err)
		return r
	}
	if c.norm == nil {
		r.fail(fmt.Errorf("encoder: %s needs a normalisation", who))
		return r
	}
	r.want = want
	w := c.width
	stemOut := r.buildStem(c.stem, c.in, w, c.norm)
	if stemOut == 0 {
		r.fail(fmt.Errorf("encoder: %s: unknown stem %v", who, c.stem))
		return r
	}
	exp := int64(1)
	if arch.bottleneck {
		exp = 4
	}
	r.channels = []int64{stemOut, w * exp, 2 * w * exp, 4 * w * exp, 8 * w * exp}
	r.reductions = []int64{2, 4, 8, min(16, c.outputStride), c.outputStride}
	strides := map[int64][4]int64{32: {1, 2, 2, 2}, 16: {1, 2, 2, 1}, 8: {1, 2, 1, 1}}[c.outputStride]
	in := stemOut
	for i := 0; i < last; i++ {
		planes := w << i
		seq := nn.Seq()
		for j := 0; j < arch.blocks[i]; j++ {
			stride := int64(1)
			if j == 0 {
				stride = strides[i]
			}
			var blk resBlock
			if arch.bottleneck {
				blk = NewBottleneck(in, planes, stride, dil[i][j], c.norm)
			} else {
				blk = NewBasicBlock(in, planes, stride, dil[i][j], c.norm)
			}
			seq.Append(blk)
			in = planes * blk.expansion()
		}
		r.layers = append(r.layers, r.part("layer"+strconv.Itoa(i+1), seq))
	}
	return r
}

func (r *ResNet) fail(err error) {
	failOn(&r.Base, err)
	r.parts = failedParts(err)
}

// layerDilations gives each block's dilation, per layer.
func layerDilations(who string, c config, blocks [4]int) ([4][]int64, error) {
	var out [4][]int64
	layer, ok := map[int64][4]int64{32: {1, 1, 1, 1}, 16: {1, 1, 1, 2}, 8: {1, 1, 2, 4}}[c.outputStride]
	if !ok {
		return out, fmt.Errorf("encoder: %s: output stride %d is not 8, 16 or 32", who, c.outputStride)
	}
	mg, l4 := c.set&optMultigrid != 0, c.set&optLayer4Dilations != 0
	switch {
	case mg && l4:
		return out, fmt.Errorf("encoder: %s: Multigrid and Layer4Dilations exclude each other", who)
	case (mg || l4) && c.outputStride == 32:
		return out, fmt.Errorf("encoder: %s: Multigrid and Layer4Dilations need output stride 16 or 8, not 32 (layer4 is not dilated there)", who)
	}
	for i, n := range blocks {
		for j := 0; j < n; j++ {
			out[i] = append(out[i], layer[i])
		}
	}
	if !mg && !l4 {
		return out, nil
	}
	vals := c.multigrid
	if l4 {
		vals = c.layer4
	}
	if len(vals) != blocks[3] {
		return out, fmt.Errorf("encoder: %s: layer4 has %d blocks, got %d dilations %v", who, blocks[3], len(vals), vals)
	}
	for j, v := range vals {
		if v < 1 {
			return out, fmt.Errorf("encoder: %s: dilations %v must be positive", who, vals)
		}
		if mg {
			v *= layer[3]
		}
		out[3][j] = v
	}
	return out, nil
}

// part registers a layer as a direct child and lists it in Parts.
func (r *ResNet) part(name string, s *nn.Sequential) *nn.Sequential {
	r.parts = append(r.parts, nn.NamedModule{Name: name, Node: s})
	r.RegisterModule(name, s)
	return s
}

// buildStem registers the stem and returns its output channels (0 for an
// unknown kind).
func (r *ResNet) buildStem(kind StemKind, in, w int64, norm block.NormFunc) int64 {
	conv3 := func(cin, cout, stride int64) *nn.Conv2d {
		return nn.NewConv2d(cin, cout, 3, nn.Stride(stride), nn.Padding(1), nn.NoBias())
	}
	deep := func() *nn.Sequential {
		return nn.Seq(conv3(in, w, 2), norm(w), nn.ReLUInPlace(), conv3(w, w, 1), norm(w), nn.ReLUInPlace(), conv3(w, 2*w, 1))
	}
	add := func(name string, m nn.Module) {
		r.parts = append(r.parts, nn.NamedModule{Name: name, Node: m})
		r.RegisterModule(name, m)
		r.stem = append(r.stem, m)
	}
	pool := nn.NewMaxPool2d(3, nn.Stride(2), nn.Padding(1))
	var out int64
	switch kind {
	case StemStandard:
		add("conv1", nn.NewConv2d(in, w, 7, nn.Stride(2), nn.Padding(3), nn.NoBias()))
		add("bn1", norm(w))
		r.stem = append(r.stem, nn.ReLUInPlace())
		out = w
	case StemDeep:
		add("conv1", deep())
		out = 2 * w
	case StemDeepNorm:
		add("conv1", deep())
		add("bn1", norm(2*w))
		r.stem = append(r.stem, nn.ReLUInPlace())
		pool = nn.NewMaxPool2d(2)
		out = 2 * w
	case StemDeepFlat:
		for i, cc := range [][3]int64{{in, w, 2}, {w, w, 1}, {w, 2 * w, 1}} {
			n := strconv.Itoa(i + 1)
			add("conv"+n, conv3(cc[0], cc[1], cc[2]))
			if i < 2 {
				add("bn"+n, norm(cc[1]))
			}
			// The ReLU after conv3 works on the conv's output, which its
			// backward does not need.
			r.stem = append(r.stem, nn.ReLUInPlace())
		}
		out = 2 * w
	default:
		return 0
	}
	r.maxpool = pool
	r.parts = append(r.parts, nn.NamedModule{Name: "maxpool", Node: pool})
	r.RegisterModule("maxpool", pool)
	return out
}

// Split returns the selected taps, shallow to deep.
func (r *ResNet) Split(x *torch.Tensor) []*torch.Tensor {
	if r.maxpool == nil {
		return []*torch.Tensor{torch.FromError(r.Err())}
	}
	return nn.FrameN([]*torch.Tensor{x}, func(xs []*torch.Tensor) []*torch.Tensor {
		var out []*torch.Tensor
		var x *torch.Tensor
		// The stem's intermediates die in their own frame, before layer1.
		if r.want[0] {
			s := nn.FrameN(xs, func(xs []*torch.Tensor) []*torch.Tensor {
				y := r.stemForward(xs[0])
				return []*torch.Tensor{y, r.maxpool.Forward(y)}
			})
			if len(s) != 2 {
				return s
			}
			out, x = append(out, s[0]), s[1]
		} else {
			x = nn.Frame(xs[0], func(x *torch.Tensor) *torch.Tensor { return r.maxpool.Forward(r.stemForward(x)) })
		}
		for i, l := range r.layers {
			x = l.Forward(x)
			if r.want[i+1] {
				out = append(out, x)
			}
		}
		return out
	})
}

// FoldPairs implements nn.PairFolder for the stem, which stemForward
// applies in order: a convolution followed by its norm (StemStandard's and
// StemDeepFlat's conv→bn, StemDeepNorm's deep Sequential, whose last
// module is a convolution, → bn1). The deep stem's inner pairs are an
// nn.Sequential's, which the tree pass folds. A model that registers the
// stem's parts elsewhere too (Parts) shares them, and Foldable refuses.
func (r *ResNet) FoldPairs(fold func(*nn.Conv2d, nn.Module) nn.Module) error {
	if r.maxpool == nil {
		return r.Err()
	}
	for i := 1; i < len(r.stem); i++ {
		conv, ok := r.stem[i-1].(*nn.Conv2d)
		if s, isSeq := r.stem[i-1].(*nn.Sequential); isSeq && s.Len() > 0 {
			conv, ok = s.At(s.Len() - 1).(*nn.Conv2d)
		}
		if ok {
			r.stem[i] = fold(conv, r.stem[i])
		}
	}
	return nil
}

func (r *ResNet) stemForward(x *torch.Tensor) *torch.Tensor {
	for _, m := range r.stem {
		x = m.Forward(x)
	}
	return x
}

// Channels implements Encoder.
func (r *ResNet) Channels() []int64 { return pick(r.channels, r.want) }

// Reductions implements Encoder.
func (r *ResNet) Reductions() []int64 { return pick(r.reductions, r.want) }

// Parts implements Encoder: the stem's modules ("conv1", "bn1", ... and
// "maxpool") and "layer1".."layerN" in registration order. After a failed
// construction it holds one module that carries the error.
func (r *ResNet) Parts() []nn.NamedModule { return r.parts }

// Layer returns layerI (1..4), or nil where it was not built.
func (r *ResNet) Layer(i int) *nn.Sequential {
	if i < 1 || i > len(r.layers) {
		return nil
	}
	return r.layers[i-1]
}
