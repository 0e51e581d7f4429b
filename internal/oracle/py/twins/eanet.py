"""PyTorch EANet in the layout of jmedseg's `eanet` (the JMedSeg reference's
EANet, model/EANet.py): its own ResNet-101 with the reference's NormLayer
(GroupNorm of 32/16/8/4/1 groups from 512/256/128/64/fewer channels, child
"norm") everywhere, a deep stem (conv1.0..6, then bn1 and a 2x2 max-pooling),
output stride 16 (layer4 stride 1, its blocks dilated 1, 4, 8); fc0 (conv3
32w -> 8w + NormLayer + ReLU), the external-attention head (lrfea.py's
External_attention on 8w channels with w memory units), fc1 (3x3 stride-2
transposed conv 8w -> 4w + NormLayer + ReLU, Dropout 0.1), fc2 (2x2 stride-2
transposed conv to the classes) and a bilinear resize (align_corners=False,
Jittor's nn.resize) to the input. Same parameter names, order and count as
the Go model; `width` is the backbone's base width (64 in the reference)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from lrfea import External_attention, NormLayer


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = NormLayer(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = NormLayer(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = NormLayer(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        residual = self.downsample(x) if self.downsample is not None else x
        return self.relu(out + residual)


class ResNet101(nn.Module):
    def __init__(self, in_channels=3, w=64, layers=(3, 4, 23, 3)):
        super().__init__()
        self.inplanes = 2 * w
        strides, dilations = [1, 2, 2, 1], [1, 1, 1, 2]
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, 2, 1, bias=False), NormLayer(w), nn.ReLU(inplace=True),
            nn.Conv2d(w, w, 3, 1, 1, bias=False), NormLayer(w), nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 3, 1, 1, bias=False))
        self.bn1 = NormLayer(2 * w)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(w, layers[0], strides[0], dilations[0])
        self.layer2 = self._make_layer(2 * w, layers[1], strides[1], dilations[1])
        self.layer3 = self._make_layer(4 * w, layers[2], strides[2], dilations[2])
        self.layer4 = self._make_mg_unit(8 * w, [1, 2, 4], strides[3], dilations[3])

    def _down(self, planes, stride):
        if stride != 1 or self.inplanes != planes * 4:
            return nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride, bias=False), NormLayer(planes * 4))
        return None

    def _make_layer(self, planes, blocks, stride, dilation):
        mods = [Bottleneck(self.inplanes, planes, stride, 1, self._down(planes, stride))]
        self.inplanes = planes * 4
        for _ in range(1, blocks):
            mods.append(Bottleneck(self.inplanes, planes, dilation=dilation))
        return nn.Sequential(*mods)

    def _make_mg_unit(self, planes, blocks, stride, dilation):
        # As the reference: the first block is not dilated, the others
        # dilate blocks[i] * dilation (4 and 8).
        mods = [Bottleneck(self.inplanes, planes, stride, 1, self._down(planes, stride))]
        self.inplanes = planes * 4
        for b in blocks[1:]:
            mods.append(Bottleneck(self.inplanes, planes, 1, b * dilation))
        return nn.Sequential(*mods)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 2, 2)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class ConvBNReLU(nn.Module):
    def __init__(self, c_in, c_out, k, stride, padding, dilation):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride, padding, dilation, bias=False)
        self.bn = NormLayer(c_out)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class DeconvBNReLU(nn.Module):
    def __init__(self, c_in, c_out, k, stride, padding, output_padding, dilation):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(c_in, c_out, k, stride, padding, output_padding, dilation=dilation, bias=False)
        self.bn = NormLayer(c_out)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.deconv(x)))


class EANet(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=64):
        super().__init__()
        w = width
        self.backbone = ResNet101(in_channels, w)
        self.fc0 = ConvBNReLU(32 * w, 8 * w, 3, 1, 1, 1)
        self.head = External_attention(8 * w, w)
        self.fc1 = nn.Sequential(DeconvBNReLU(8 * w, 4 * w, 3, 2, 1, 1, 1), nn.Dropout(p=0.1))
        self.fc2 = nn.ConvTranspose2d(4 * w, classes, 2, stride=2, bias=True)

    def forward(self, x):
        size = x.shape[2:]
        y = self.fc2(self.fc1(self.head(self.fc0(self.backbone(x)))))
        return F.interpolate(y, size=size, mode="bilinear", align_corners=False)


if __name__ == "__main__":
    print(sum(p.numel() for p in EANet().parameters()))
