package models

import (
	"fmt"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "unext", Description: "UNeXt (conv stages, shifted-MLP tokens at 1/16 and 1/32, additive skips)", DefaultWidth: 16, RefParams: 1_471_938, Multiple: unextMultiple,
		TestWidth: 4, TestSizes: [][2]int64{{32, 32}, {64, 96}, {128, 128}, {512, 512}}, Twin: "unext.UNext",
		Build: func(c Config) (nn.Module, error) { return NewUNext(c, UNextOptions{}), nil }})
}

// unextMultiple: three pooling stages and two stride-2 patch embeddings.
const unextMultiple = 32

// UNextOptions are unext's reference quirks.
type UNextOptions struct {
	// ReferenceShift shifts the tokens along the height before both MLP
	// layers, as the reference's ShiftMLP does (jt.roll on axis 2 twice).
	// The default is the published UNeXt's: the height before fc1, the
	// width before fc2.
	ReferenceShift bool
}

// unextTokens turns [B, C, H, W] into tokens [B, H·W, C].
func unextTokens(x *torch.Tensor) *torch.Tensor { return x.Flatten(2, -1).Transpose(1, 2) }

// unextImage turns tokens [B, H·W, C] back into [B, C, H, W], as the
// reference's reshape(B, H, W, -1).permute(0, 3, 1, 2).
func unextImage(t *torch.Tensor, h, w int64) *torch.Tensor {
	return t.Reshape(t.Size(0), h, w, t.Size(2)).Permute(0, 3, 1, 2).Contiguous()
}

// unextShiftMLP is ShiftMLP (shift 5, mlp ratio 1, no dropout): the tokens,
// as an image, are zero-padded by 2, cut into 5 channel chunks (as
// torch.chunk), chunk i rolled by i-2 along the shift axis, cropped back;
// then "fc1", "dwconv.dwconv" (depthwise conv3 with bias), exact GELU, a
// second shift, "fc2".
type unextShiftMLP struct {
	nn.Base
	fc1, fc2    *nn.Linear
	dwconv      *nn.Path
	secondShift int64 // the axis of the second shift: 3 (width) or 2 (height, the reference)
}

const unextShiftSize = 5

func newUnextShiftMLP(dim int64, o UNextOptions) *unextShiftMLP {
	m := &unextShiftMLP{secondShift: 3}
	if o.ReferenceShift {
		m.secondShift = 2
	}
	b := &m.Base
	m.fc1 = nn.Register(b, "fc1", nn.NewLinear(dim, dim))
	m.dwconv = nn.Register(b, "dwconv", nn.NewPath("dwconv", nn.NewConv2d(dim, dim, 3, nn.Padding(1), nn.Groups(dim))))
	m.fc2 = nn.Register(b, "fc2", nn.NewLinear(dim, dim))
	return m
}

// unextShift shifts tokens t of an h×w map along axis (2: height, 3: width).
func unextShift(t *torch.Tensor, h, w, axis int64) *torch.Tensor {
	pad := int64(unextShiftSize / 2)
	x := unextImage(t, h, w).Pad([]int64{pad, pad, pad, pad}, torch.PadConstant, 0)
	chunks, err := x.Chunk(unextShiftSize, 1)
	if err != nil {
		return torch.FromError(err)
	}
	for i, c := range chunks {
		chunks[i] = c.Roll([]int64{int64(i) - pad}, []int64{axis})
	}
	x = torch.Cat(chunks, 1).Narrow(2, pad, h).Narrow(3, pad, w)
	return unextTokens(x)
}

// tokens maps tokens t [B, h·w, C] of an h×w map.
func (m *unextShiftMLP) tokens(t *torch.Tensor, h, w int64) *torch.Tensor {
	return nn.Frame(t, func(t *torch.Tensor) *torch.Tensor {
		t = m.fc1.Forward(unextShift(t, h, w, 2))
		t = unextTokens(m.dwconv.Forward(unextImage(t, h, w))).Gelu(false)
		return m.fc2.Forward(unextShift(t, h, w, m.secondShift))
	})
}

// unextShiftedBlock is ShiftedBlock: tokens + mlp(norm2(tokens)) (drop
// path 0: the identity).
type unextShiftedBlock struct {
	nn.Base
	norm2 *nn.LayerNorm
	mlp   *unextShiftMLP
}

