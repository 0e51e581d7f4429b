package models

import (
	"strconv"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "csnet", Description: "CS-Net (residual encoders, spatial and channel affinity attention)", DefaultWidth: 32, RefParams: 8_925_636, Multiple: 16,
		TestWidth: 4, TestSizes: [][2]int64{{16, 16}, {64, 96}, {128, 128}, {512, 512}}, Twin: "csnet.CSNet",
		Build: func(c Config) (nn.Module, error) { return NewCSNet(c, CSNetOptions{}), nil }})
}

// CSNetOptions are CS-Net's own constructor arguments: the reference's two
// quirks, both off by default.
type CSNetOptions struct {
	// BatchZeroMaxima takes the channel attention's row maxima from batch
	// element 0 for every sample, as the reference's jt.max(...)[0] does
	// (Jittor's max returns the values, so [0] indexes the batch); by
	// default each sample uses its own. The softmax that follows is
	// unchanged by a constant per row, so the two differ only in rounding
	// and in how far the exponentials can overflow.
	BatchZeroMaxima bool
	// Sigmoid ends the model in a sigmoid, as the reference does, though it
	// trains it with cross-entropy (which then collapses); by default
	// Forward returns logits.
	Sigmoid bool
}

// csnetResEncoder is the reference's ResEncoder: conv3 "conv1" + BN "bn1"
// + ReLU, conv3 "conv2" + BN "bn2" + ReLU, plus a 1×1 "conv1x1" residual,
// then ReLU. Every convolution has a bias.
type csnetResEncoder struct {
	nn.Base
	conv1, conv2, conv1x1 *nn.Conv2d
	bn1, bn2              nn.Module // BatchNorms (FoldedBatchNorms once fused)
}

func newCSNetResEncoder(in, out int64) *csnetResEncoder {
	e := &csnetResEncoder{}
	b := &e.Base
	e.conv1 = nn.Register(b, "conv1", nn.NewConv2d(in, out, 3, nn.Padding(1)))
	e.bn1 = nn.Register(b, "bn1", nn.NewBatchNorm2d(out))
	e.conv2 = nn.Register(b, "conv2", nn.NewConv2d(out, out, 3, nn.Padding(1)))
	e.bn2 = nn.Register(b, "bn2", nn.NewBatchNorm2d(out))
	e.conv1x1 = nn.Register(b, "conv1x1", nn.NewConv2d(in, out, 1))
	return e
}

// FoldPairs implements nn.PairFolder: conv1→bn1 and conv2→bn2 (the 1×1
// residual has no norm).
func (e *csnetResEncoder) FoldPairs(fold func(*nn.Conv2d, nn.Module) nn.Module) error {
	e.bn1, e.bn2 = fold(e.conv1, e.bn1), fold(e.conv2, e.bn2)
	return nil
}

func (e *csnetResEncoder) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		residual := e.conv1x1.Forward(x)
		out := nn.ReluInPlace(e.bn1.Forward(e.conv1.Forward(x)))
		out = nn.ReluInPlace(e.bn2.Forward(e.conv2.Forward(out)))
		return nn.ReluInPlace(out.Add(residual))
	})
}

// newCSNetSpatialAttention is the reference's SpatialAttentionBlock on c
// channels: position attention whose "query" is a 1×3 conv to c/8 + BN +
// ReLU, "key" a 3×1 conv to c/8 + BN + ReLU and "value" a 1×1 conv.
func newCSNetSpatialAttention(c int64) *block.PositionAttention {
	return block.NewPositionAttention([3]string{"query", "key", "value"},
		nn.Seq(block.CBR(c, c/8, 1, block.Kernel(1, 3))...),
		nn.Seq(block.CBR(c, c/8, 1, block.Kernel(3, 1))...),
		nn.NewConv2d(c, c, 1))
}

// csnetAffinityAttention is the reference's AffinityAttention: the sum of
// the spatial ("sab") and channel ("cab") attention of x.
type csnetAffinityAttention struct {
	nn.Base
	sab *block.PositionAttention
	cab *block.ChannelAttention
}

func newCSNetAffinityAttention(c int64, batchZero bool) *csnetAffinityAttention {
	a := &csnetAffinityAttention{}
	a.sab = nn.Register(&a.Base, "sab", newCSNetSpatialAttention(c))
	a.cab = nn.Register(&a.Base, "cab", block.NewChannelAttention(block.ChannelAttentionOptions{MaxMinus: true, BatchZeroMax: batchZero}))
	return a
}

