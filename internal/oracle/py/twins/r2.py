"""PyTorch R2U-Net (recurrent residual U-Net, t=3) in the layout of jmedseg's
`r2`, written from the reference's structure (JMedSeg model/R2UNet.py): same
module attribute names, so the same state-dict keys in the same order, and the
same trainable parameter count (39,077,762 at width 64)."""
import torch
import torch.nn as nn


def norm(c):
    return nn.InstanceNorm2d(c, affine=False, track_running_stats=False)


class UpConv(nn.Module):
    """Nearest ×2, then conv3 + InstanceNorm + ReLU."""

    def __init__(self, cin, cout):
        super().__init__()
        self.up = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(cin, cout, 3, padding=1),
                                norm(cout), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.up(x)


class RecurrentBlock(nn.Module):
    """One conv3 + InstanceNorm + ReLU applied t+1 times: x1 = f(x), then
    x1 = f(x + x1) t times."""

    def __init__(self, c, t=2):
        super().__init__()
        self.t = t
        self.conv = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), norm(c), nn.ReLU(inplace=True))

    def forward(self, x):
        x1 = self.conv(x)
        for _ in range(self.t):
            x1 = self.conv(x + x1)
        return x1


class RRCNNBlock(nn.Module):
    """1×1 conv in → out, then two recurrent blocks, plus the 1×1's output."""

    def __init__(self, cin, cout, t=2):
        super().__init__()
        self.RCNN = nn.Sequential(RecurrentBlock(cout, t), RecurrentBlock(cout, t))
        self.Conv_1x1 = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        x = self.Conv_1x1(x)
        return x + self.RCNN(x)


class R2UNet(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=64, t=3):
        super().__init__()
        w = [width * m for m in (1, 2, 4, 8, 16)]
        self.Maxpool = nn.MaxPool2d(2, 2)
        self.Upsample = nn.Upsample(scale_factor=2)  # unused, as in the reference
        self.RRCNN1 = RRCNNBlock(in_channels, w[0], t)
        self.RRCNN2 = RRCNNBlock(w[0], w[1], t)
        self.RRCNN3 = RRCNNBlock(w[1], w[2], t)
        self.RRCNN4 = RRCNNBlock(w[2], w[3], t)
        self.RRCNN5 = RRCNNBlock(w[3], w[4], t)
        self.Up5, self.Up_RRCNN5 = UpConv(w[4], w[3]), RRCNNBlock(w[4], w[3], t)
        self.Up4, self.Up_RRCNN4 = UpConv(w[3], w[2]), RRCNNBlock(w[3], w[2], t)
        self.Up3, self.Up_RRCNN3 = UpConv(w[2], w[1]), RRCNNBlock(w[2], w[1], t)
        self.Up2, self.Up_RRCNN2 = UpConv(w[1], w[0]), RRCNNBlock(w[1], w[0], t)
        self.Conv_1x1 = nn.Conv2d(w[0], classes, 1)

    def encode(self, x):
        x1 = self.RRCNN1(x)
        x2 = self.RRCNN2(self.Maxpool(x1))
        x3 = self.RRCNN3(self.Maxpool(x2))
        x4 = self.RRCNN4(self.Maxpool(x3))
        x5 = self.RRCNN5(self.Maxpool(x4))
        return x1, x2, x3, x4, x5

    def forward(self, x):
        x1, x2, x3, x4, x5 = self.encode(x)
        d = self.Up_RRCNN5(torch.cat([x4, self.Up5(x5)], 1))
        d = self.Up_RRCNN4(torch.cat([x3, self.Up4(d)], 1))
        d = self.Up_RRCNN3(torch.cat([x2, self.Up3(d)], 1))
        d = self.Up_RRCNN2(torch.cat([x1, self.Up2(d)], 1))
        return self.Conv_1x1(d)


if __name__ == "__main__":
    print(sum(p.numel() for p in R2UNet().parameters()))
