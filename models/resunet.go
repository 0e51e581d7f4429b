package models

import (
	"fmt"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/models/encoder"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// resunetMultiple is ResUNet's input multiple: its deepest map is at 1/16
// and the decoder doubles back from there.
const resunetMultiple = 16

func init() {
	Register(Spec{Name: "resunet", Description: "ResUNet (ResNet-101 deep-stem encoder to layer3, U-Net decoder)", DefaultWidth: 64, RefParams: 77_882_626,
		Multiple:  resunetMultiple,
		TestWidth: 4, TestSizes: [][2]int64{{16, 16}, {64, 96}, {128, 128}, {512, 512}}, Twin: "resunet.ResUNet",
		Build: func(c Config) (nn.Module, error) { return NewResUNet(c), nil }})
}

// resunetUp is the reference ResUNet's Up (bilinear): it concatenates
// [skip, x] first, then "up" doubles the result (bilinear, align_corners
// False as Jittor's nn.Upsample) and "conv", a DoubleConv(in, out, in/2)
// (conv3 with bias + BatchNorm + ReLU, twice; keys
// "conv.double_conv.0.weight"), maps its in channels to out. (block.Up
// up-samples before concatenating.)
type resunetUp struct {
	nn.Base
	up   *nn.Upsample
	conv *block.DoubleConv
}

func newResunetUp(in, out int64) *resunetUp {
	u := &resunetUp{}
	u.up = nn.Register(&u.Base, "up", nn.NewUpsample(2, torch.Bilinear))
	u.conv = nn.Register(&u.Base, "conv", block.NewDoubleConv(in, out, in/2))
	return u
}

// Merge implements nn.Merger: the decoder path x, then the skip (same
// size).
func (u *resunetUp) Merge(xs ...*torch.Tensor) *torch.Tensor {
	return nn.Frame2(xs[0], xs[1], func(x, skip *torch.Tensor) *torch.Tensor {
		return u.conv.Forward(u.up.Forward(torch.Cat([]*torch.Tensor{skip, x}, 1)))
	})
}

// ResUNet is the reference's ResUNet (model/ResUNet.py, backbone
// resnet101, bilinear): "backbone", its ResNet-101 (deep stem: conv3 s2,
// conv3, conv3 to 2w with no norm after the third; max-pooling; layer1..3;
// encoder.StemDeep, keys "backbone.conv1.0.weight",
// "backbone.layer3.22.bn3.running_var"); "layer0" (the stem's conv1, 2w
// channels at 1/2), "pooling0" (its max-pooling), "layer1".."layer3" (4w,
// 8w, 16w at 1/4, 1/8, 1/16), the backbone's own modules under the
// reference's second names; "bottleneck", a DoubleConv 16w → 16w;
// "conv_decode3".."conv_decode0" (resunetUp: concatenate [skip, x], bilinear
// ×2, DoubleConv 32w → 8w, 16w → 4w, 8w → 2w, 4w → w); "outc.conv", a 1×1
// conv to the classes.
//
// The reference's backbone also builds layer4 (14,964,736 parameters at
// the reference width), which ResUNet never calls; it is not built here
// (encoder.Taps(0, 1, 2, 3)), so the count is 77,882,626 with 3 input
// channels and 2 classes, as the spec corrects it, and a reference
// checkpoint's backbone.layer4.* keys are unexpected here (load it
// non-strictly). The backbone's output stride (16 in the reference) only
// concerns layer4, so it does not appear either.
//
// Shared modules: layer0..layer3 are the backbone's conv1 and layer1..3.
// The state dict lists every alias, as PyTorch's state_dict() does for the
// reference's layout: "backbone.layer1.0.conv1.weight" and
// "layer1.0.conv1.weight" are the same tensor under two keys (BatchNorm
// buffers too), in PyTorch's order (backbone.*, layer0.*, layer1.* ...
// layer3.*, bottleneck.*, conv_decode3.* ... outc.*). So a checkpoint loads
// strictly, with no key mapping, into a PyTorch port of this layout
// (internal/oracle/py/twins/resunet.py), and one written by its
// state_dict() loads strictly here; on loading, the later alias is copied
// last (equal values in any file a shared tensor was saved from).
// Parameters are counted and trained once, under their first name
// ("backbone.*", as PyTorch's named_parameters()). A file that names each
// tensor once (safetensors' save_model drops the aliases) loads here
// non-strictly (models.LoadPretrained).
//
// w is the width, the backbone's base width (64 in the reference). Input
// sides are multiples of 16, from 16.
type ResUNet struct {
	nn.Base
	backbone   *encoder.ResNet
	bottleneck *block.DoubleConv
	decode     [4]*resunetUp // conv_decode3 .. conv_decode0
	outc       *nn.Path
}

// NewResUNet builds ResUNet of width c.Width (64 in the reference).
func NewResUNet(c Config) *ResUNet {
	w := c.Width
	m := &ResUNet{}
	b := &m.Base
	m.backbone = nn.Register(b, "backbone", encoder.NewResNet(101, encoder.InChannels(c.InChannels), encoder.Width(w),
		encoder.Stem(encoder.StemDeep), encoder.Taps(0, 1, 2, 3)))
	if m.backbone.Err() != nil {
		return m
	}
	parts := map[string]nn.Node{}
	for _, p := range m.backbone.Parts() {
		parts[p.Name] = p.Node
	}
	for _, a := range [][2]string{{"layer0", "conv1"}, {"pooling0", "maxpool"}, {"layer1", "layer1"}, {"layer2", "layer2"}, {"layer3", "layer3"}} {
		b.RegisterModule(a[0], parts[a[1]])
	}
	m.bottleneck = nn.Register(b, "bottleneck", block.NewDoubleConv(16*w, 16*w, 0))
	for i, io := range [][2]int64{{32 * w, 8 * w}, {16 * w, 4 * w}, {8 * w, 2 * w}, {4 * w, w}} {
		m.decode[i] = nn.Register(b, "conv_decode"+itoa(3-i), newResunetUp(io[0], io[1]))
	}
	m.outc = nn.Register(b, "outc", nn.NewPath("conv", nn.NewConv2d(w, c.Classes, 1)))
	return m
}

// resunetAliases are the backbone's parts registered a second time under
// the reference's names (NewResUNet), in the state dict's order.
var resunetAliases = []string{"layer0", "pooling0", "layer1", "layer2", "layer3"}

// Aliases implements nn.Aliaser: layer0, pooling0 and layer1..layer3 are
// the backbone's conv1, maxpool and layer1..3 under second names, for the
// state dict alone. Forward never applies them through those names: it
// reaches the encoder only by backbone.Split, which applies each part once
// (ResUNet keeps no field for the aliases, so nothing else could), and
// nn.ForwardTree checks that each is registered under the backbone too. So
// the fusion pass may fold the backbone's pairs, counting each module once;
// the fold changes the module itself, which both keys name.
func (m *ResUNet) Aliases() []string { return resunetAliases }

// Forward implements nn.Module: logits [N, classes, H, W] for an input
// whose sides are multiples of 16.
func (m *ResUNet) Forward(x *torch.Tensor) *torch.Tensor {
	if m.outc == nil {
		return torch.FromError(fmt.Errorf("models: resunet: %w", m.Err()))
	}
	if err := checkInputSides("resunet", x, resunetMultiple, resunetMultiple); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		e := m.backbone.Split(x) // layer0 (1/2), layer1 (1/4), layer2 (1/8), layer3 (1/16)
		if len(e) != 4 {
			return e[0]
		}
		d := m.bottleneck.Forward(e[3])
		for i, up := range m.decode {
			d = up.Merge(d, e[3-i])
		}
		return m.outc.Forward(d)
	})
}
