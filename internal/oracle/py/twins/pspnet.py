"""PyTorch PSPNet in the layout of jmedseg's `pspnet` (the JMedSeg reference's
PSPNet, model/PSPNet.py): the reference's ResNet-101 (model/backbone/
resnet.py: deep stem without a norm after its third conv, output stride 16,
layer4 dilated 2, 4, 8), pyramid pooling bins 1, 2, 3, 6 as layer5a..d,
final_conv, bilinear resize (align_corners=False, Jittor's). Same parameter
names, order and count as the Go model; `width` is the backbone's base width
(64 in the reference), the bins and final_conv have 8·width channels.

`ResNet101`, `Bottleneck` and `resize` are shared with danet.py, ocnet.py and
ocrnet.py, whose reference models use the same backbone."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        residual = self.downsample(x) if self.downsample is not None else x
        return self.relu(out + residual)


class ResNet101(nn.Module):
    """The reference's backbone at output stride 16, returning all four
    layers (x_0 .. x_3 in the reference's names)."""

    def __init__(self, in_channels=3, width=64, layers=(3, 4, 23, 3)):
        super().__init__()
        w = width
        self.inplanes = 2 * w
        strides, dilations = [1, 2, 2, 1], [1, 1, 1, 2]
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
            nn.Conv2d(w, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 3, 1, 1, bias=False))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(w, layers[0], strides[0], dilations[0])
        self.layer2 = self._make_layer(2 * w, layers[1], strides[1], dilations[1])
        self.layer3 = self._make_layer(4 * w, layers[2], strides[2], dilations[2])
        self.layer4 = self._make_mg_unit(8 * w, [1, 2, 4], strides[3], dilations[3])

    def _down(self, planes, stride):
        if stride != 1 or self.inplanes != planes * 4:
            return nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))
        return None

    def _make_layer(self, planes, blocks, stride, dilation):
        mods = [Bottleneck(self.inplanes, planes, stride, dilation, self._down(planes, stride))]
        self.inplanes = planes * 4
        for _ in range(1, blocks):
            mods.append(Bottleneck(self.inplanes, planes, dilation=dilation))
        return nn.Sequential(*mods)

    def _make_mg_unit(self, planes, blocks, stride, dilation):
        mods = [Bottleneck(self.inplanes, planes, stride, blocks[0] * dilation, self._down(planes, stride))]
        self.inplanes = planes * 4
        for b in blocks[1:]:
            mods.append(Bottleneck(self.inplanes, planes, 1, b * dilation))
        return nn.Sequential(*mods)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        x0 = self.layer1(x)
        x1 = self.layer2(x0)
        x2 = self.layer3(x1)
        x3 = self.layer4(x2)
        return x0, x1, x2, x3


def resize(x, like):
    """Jittor's nn.resize(mode='bilinear'): align_corners=False."""
    return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=False)


class PyramidPool(nn.Module):
    def __init__(self, in_channels, out_channels, pool_size):
        super().__init__()
        self.conv = nn.Sequential(nn.AdaptiveAvgPool2d(pool_size), nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                  nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def forward(self, x):
        return resize(self.conv(x), x)


class PSPNet(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=64):
        super().__init__()
        w = width
        self.backbone = ResNet101(in_channels, w)
        self.layer5a = PyramidPool(32 * w, 8 * w, 1)
        self.layer5b = PyramidPool(32 * w, 8 * w, 2)
        self.layer5c = PyramidPool(32 * w, 8 * w, 3)
        self.layer5d = PyramidPool(32 * w, 8 * w, 6)
        self.final_conv = nn.Sequential(
            nn.Conv2d(64 * w, 8 * w, 3, padding=1, bias=False), nn.BatchNorm2d(8 * w), nn.ReLU(inplace=True),
            nn.Dropout(.3), nn.Conv2d(8 * w, classes, 1))

    def forward(self, x):
        _, _, _, f = self.backbone(x)
        f = torch.cat([f, self.layer5a(f), self.layer5b(f), self.layer5c(f), self.layer5d(f)], 1)
        return resize(self.final_conv(f), x)


if __name__ == "__main__":
    print(sum(p.numel() for p in PSPNet().parameters()))
