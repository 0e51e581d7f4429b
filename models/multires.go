package models

import (
	"strconv"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func init() {
	Register(Spec{Name: "multires", Description: "MultiResUNet (MultiRes blocks, residual paths, reflection padding)", DefaultWidth: 32, RefParams: 7_244_828, Multiple: 16, MinSize: 32,
		TestWidth: 8, TestSizes: [][2]int64{{32, 32}, {64, 96}, {128, 128}, {512, 512}}, Twin: "multires.MultiResUNet",
		Build: func(c Config) (nn.Module, error) { return NewMultiResUNet(c), nil }})
}

// multiresMinSize is the smallest input side MultiResUNet takes: its 3×3
// convolutions reflect-pad by one pixel, which needs at least 2×2 pixels at
// the deepest level, 1/16.
const multiresMinSize = 32

// multiresAlpha is the reference's α, the MultiRes blocks' width factor.
const multiresAlpha = 1.67

// multiresWidths are a MultiRes block's three chained convolution widths for
// u filters, W·0.167, W·0.333 and W·0.5 with W = α·u, truncated as the
// reference's int() does.
func multiresWidths(u int64) (a, b, c int64) {
	w := multiresAlpha * float64(u)
	return int64(w * 0.167), int64(w * 0.333), int64(w * 0.5)
}

// multiresConvBN is the reference's conv2d_bn, an nn.Sequential: "0" the
// "same" padding (reflection; an identity for 1×1 kernels, which pad by
// nothing), "1" the k×k convolution without bias, "2" BatchNorm, then ReLU
// where relu is set.
func multiresConvBN(in, out, k int64, relu bool) *nn.Sequential {
	var pad nn.Module = nn.NewIdentity()
	if k > 1 {
		a := k / 2
		b := a
		if k%2 == 0 {
			b = a - 1
		}
		pad = nn.ReflectionPad2d(a, b, a, b)
	}
	s := nn.Seq(pad, nn.NewConv2d(in, out, k, nn.NoBias()), nn.NewBatchNorm2d(out))
	if relu {
		s.Append(nn.ReLUInPlace())
	}
	return s
}

// multiresBlock is the reference's MultiResBlock: a 1×1 shortcut
// "conv2d_bn" (no ReLU) and three chained 3×3 conv2d_bn "conv3x3",
// "conv5x5", "conv7x7" (the names of the receptive fields they stand for),
// whose outputs are concatenated, normalised by "bn_1", added to the
// shortcut, passed through ReLU and normalised again by "bn_2".
type multiresBlock struct {
	nn.Base
	out                           int64
	shortcut, conv3, conv5, conv7 *nn.Sequential
	bn1, bn2                      *nn.BatchNorm
}

func newMultiresBlock(in, u int64) *multiresBlock {
	a, b, c := multiresWidths(u)
	m := &multiresBlock{out: a + b + c}
	base := &m.Base
	m.shortcut = nn.Register(base, "conv2d_bn", multiresConvBN(in, m.out, 1, false))
	m.conv3 = nn.Register(base, "conv3x3", multiresConvBN(in, a, 3, true))
	m.conv5 = nn.Register(base, "conv5x5", multiresConvBN(a, b, 3, true))
	m.conv7 = nn.Register(base, "conv7x7", multiresConvBN(b, c, 3, true))
	m.bn1 = nn.Register(base, "bn_1", nn.NewBatchNorm2d(m.out))
	m.bn2 = nn.Register(base, "bn_2", nn.NewBatchNorm2d(m.out))
	return m
}

func (m *multiresBlock) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		shortcut := m.shortcut.Forward(x)
		c3 := m.conv3.Forward(x)
		c5 := m.conv5.Forward(c3)
		c7 := m.conv7.Forward(c5)
		out := m.bn1.Forward(torch.Cat([]*torch.Tensor{c3, c5, c7}, 1))
		return m.bn2.Forward(nn.ReluInPlace(shortcut.Add(out)))
	})
}

// multiresResPathBlock is the reference's ResPathBlock: a 1×1 shortcut
// "conv2d_bn1" (no ReLU) plus a 3×3 "conv2d_bn2", ReLU, BatchNorm "bn".
type multiresResPathBlock struct {
	nn.Base
	shortcut, conv *nn.Sequential
	bn             *nn.BatchNorm
}

func newMultiresResPathBlock(in, filters int64) *multiresResPathBlock {
	m := &multiresResPathBlock{}
	m.shortcut = nn.Register(&m.Base, "conv2d_bn1", multiresConvBN(in, filters, 1, false))
	m.conv = nn.Register(&m.Base, "conv2d_bn2", multiresConvBN(in, filters, 3, true))
	m.bn = nn.Register(&m.Base, "bn", nn.NewBatchNorm2d(filters))
	return m
}

