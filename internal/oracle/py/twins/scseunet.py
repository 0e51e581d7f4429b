"""PyTorch SCSE U-Net in the layout of jmedseg's `scseunet` (the JMedSeg
reference's SCSEUnet): a bilinear U-Net (align_corners False) with an scSE
module after every encoder DoubleConv and every decoder Up. The reference's
names swap the published ones: "spatial_gate" is the channel SE (Linear,
r 16) and "channel_gate" the per-pixel 1×1 conv. gating "sigmoid" is the
published gate (the default); "softmax_all" is the reference's softmax
without a dimension, over the whole tensor, batch included. Same parameter
names, order and count as the Go model."""
import torch
import torch.nn as nn


def gate(t, gating):
    if gating == "softmax_all":
        return torch.softmax(t.reshape(-1), 0).reshape(t.shape)
    return torch.sigmoid(t)


class SpatialGate2d(nn.Module):
    def __init__(self, cin, r=16, gating="sigmoid"):
        super().__init__()
        self.gating = gating
        self.linear_1 = nn.Linear(cin, cin // r)
        self.linear_2 = nn.Linear(cin // r, cin)

    def forward(self, x):
        z = x.view(*x.shape[:-2], -1).mean(-1)
        z = self.linear_2(torch.relu(self.linear_1(z)))
        return x * gate(z.unsqueeze(-1).unsqueeze(-1), self.gating)


class ChannelGate2d(nn.Module):
    def __init__(self, cin, gating="sigmoid"):
        super().__init__()
        self.gating = gating
        self.conv = nn.Conv2d(cin, 1, 1)

    def forward(self, x):
        return x * gate(self.conv(x), self.gating)


class SCSE(nn.Module):
    def __init__(self, cin, gating="sigmoid"):
        super().__init__()
        self.spatial_gate = SpatialGate2d(cin, 16, gating)
        self.channel_gate = ChannelGate2d(cin, gating)

    def forward(self, x):
        return self.spatial_gate(x) + self.channel_gate(x)


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
    def __init__(self, cin, cout, gating="sigmoid"):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv = DoubleConv(cin, cout, cin // 2)
        self.spa_cha_gate = SCSE(cout, gating)

    def forward(self, x1, x2):
        return self.spa_cha_gate(self.conv(torch.cat([x2, self.up(x1)], 1)))


class OutConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        return self.conv(x)


class SCSEUNet(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=64, gating="sigmoid"):
        super().__init__()
        w = width
        self.conv_encode1 = nn.Sequential(DoubleConv(in_channels, w), SCSE(w, gating))
        self.conv_pool1 = nn.MaxPool2d(2, 2)
        self.conv_encode2 = nn.Sequential(DoubleConv(w, 2 * w), SCSE(2 * w, gating))
        self.conv_pool2 = nn.MaxPool2d(2, 2)
        self.conv_encode3 = nn.Sequential(DoubleConv(2 * w, 4 * w), SCSE(4 * w, gating))
        self.conv_pool3 = nn.MaxPool2d(2, 2)
        self.conv_encode4 = nn.Sequential(DoubleConv(4 * w, 8 * w), SCSE(8 * w, gating))
        self.conv_pool4 = nn.MaxPool2d(2, 2)
        self.bottleneck = nn.Sequential(DoubleConv(8 * w, 8 * w), SCSE(8 * w, gating))
        self.conv_decode4 = Up(16 * w, 4 * w, gating)
        self.conv_decode3 = Up(8 * w, 2 * w, gating)
        self.conv_decode2 = Up(4 * w, w, gating)
        self.conv_decode1 = Up(2 * w, w, gating)
        self.outc = OutConv(w, classes)

    def forward(self, x):
        e1 = self.conv_encode1(x)
        e2 = self.conv_encode2(self.conv_pool1(e1))
        e3 = self.conv_encode3(self.conv_pool2(e2))
        e4 = self.conv_encode4(self.conv_pool3(e3))
        b = self.bottleneck(self.conv_pool4(e4))
        d = self.conv_decode4(b, e4)
        d = self.conv_decode3(d, e3)
        d = self.conv_decode2(d, e2)
        d = self.conv_decode1(d, e1)
        return self.outc(d)


class SCSEUNetSoftmaxAll(SCSEUNet):
    """The reference's gating, for the quirk's parity test."""

    def __init__(self, in_channels=3, classes=2, width=64):
        super().__init__(in_channels, classes, width, gating="softmax_all")


if __name__ == "__main__":
    m = SCSEUNet()
    print(sum(p.numel() for p in m.parameters()), sum(b.numel() for n, b in m.named_buffers() if "running" in n))