func newUnextShiftedBlock(dim int64, o UNextOptions) *unextShiftedBlock {
	s := &unextShiftedBlock{}
	s.norm2 = nn.Register(&s.Base, "norm2", nn.NewLayerNorm([]int64{dim}))
	s.mlp = nn.Register(&s.Base, "mlp", newUnextShiftMLP(dim, o))
	return s
}

func (s *unextShiftedBlock) tokens(t *torch.Tensor, h, w int64) *torch.Tensor {
	return nn.Frame(t, func(t *torch.Tensor) *torch.Tensor {
		return t.Add(s.mlp.tokens(s.norm2.Forward(t), h, w))
	})
}

// unextPatchEmbed is OverlapPatchEmbed: "proj" conv3 stride 2 (padding 1,
// with bias), then LayerNorm "norm" over channels. Forward returns the
// normalised map as an image [B, C, H/2, W/2].
type unextPatchEmbed struct {
	nn.Base
	proj *nn.Conv2d
	norm *nn.LayerNorm
}

func newUnextPatchEmbed(in, out int64) *unextPatchEmbed {
	p := &unextPatchEmbed{}
	p.proj = nn.Register(&p.Base, "proj", nn.NewConv2d(in, out, 3, nn.Stride(2), nn.Padding(1)))
	p.norm = nn.Register(&p.Base, "norm", nn.NewLayerNorm([]int64{out}))
	return p
}

func (p *unextPatchEmbed) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		y := p.proj.Forward(x)
		return unextImage(p.norm.Forward(unextTokens(y)), y.Size(2), y.Size(3))
	})
}

// UNext is UNeXt (Valanarasu and Patel) as the reference builds it, at base
// width w (16): three conv stages "encoder1..3" (conv3 with bias) +
// "ebn1..3" + 2×2 max pooling + ReLU to w, 2w, 8w channels at 1/2, 1/4,
// 1/8; "patch_embed3" to 10w at 1/16 and "patch_embed4" to 16w at 1/32,
// each followed by a shifted-MLP block ("block1", "block2") and a
// LayerNorm ("norm3", "norm4"); a decoder "decoder1..5" (conv3) + "dbn1..4"
// + bilinear ×2 (align_corners False) + ReLU with additive skips, shifted
// MLP blocks "dblock1" (10w) and "dblock2" (8w) with LayerNorms "dnorm3",
// "dnorm4" after the first two; a 1×1 head "final". Keys follow the
// reference's attribute order: encoder1..3, ebn1..3, norm3, norm4, dnorm3,
// dnorm4, block1, block2, dblock1, dblock2 ("block1.mlp.dwconv.dwconv.weight"),
// patch_embed3, patch_embed4, decoder1..5, dbn1..4, final.
//
// Input height and width must be multiples of 32 (the smallest input is
// 32×32); others give an error naming the model.
type UNext struct {
	nn.Base
	encoder                          [3]*nn.Conv2d
	ebn                              [3]nn.Module // BatchNorms (FoldedBatchNorms once fused)
	norm3, norm4, dnorm3, dnorm4     *nn.LayerNorm
	block1, block2, dblock1, dblock2 *unextShiftedBlock
	patch3, patch4                   *unextPatchEmbed
	decoder                          [5]*nn.Conv2d
	dbn                              [4]nn.Module
	final                            *nn.Conv2d
	pool                             *nn.MaxPool2d
}