func (m *multiresResPathBlock) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		return m.bn.Forward(nn.ReluInPlace(m.shortcut.Forward(x).Add(m.conv.Forward(x))))
	})
}

// multiresResPath is the reference's ResPath of length n: "first_block"
// (in → filters), then "blocks", an nn.Sequential of n-1 blocks (empty for
// n = 1).
type multiresResPath struct {
	nn.Base
	first  *multiresResPathBlock
	blocks *nn.Sequential
}

func newMultiresResPath(in, filters int64, n int) *multiresResPath {
	m := &multiresResPath{}
	m.first = nn.Register(&m.Base, "first_block", newMultiresResPathBlock(in, filters))
	m.blocks = nn.Register(&m.Base, "blocks", nn.Seq())
	for i := 1; i < n; i++ {
		m.blocks.Append(newMultiresResPathBlock(filters, filters))
	}
	return m
}

func (m *multiresResPath) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor { return m.blocks.Forward(m.first.Forward(x)) })
}

// MultiResUNet is the reference's MultiResUnet (after makifozkanoglu's
// PyTorch port of Ibtehaz & Rahman): base width nf (32), α 1.67. Encoder
// MultiRes blocks "mres_block1".."mres_block5" for nf·1, 2, 4, 8, 16, with
// 2×2 max-pooling between them; each of the first four skips goes through a
// residual path "res_path1".."res_path4" of lengths 4, 3, 2, 1 to nf·1, 2,
// 4, 8 channels. Decoder: "deconv1".."deconv4" (ConvTranspose 2×2, stride
// 2, with bias) to nf·8, 4, 2, 1, concatenated [up, skip] and fed to
// "mres_block6".."mres_block9"; "conv10" is a 1×1 conv2d_bn (no bias, then
// BatchNorm, as the reference) to the classes, giving the logits.
//
// Every convolution but the deconvolutions pads "same" by reflection and
// has no bias; each is followed by an affine BatchNorm, as in the reference
// (Jittor's BatchNorm is affine; the PyTorch port it came from made some
// non-affine). Keys follow the reference's attributes:
// "mres_block1.conv3x3.1.weight", "mres_block1.bn_1.running_mean",
// "res_path1.blocks.2.conv2d_bn2.2.weight", "deconv1.bias",
// "conv10.2.weight".
//
// Input sides must be multiples of 16 and at least 32: below that the
// deepest map is 1×1, which reflection padding cannot pad; Forward returns
// an error naming the sizes it takes.
type MultiResUNet struct {
	nn.Base
	pool   *nn.MaxPool2d
	enc    [5]*multiresBlock
	paths  [4]*multiresResPath
	deconv [4]*nn.ConvTranspose2d
	dec    [4]*multiresBlock
	conv10 *nn.Sequential
}

// NewMultiResUNet builds a MultiResUNet of base width c.Width (nf, 32 in
// the reference; 7,244,828 parameters with 3 input channels and 2
// classes).
func NewMultiResUNet(c Config) *MultiResUNet {
	nf := c.Width
	m := &MultiResUNet{}
	b := &m.Base
	in := c.InChannels
	for i := range m.enc {
		u := nf << i
		m.enc[i] = nn.Register(b, "mres_block"+strconv.Itoa(i+1), newMultiresBlock(in, u))
		in = m.enc[i].out
		if i == 0 {
			m.pool = nn.Register(b, "pool", nn.NewMaxPool2d(2))
		}
		if i < 4 {
			m.paths[i] = nn.Register(b, "res_path"+strconv.Itoa(i+1), newMultiresResPath(in, u, 4-i))
		}
	}
	for k := range m.dec { // k=0 is the deepest: deconv1, mres_block6
		u := nf << (3 - k)
		m.deconv[k] = nn.Register(b, "deconv"+strconv.Itoa(k+1), nn.NewConvTranspose2d(in, u, 2, nn.Stride(2)))
		m.dec[k] = nn.Register(b, "mres_block"+strconv.Itoa(k+6), newMultiresBlock(2*u, u))
		in = m.dec[k].out
	}
	m.conv10 = nn.Register(b, "conv10", multiresConvBN(in, c.Classes, 1, false))
	return m
}

// Forward implements nn.Module: logits [N, classes, H, W].
func (m *MultiResUNet) Forward(x *torch.Tensor) *torch.Tensor {
	if err := checkInputSides("multires", x, 16, multiresMinSize); err != nil {
		return torch.FromError(err)
	}
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		var skips [4]*torch.Tensor
		h := x
		for i, e := range m.enc {
			h = e.Forward(h)
			if i < 4 {
				skips[i] = m.paths[i].Forward(h)
				h = m.pool.Forward(h)
			}
		}
		for k, d := range m.dec {
			h = d.Forward(torch.Cat([]*torch.Tensor{m.deconv[k].Forward(h), skips[3-k]}, 1))
		}
		return m.conv10.Forward(h)
	})
}
