"""PyTorch SimpleUNet in the layout of jmedseg's `simple` (the JMedSeg
reference's SimpleUNet): a 2×2 stride-2 stem, max-pool + conv3 (no bias) +
the reference's NormLayer GroupNorm + ReLU down, ConvTranspose 2×2 (no bias)
up to the skip's width multiplied (not concatenated) with the skip, then the
same block; a ConvTranspose 2×2 head back to full size. Same parameter
names, order and count as the Go model."""
import torch
import torch.nn as nn


def norm_groups(c):
    if c >= 512:
        return 32
    if c >= 256:
        return 16
    if c >= 128:
        return 8
    if c >= 64:
        return 4
    return 1


class NormLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = nn.GroupNorm(norm_groups(c), c)

    def forward(self, x):
        return self.norm(x)


class SimpleBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), NormLayer(cout), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.block(x)


class Down(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), SimpleBlock(cin, cout))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, cin, cskip, cout):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cskip, 2, stride=2, bias=False)
        self.conv = SimpleBlock(cskip, cout)

    def forward(self, x1, x2):
        return self.conv(self.up(x1) * x2)


class InConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 2, stride=2)

    def forward(self, x):
        return self.conv(x)


class OutConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 2, stride=2)

    def forward(self, x):
        return self.conv(x)


class SimpleUNet(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=64):
        super().__init__()
        w = width
        self.inc = InConv(in_channels, w)
        self.down1 = Down(w, 2 * w)
        self.down2 = Down(2 * w, 4 * w)
        self.down3 = Down(4 * w, 8 * w)
        self.up1 = Up(8 * w, 4 * w, 4 * w)
        self.up2 = Up(4 * w, 2 * w, 2 * w)
        self.up3 = Up(2 * w, w, w)
        self.outc = OutConv(w, classes)

    def forward(self, x):
        x2 = self.inc(x)
        x4 = self.down1(x2)
        x8 = self.down2(x4)
        x16 = self.down3(x8)
        y = self.up1(x16, x8)
        y = self.up2(y, x4)
        y = self.up3(y, x2)
        return self.outc(y)


if __name__ == "__main__":
    print(sum(p.numel() for p in SimpleUNet().parameters()))