// NewUNext builds UNeXt at base width c.Width (16 in the reference) with
// the reference quirks o selects (none by default).
func NewUNext(c Config, o UNextOptions) *UNext {
	w := c.Width
	c1, c2, c3, e1, e2 := w, 2*w, 8*w, 10*w, 16*w
	m := &UNext{pool: nn.NewMaxPool2d(2)}
	b := &m.Base
	conv3 := func(in, out int64) *nn.Conv2d { return nn.NewConv2d(in, out, 3, nn.Padding(1)) }
	for i, io := range [][2]int64{{c.InChannels, c1}, {c1, c2}, {c2, c3}} {
		m.encoder[i] = nn.Register(b, fmt.Sprintf("encoder%d", i+1), conv3(io[0], io[1]))
	}
	for i, ch := range []int64{c1, c2, c3} {
		m.ebn[i] = nn.Register(b, fmt.Sprintf("ebn%d", i+1), nn.NewBatchNorm2d(ch))
	}
	m.norm3 = nn.Register(b, "norm3", nn.NewLayerNorm([]int64{e1}))
	m.norm4 = nn.Register(b, "norm4", nn.NewLayerNorm([]int64{e2}))
	m.dnorm3 = nn.Register(b, "dnorm3", nn.NewLayerNorm([]int64{e1}))
	m.dnorm4 = nn.Register(b, "dnorm4", nn.NewLayerNorm([]int64{c3}))
	m.block1 = nn.Register(b, "block1", newUnextShiftedBlock(e1, o))
	m.block2 = nn.Register(b, "block2", newUnextShiftedBlock(e2, o))
	m.dblock1 = nn.Register(b, "dblock1", newUnextShiftedBlock(e1, o))
	m.dblock2 = nn.Register(b, "dblock2", newUnextShiftedBlock(c3, o))
	m.patch3 = nn.Register(b, "patch_embed3", newUnextPatchEmbed(c3, e1))
	m.patch4 = nn.Register(b, "patch_embed4", newUnextPatchEmbed(e1, e2))
	for i, io := range [][2]int64{{e2, e1}, {e1, c3}, {c3, c2}, {c2, c1}, {c1, c1}} {
		m.decoder[i] = nn.Register(b, fmt.Sprintf("decoder%d", i+1), conv3(io[0], io[1]))
	}
	for i, ch := range []int64{e1, c3, c2, c1} {
		m.dbn[i] = nn.Register(b, fmt.Sprintf("dbn%d", i+1), nn.NewBatchNorm2d(ch))
	}
	m.final = nn.Register(b, "final", nn.NewConv2d(c1, c.Classes, 1))
	return m
}

// FoldPairs implements nn.PairFolder: encoder{i}→ebn{i} and
// decoder{i}→dbn{i}, each BatchNorm taking its convolution's output alone
// (before the pooling or up-sampling).
func (m *UNext) FoldPairs(fold func(*nn.Conv2d, nn.Module) nn.Module) error {
	for i := range m.ebn {
		m.ebn[i] = fold(m.encoder[i], m.ebn[i])
	}
	for i := range m.dbn {
		m.dbn[i] = fold(m.decoder[i], m.dbn[i])
	}
	return nil
}

func unextUp(x *torch.Tensor) *torch.Tensor { return torch.Upscale(x, 2, torch.Bilinear, false) }

// unextStage runs a shifted-MLP block and its LayerNorm on the map x.
func unextStage(x *torch.Tensor, blk *unextShiftedBlock, norm *nn.LayerNorm) *torch.Tensor {
	h, w := x.Size(2), x.Size(3)
	return unextImage(norm.Forward(blk.tokens(unextTokens(x), h, w)), h, w)
}

// Forward implements nn.Module: logits [N, classes, H, W].
func (m *UNext) Forward(x *torch.Tensor) *torch.Tensor {
	if err := x.Err(); err != nil {
		return torch.FromError(err)
	}
	if s := x.Shape(); len(s) != 4 || s[2]%unextMultiple != 0 || s[3]%unextMultiple != 0 || s[2] == 0 || s[3] == 0 {
		return torch.FromError(fmt.Errorf("models: unext takes [N, C, H, W] with H and W multiples of %d (at least %d×%d), got %v",
			unextMultiple, unextMultiple, unextMultiple, s))
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		var skips [3]*torch.Tensor
		out := x
		for i := range m.encoder {
			out = m.pool.Forward(m.ebn[i].Forward(m.encoder[i].Forward(out))).Relu()
			skips[i] = out
		}
		t4 := unextStage(m.patch3.Forward(out), m.block1, m.norm3)
		out = unextStage(m.patch4.Forward(t4), m.block2, m.norm4)
		out = unextUp(m.dbn[0].Forward(m.decoder[0].Forward(out))).Relu().Add(t4)
		out = unextStage(out, m.dblock1, m.dnorm3)
		out = unextUp(m.dbn[1].Forward(m.decoder[1].Forward(out))).Relu().Add(skips[2])
		out = unextStage(out, m.dblock2, m.dnorm4)
		out = unextUp(m.dbn[2].Forward(m.decoder[2].Forward(out))).Relu().Add(skips[1])
		out = unextUp(m.dbn[3].Forward(m.decoder[3].Forward(out))).Relu().Add(skips[0])
		out = unextUp(m.decoder[4].Forward(out)).Relu()
		return m.final.Forward(out)
	})
}
