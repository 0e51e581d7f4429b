"""PyTorch DeepLabV3+ on a ResNet-101 deep-stem OS16 backbone, in the layout
of jmedseg's `deeplab` (no ImageNet weights, as the reference)."""
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
        self.downsample = downsample

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        idt = self.downsample(x) if self.downsample is not None else x
        return torch.relu(out + idt)


class ResNet101(nn.Module):
    """Deep stem, output stride 16, multigrid (1, 2, 4) in layer4."""

    def __init__(self, in_channels=3, width=64, layers=(3, 4, 23, 3)):
        super().__init__()
        w = width
        self.conv1 = nn.Conv2d(in_channels, w, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.conv2 = nn.Conv2d(w, w, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(w)
        # one BatchNorm fewer than the textbook deep stem: the reference's stated counts
        self.conv3 = nn.Conv2d(w, 2 * w, 3, 1, 1, bias=False)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.inplanes = 2 * w
        self.layer1 = self._layer(w, layers[0])
        self.layer2 = self._layer(2 * w, layers[1], stride=2)
        self.layer3 = self._layer(4 * w, layers[2], stride=2)
        self.layer4 = self._layer(8 * w, layers[3], stride=1, dilations=[2, 4, 8])

    def _layer(self, planes, blocks, stride=1, dilations=None):
        dilations = dilations or [1] * blocks
        down = None
        if stride != 1 or self.inplanes != planes * 4:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))
        mods = [Bottleneck(self.inplanes, planes, stride, dilations[0], down)]
        self.inplanes = planes * 4
        for i in range(1, blocks):
            mods.append(Bottleneck(self.inplanes, planes, 1, dilations[i]))
        return nn.Sequential(*mods)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = torch.relu(self.conv3(x))
        x = self.maxpool(x)
        low = self.layer1(x)
        x = self.layer4(self.layer3(self.layer2(low)))
        return x, low


def cbr(cin, cout, k, dilation=1):
    return [nn.Conv2d(cin, cout, k, padding=(k // 2) * dilation, dilation=dilation, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class ASPP(nn.Module):
    def __init__(self, cin, c=256):
        super().__init__()
        self.aspp1 = nn.Sequential(*cbr(cin, c, 1))
        self.aspp2 = nn.Sequential(*cbr(cin, c, 3, 6))
        self.aspp3 = nn.Sequential(*cbr(cin, c, 3, 12))
        self.aspp4 = nn.Sequential(*cbr(cin, c, 3, 18))
        self.global_avg_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), *cbr(cin, c, 1))
        self.conv1 = nn.Conv2d(5 * c, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        g = self.global_avg_pool(x)
        g = F.interpolate(g, size=x.shape[2:], mode="bilinear", align_corners=True)
        x = torch.cat([self.aspp1(x), self.aspp2(x), self.aspp3(x), self.aspp4(x), g], 1)
        return self.dropout(torch.relu(self.bn1(self.conv1(x))))


class Decoder(nn.Module):
    def __init__(self, low, classes, c=256):
        super().__init__()
        self.conv1 = nn.Conv2d(low, 48, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(48)
        self.last_conv = nn.Sequential(*cbr(c + 48, c, 3), nn.Dropout(0.5), *cbr(c, c, 3), nn.Dropout(0.1), nn.Conv2d(c, classes, 1))

    def forward(self, x, low):
        low = torch.relu(self.bn1(self.conv1(low)))
        x = F.interpolate(x, size=low.shape[2:], mode="bilinear", align_corners=True)
        return self.last_conv(torch.cat([x, low], 1))


class DeepLab(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=64):
        super().__init__()
        self.backbone = ResNet101(in_channels, width)
        self.aspp = ASPP(32 * width)
        self.decoder = Decoder(4 * width, classes)

    def forward(self, x):
        feat, low = self.backbone(x)
        out = self.decoder(self.aspp(feat), low)
        return F.interpolate(out, size=x.shape[2:], mode="bilinear", align_corners=True)


if __name__ == "__main__":
    print(sum(p.numel() for p in DeepLab().parameters()))
