package models

import (
	"strconv"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func itoa(i int) string { return strconv.Itoa(i) }

// bottleneck is ResNet's 1×1 → 3×3 → 1×1 block with expansion 4.
type bottleneck struct {
	nn.Base
	conv1, conv2, conv3 *nn.Conv2d
	bn1, bn2, bn3       *nn.BatchNorm
	downsample          *nn.Sequential // nil when the identity fits
}

func newBottleneck(in, planes, stride, dilation int64, down bool) *bottleneck {
	k := &bottleneck{}
	b := &k.Base
	k.conv1 = nn.Register(b, "conv1", nn.NewConv2d(in, planes, 1, nn.NoBias()))
	k.bn1 = nn.Register(b, "bn1", nn.NewBatchNorm2d(planes))
	k.conv2 = nn.Register(b, "conv2", nn.NewConv2d(planes, planes, 3, nn.Stride(stride), nn.Padding(dilation), nn.Dilation(dilation), nn.NoBias()))
	k.bn2 = nn.Register(b, "bn2", nn.NewBatchNorm2d(planes))
	k.conv3 = nn.Register(b, "conv3", nn.NewConv2d(planes, 4*planes, 1, nn.NoBias()))
	k.bn3 = nn.Register(b, "bn3", nn.NewBatchNorm2d(4*planes))
	if down {
		k.downsample = nn.Register(b, "downsample", nn.Seq(nn.NewConv2d(in, 4*planes, 1, nn.Stride(stride), nn.NoBias()), nn.NewBatchNorm2d(4*planes)))
	}
	return k
}

func (k *bottleneck) Forward(x *torch.Tensor) *torch.Tensor {
	c1 := k.conv1.Forward(x)
	b1 := relu(k.bn1.Forward(c1))
	c2 := k.conv2.Forward(b1)
	b2 := relu(k.bn2.Forward(c2))
	c3 := k.conv3.Forward(b2)
	b3 := k.bn3.Forward(c3)
	free(c1, b1, c2, b2, c3)
	idt := x
	if k.downsample != nil {
		idt = k.downsample.Forward(x)
	}
	out := relu(b3.Add(idt))
	b3.Free()
	if idt != x {
		idt.Free()
	}
	return out
}

// ResNet is ResNet-101 with the deep stem at output stride 16: layer3 ends
// at 1/16 and layer4 keeps it with dilation 2 and multigrid (1, 2, 4).
//
// The stem is conv3 s2 + BN + ReLU, conv3 + BN + ReLU, conv3 + ReLU: one
// 128-channel BatchNorm fewer than the textbook deep stem, which is what
// the reference's stated parameter counts for deeplab and pspnet imply.
type ResNet struct {
	nn.Base
	conv1, conv2, conv3 *nn.Conv2d
	bn1, bn2            *nn.BatchNorm
	maxpool             *nn.MaxPool2d
	layers              [4]*nn.Sequential
}

// NewResNet101 builds the backbone with base width w (64).
func NewResNet101(in, w int64) *ResNet {
	r := &ResNet{}
	b := &r.Base
	r.conv1 = nn.Register(b, "conv1", nn.NewConv2d(in, w, 3, nn.Stride(2), nn.Padding(1), nn.NoBias()))
	r.bn1 = nn.Register(b, "bn1", nn.NewBatchNorm2d(w))
	r.conv2 = nn.Register(b, "conv2", nn.NewConv2d(w, w, 3, nn.Padding(1), nn.NoBias()))
	r.bn2 = nn.Register(b, "bn2", nn.NewBatchNorm2d(w))
	r.conv3 = nn.Register(b, "conv3", nn.NewConv2d(w, 2*w, 3, nn.Padding(1), nn.NoBias()))
	r.maxpool = nn.Register(b, "maxpool", nn.NewMaxPool2d(3, nn.Stride(2), nn.Padding(1)))
	inplanes := 2 * w
	blocks := []int{3, 4, 23, 3}
	strides := []int64{1, 2, 2, 1}
	for i := range r.layers {
		planes := w << i
		seq := nn.Seq()
		for j := 0; j < blocks[i]; j++ {
			stride, dil := int64(1), int64(1)
			if j == 0 {
				stride = strides[i]
			}
			if i == 3 {
				dil = 2 << j // multigrid (1, 2, 4) at dilation 2
			}
			seq.Append(newBottleneck(inplanes, planes, stride, dil, j == 0 && (stride != 1 || inplanes != 4*planes)))
			inplanes = 4 * planes
		}
		r.layers[i] = nn.Register(b, "layer"+itoa(i+1), seq)
	}
	return r
}

// Features returns layer4's output (32w channels at 1/16) and layer1's
// (4w channels at 1/4).
func (r *ResNet) Features(x *torch.Tensor) (high, low *torch.Tensor) {
	c1 := r.conv1.Forward(x)
	b1 := relu(r.bn1.Forward(c1))
	c2 := r.conv2.Forward(b1)
	b2 := relu(r.bn2.Forward(c2))
	c3 := relu(r.conv3.Forward(b2)) // conv backward needs its input, not its output
	p := r.maxpool.Forward(c3)
	free(c1, b1, c2, b2, c3)
	low = r.layers[0].Forward(p)
	p.Free()
	l2 := r.layers[1].Forward(low)
	l3 := r.layers[2].Forward(l2)
	high = r.layers[3].Forward(l3)
	free(l2, l3)
	return high, low
}