func (a *csnetAffinityAttention) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor { return a.sab.Forward(x).Add(a.cab.Forward(x)) })
}

// CSNet is the reference's CS-Net (Mou et al., channel and spatial
// attention for curvilinear structures): residual encoders "enc_input",
// "encoder1".."encoder4" at base widths 1, 2, 4, 8, 16 (32..512 in the
// reference) with 2×2 max-pooling ("downsample") between them; affinity
// attention "affinity_attention" on the deepest features, concatenated with
// them and fused by the 1×1 "attention_fuse"; decoders "deconv4".."deconv1"
// (ConvTranspose 2×2 stride 2) each concatenated [skip, up] and fed to
// "decoder4".."decoder1" ((conv3 + BN + ReLU) × 2 as "conv", keys
// "decoder4.conv.0.weight"); "final", 1×1, gives the logits.
//
// The two attention scales are parameters, "affinity_attention.sab.gamma"
// and "affinity_attention.cab.gamma", zero at first (so the attention
// starts as twice the identity); in the state dict each comes before its
// module's children, as PyTorch lists them. Convolutions (not the
// transposed ones) start from Kaiming-normal weights and zero biases, as
// the reference's initialize_weights.
//
// The reference's quirks, per-batch maxima and a final sigmoid, are
// CSNetOptions, off by default. Input sides must be multiples of 16.
type CSNet struct {
	nn.Base
	enc     [5]*csnetResEncoder
	pool    *nn.MaxPool2d
	attn    *csnetAffinityAttention
	fuse    *nn.Conv2d
	dec     [4]*nn.Path // the reference's Decoder: "conv", (conv3 + BN + ReLU) × 2
	deconv  [4]*nn.ConvTranspose2d
	final   *nn.Conv2d
	sigmoid bool
}

// NewCSNet builds a CS-Net of base width c.Width (32 in the reference;
// 8,925,636 parameters with 3 input channels and 2 classes).
func NewCSNet(c Config, o CSNetOptions) *CSNet {
	w := c.Width
	m := &CSNet{sigmoid: o.Sigmoid}
	b := &m.Base
	in := c.InChannels
	for i := range m.enc {
		name := "enc_input"
		if i > 0 {
			name = "encoder" + strconv.Itoa(i)
		}
		m.enc[i] = nn.Register(b, name, newCSNetResEncoder(in, w<<i))
		in = w << i
	}
	m.pool = nn.Register(b, "downsample", nn.NewMaxPool2d(2))
	m.attn = nn.Register(b, "affinity_attention", newCSNetAffinityAttention(16*w, o.BatchZeroMaxima))
	m.fuse = nn.Register(b, "attention_fuse", nn.NewConv2d(32*w, 16*w, 1))
	for k := range m.dec { // k=0 is decoder4, the deepest
		hi := w << (4 - k)
		m.dec[k] = nn.Register(b, "decoder"+strconv.Itoa(4-k), nn.NewPath("conv", nn.Seq(block.DoubleCBR(hi, hi/2, hi/2)...)))
	}
	for k := range m.deconv {
		hi := w << (4 - k)
		m.deconv[k] = nn.Register(b, "deconv"+strconv.Itoa(4-k), nn.NewConvTranspose2d(hi, hi/2, 2, nn.Stride(2)))
	}
	m.final = nn.Register(b, "final", nn.NewConv2d(w, c.Classes, 1))
	if err := m.Err(); err == nil {
		// The reference's initialize_weights: Kaiming-normal convolution
		// weights (fan in, gain √2), zero biases.
		heInit("csnet", &m.Base, nn.FanIn)
	}
	return m
}

// Forward implements nn.Module: logits [N, classes, H, W] (probabilities
// with CSNetOptions.Sigmoid).
func (m *CSNet) Forward(x *torch.Tensor) *torch.Tensor {
	if err := checkInputSides("csnet", x, 16, 16); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		var skips [4]*torch.Tensor
		h := x
		for i, e := range m.enc {
			if i > 0 {
				skips[i-1] = h
				h = m.pool.Forward(h)
			}
			h = e.Forward(h)
		}
		h = m.fuse.Forward(torch.Cat([]*torch.Tensor{h, m.attn.Forward(h)}, 1))
		for k := range m.dec {
			h = m.dec[k].Forward(torch.Cat([]*torch.Tensor{skips[3-k], m.deconv[k].Forward(h)}, 1))
		}
		y := m.final.Forward(h)
		if m.sigmoid {
			y = y.Sigmoid()
		}
		return y
	})
}
