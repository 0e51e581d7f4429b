"""PyTorch ResUNet in the layout of jmedseg's `resunet` (the JMedSeg reference's
model/ResUNet.py, backbone resnet101, bilinear): the reference's ResNet-101
(pspnet.py's, deep stem without a norm after its third conv) built without
layer4, which the reference builds and never calls; layer0 / pooling0 /
layer1..layer3 are the backbone's own modules under a second name; a
DoubleConv bottleneck; Up blocks that concatenate [skip, x] first, then
up-sample (bilinear, align_corners=False as Jittor's nn.Upsample) and apply
DoubleConv(in, out, in // 2); OutConv.

The aliases share parameters: state_dict() lists them under both names
(backbone.layer1.0.conv1.weight and layer1.0.conv1.weight), which is what the
Go model's state dict and checkpoints hold, so they load here strictly.
Parameters count once (named_parameters() gives the backbone.* names).
`width` is the backbone's base width (64 in the reference)."""
import torch
import torch.nn as nn

from pspnet import ResNet101


class Backbone(ResNet101):
    """The reference's ResNet-101 up to layer3."""

    def __init__(self, in_channels, width):
        super().__init__(in_channels, width)
        del self.layer4


class DoubleConv(nn.Module):
    def __init__(self, cin, cout, mid=None):
        super().__init__()
        mid = mid or cout
        self.double_conv = nn.Sequential(
            nn.Conv2d(cin, mid, 3, padding=1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.double_conv(x)


class Up(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv = DoubleConv(cin, cout, cin // 2)

    def forward(self, x1, x2):
        return self.conv(self.up(torch.cat([x2, x1], 1)))


class OutConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        return self.conv(x)


class ResUNet(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=64):
        super().__init__()
        w = width
        self.backbone = Backbone(in_channels, w)
        self.layer0 = self.backbone.conv1
        self.pooling0 = self.backbone.maxpool
        self.layer1 = self.backbone.layer1
        self.layer2 = self.backbone.layer2
        self.layer3 = self.backbone.layer3
        self.bottleneck = DoubleConv(16 * w, 16 * w)
        self.conv_decode3 = Up(32 * w, 8 * w)
        self.conv_decode2 = Up(16 * w, 4 * w)
        self.conv_decode1 = Up(8 * w, 2 * w)
        self.conv_decode0 = Up(4 * w, w)
        self.outc = OutConv(w, classes)

    def forward(self, x):
        e0 = self.layer0(x)
        e1 = self.layer1(self.pooling0(e0))
        e2 = self.layer2(e1)
        e3 = self.layer3(e2)
        d = self.bottleneck(e3)
        d = self.conv_decode3(d, e3)
        d = self.conv_decode2(d, e2)
        d = self.conv_decode1(d, e1)
        d = self.conv_decode0(d, e0)
        return self.outc(d)


if __name__ == "__main__":
    m = ResUNet()
    print(sum(p.numel() for p in m.parameters()), len(m.state_dict()))
