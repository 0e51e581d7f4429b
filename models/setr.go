package models

import (
	"fmt"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "setr", Description: "simplified SETR: 32×32 patches, 8-layer transformer, progressive up-sampling decoder", DefaultWidth: 1024, RefParams: 64_033_730, Multiple: 32,
		TestWidth: 32, TestSizes: [][2]int64{{32, 32}, {64, 96}, {128, 128}, {512, 512}}, Twin: "setr.SETR",
		Build: func(c Config) (nn.Module, error) {
			m, err := NewSETR(c)
			if err != nil {
				return nil, err // not a typed nil inside the interface
			}
			return m, nil
		}})
}

const (
	setrPatch     = 32
	setrMaxTokens = 512
	setrLayers    = 8
	setrHeads     = 16
)

// transformerEncoder is nn.TransformerEncoder: "layers" then a final "norm".
type transformerEncoder struct {
	nn.Base
	layers *nn.List
	norm   *nn.LayerNorm
}

func (e *transformerEncoder) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		for i := 0; i < e.layers.Len(); i++ {
			x = e.layers.At(i).(*nn.TransformerEncoderLayer).Forward(x)
		}
		return e.norm.Forward(x)
	})
}

// SETR is the reference's simplified SETR. Each 32×32 patch (channel-major,
// as F.unfold orders it) is embedded by Linear + GELU + LayerNorm; a fixed
// random position table (a buffer, not trained) is added; 8 post-norm
// transformer layers with 16 heads and a feed-forward as wide as the
// embedding follow, then a final LayerNorm. A Linear to 4·D per token is
// laid out as D channels over 2×2 pixels, giving a D-channel map at 1/16 of
// the input, which four conv3 + BN + ReLU + bilinear ×2 stages (D/2, D/4,
// D/8, D/16 channels) bring to full size before a conv3 classifier.
type SETR struct {
	nn.Base
	embed   *nn.Sequential
	pos     *torch.Tensor
	encoder *transformerEncoder
	proj    *nn.Linear
	decoder *nn.Sequential
	dim     int64
}

// NewSETR builds SETR with embedding width c.Width (1024), which must be a
// multiple of 16 (the heads); the decoder's widths follow it.
func NewSETR(c Config) (*SETR, error) {
	d := c.Width
	if d%setrHeads != 0 || d < 16 {
		return nil, fmt.Errorf("width %d must be a multiple of %d", d, setrHeads)
	}
	m := &SETR{dim: d}
	b := &m.Base
	m.embed = nn.Register(b, "patch_embed", nn.Seq(nn.NewLinear(c.InChannels*setrPatch*setrPatch, d), nn.GELU(false), nn.NewLayerNorm([]int64{d})))
	m.pos = b.RegisterBuffer("pos_embed", torch.Randn([]int64{setrMaxTokens, d}))
	enc := &transformerEncoder{}
	enc.layers = nn.Register(&enc.Base, "layers", nn.NewList())
	for i := 0; i < setrLayers; i++ {
		enc.layers.Append(nn.NewTransformerEncoderLayer(d, setrHeads, d, nn.BatchFirst()))
	}
	enc.norm = nn.Register(&enc.Base, "norm", nn.NewLayerNorm([]int64{d}))
	m.encoder = nn.Register(b, "encoder", enc)
	m.proj = nn.Register(b, "proj", nn.NewLinear(d, 4*d))
	var mods []nn.Module
	in := d
	for i := 0; i < 4; i++ {
		out := in / 2
		mods = append(mods, block.CBR(in, out, 3)...)
		mods = append(mods, nn.NewUpsample(2, torch.Bilinear))
		in = out
	}
	mods = append(mods, nn.NewConv2d(in, c.Classes, 3, nn.Padding(1)))
	m.decoder = nn.Register(b, "decoder", nn.Seq(mods...))
	return m, nil
}

// Forward implements nn.Module. Height and width must be multiples of 32
// with at most 512 patches.
func (m *SETR) Forward(x *torch.Tensor) *torch.Tensor {
	if err := x.Err(); err != nil {
		return x
	}
	s := x.Shape()
	if len(s) != 4 || s[2]%setrPatch != 0 || s[3]%setrPatch != 0 {
		return torch.FromError(fmt.Errorf("setr: input %v: want [N, C, H, W] with H and W multiples of %d", s, setrPatch))
	}
	n, c, gh, gw := s[0], s[1], s[2]/setrPatch, s[3]/setrPatch
	tokens := gh * gw
	if tokens > setrMaxTokens {
		return torch.FromError(fmt.Errorf("setr: %dx%d input makes %d patches; the position table holds %d", s[2], s[3], tokens, setrMaxTokens))
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		p := x.View(n, c, gh, setrPatch, gw, setrPatch).Permute(0, 2, 4, 1, 3, 5).Reshape(n, tokens, c*setrPatch*setrPatch)
		pos := x.Scope().Track(m.pos.Narrow(0, 0, tokens)) // of a buffer alone: unscoped
		h := m.encoder.Forward(m.embed.Forward(p).Add(pos))
		f := m.proj.Forward(h).View(n, gh, gw, m.dim, 2, 2).Permute(0, 3, 1, 4, 2, 5).Reshape(n, m.dim, 2*gh, 2*gw)
		return m.decoder.Forward(f)
	})
}
