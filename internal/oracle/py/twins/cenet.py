"""PyTorch CE-Net in the layout of jmedseg's `cenet` (the JMedSeg reference's
CE_Net_, model/CENet.py): a ResNet-34 encoder (torchvision's layout, taken
apart as firstconv, firstbn, firstrelu, firstmaxpool, encoder1..4), the DAC
block (dilations 1, 3, 5 and one shared 1x1, biases zero at first), the RMP
block (max-pooling 2, 3, 5, 6, one shared 1x1 to one channel, bilinear back,
concatenated: 8w + 4 channels), LinkNet decoder blocks with additive skips,
then finaldeconv1 (4x4 stride-2 transposed conv to 32), finalconv2,
finalconv3 to the classes. Same parameter names, order and count as the Go
model; `width` is the ResNet's base width (64 in the reference), the final
convolutions keep the reference's 32 channels at every width.

`ResNet`, `DecoderBlock` and `resize` are shared with dlink.py (D-LinkNet
takes its ResNet-50 apart the same way)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        idn = self.downsample(x) if self.downsample is not None else x
        return self.relu(out + idn)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        idn = self.downsample(x) if self.downsample is not None else x
        return self.relu(out + idn)


class ResNet(nn.Module):
    """torchvision's ResNet without its classifier (what Jittor's
    models.resnet34/resnet50 build), base width w."""

    def __init__(self, block, layers, in_channels=3, w=64):
        super().__init__()
        self.inplanes = w
        self.conv1 = nn.Conv2d(in_channels, w, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, w, layers[0], 1)
        self.layer2 = self._make_layer(block, 2 * w, layers[1], 2)
        self.layer3 = self._make_layer(block, 4 * w, layers[2], 2)
        self.layer4 = self._make_layer(block, 8 * w, layers[3], 2)

    def _make_layer(self, block, planes, blocks, stride):
        down = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                 nn.BatchNorm2d(planes * block.expansion))
        mods = [block(self.inplanes, planes, stride, down)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            mods.append(block(self.inplanes, planes))
        return nn.Sequential(*mods)


def take_apart(model, resnet):
    """CE-Net's and D-LinkNet's names for the ResNet's parts."""
    model.firstconv = resnet.conv1
    model.firstbn = resnet.bn1
    model.firstrelu = resnet.relu
    model.firstmaxpool = resnet.maxpool
    model.encoder1 = resnet.layer1
    model.encoder2 = resnet.layer2
    model.encoder3 = resnet.layer3
    model.encoder4 = resnet.layer4


def encode(model, x):
    x = model.firstmaxpool(model.firstrelu(model.firstbn(model.firstconv(x))))
    e1 = model.encoder1(x)
    e2 = model.encoder2(e1)
    e3 = model.encoder3(e2)
    e4 = model.encoder4(e3)
    return e1, e2, e3, e4


def resize(x, size):
    """Jittor's upsample/resize(mode='bilinear'): align_corners=False."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class DecoderBlock(nn.Module):
    def __init__(self, in_channels, n_filters):
        super().__init__()
        mid = in_channels // 4
        self.conv1 = nn.Conv2d(in_channels, mid, 1)
        self.norm1 = nn.BatchNorm2d(mid)
        self.deconv2 = nn.ConvTranspose2d(mid, mid, 3, stride=2, padding=1, output_padding=1)
        self.norm2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, n_filters, 1)
        self.norm3 = nn.BatchNorm2d(n_filters)

    def forward(self, x):
        x = F.relu(self.norm1(self.conv1(x)))
        x = F.relu(self.norm2(self.deconv2(x)))
        return F.relu(self.norm3(self.conv3(x)))


def add_head(model, cin, c, classes):
    model.finaldeconv1 = nn.ConvTranspose2d(cin, c, 4, stride=2, padding=1)
    model.finalconv2 = nn.Conv2d(c, c, 3, padding=1)
    model.finalconv3 = nn.Conv2d(c, classes, 3, padding=1)


def head(model, d1):
    out = F.relu(model.finaldeconv1(d1))
    out = F.relu(model.finalconv2(out))
    return model.finalconv3(out)


def zero_biases(module):
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.bias is not None:
            nn.init.constant_(m.bias, 0.0)


class DACblock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dilate1 = nn.Conv2d(c, c, 3, dilation=1, padding=1)
        self.dilate2 = nn.Conv2d(c, c, 3, dilation=3, padding=3)
        self.dilate3 = nn.Conv2d(c, c, 3, dilation=5, padding=5)
        self.conv1x1 = nn.Conv2d(c, c, 1)
        zero_biases(self)

    def forward(self, x):
        d1 = F.relu(self.dilate1(x))
        d2 = F.relu(self.conv1x1(self.dilate2(x)))
        d3 = F.relu(self.conv1x1(self.dilate2(self.dilate1(x))))
        d4 = F.relu(self.conv1x1(self.dilate3(self.dilate2(self.dilate1(x)))))
        return x + d1 + d2 + d3 + d4


class SPPblock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.pool1 = nn.MaxPool2d(2, 2)
        self.pool2 = nn.MaxPool2d(3, 3)
        self.pool3 = nn.MaxPool2d(5, 5)
        self.pool4 = nn.MaxPool2d(6, 6)
        self.conv = nn.Conv2d(c, 1, 1)

    def forward(self, x):
        size = x.shape[2:]
        ls = [resize(self.conv(p(x)), size) for p in (self.pool1, self.pool2, self.pool3, self.pool4)]
        return torch.cat(ls + [x], 1)


class CENet(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=64):
        super().__init__()
        w = width
        take_apart(self, ResNet(BasicBlock, [3, 4, 6, 3], in_channels, w))
        self.dblock = DACblock(8 * w)
        self.spp = SPPblock(8 * w)
        self.decoder4 = DecoderBlock(8 * w + 4, 4 * w)
        self.decoder3 = DecoderBlock(4 * w, 2 * w)
        self.decoder2 = DecoderBlock(2 * w, w)
        self.decoder1 = DecoderBlock(w, w)
        add_head(self, w, 32, classes)

    def forward(self, x):
        e1, e2, e3, e4 = encode(self, x)
        e4 = self.spp(self.dblock(e4))
        d4 = self.decoder4(e4) + e3
        d3 = self.decoder3(d4) + e2
        d2 = self.decoder2(d3) + e1
        return head(self, self.decoder1(d2))


if __name__ == "__main__":
    print(sum(p.numel() for p in CENet().parameters()))
