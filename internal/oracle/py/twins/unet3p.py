"""PyTorch UNet 3+ (no deep supervision) in the layout of jmedseg's `unet3p`,
written from the reference's structure (JMedSeg model/UNet3plus.py,
UNet3Plus): the same attribute names, so the same state-dict keys in the same
order, and the same trainable parameter count (26,969,538 at width 64).

Decoder stage d (4, 3, 2, 1) takes five branches of CatChannels = width
channels each: encoder maps h1..h{d-1} max-pooled (ceil mode) to its size
(h{e}_PT_hd{d}), h{d} as it is (h{d}_Cat_hd{d}), and decoder maps
hd{d+1}..hd5 up-sampled bilinearly, align_corners=False (hd{k}_UT_hd{d}),
each then conv3 + BN + ReLU; their concatenation (5 × width) is fused by
conv{d}d_1 + bn{d}d_1 + ReLU. outc.conv is the 1×1 head on hd1."""
import torch
import torch.nn as nn


class DoubleConv(nn.Module):
    def __init__(self, cin, cout, mid=None):
        super().__init__()
        mid = mid or cout
        self.double_conv = nn.Sequential(
            nn.Conv2d(cin, mid, 3, padding=1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.double_conv(x)


class OutConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        return self.conv(x)


class UNet3Plus(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=64):
        super().__init__()
        f = [width * m for m in (1, 2, 4, 8, 16)]
        self.conv1 = DoubleConv(in_channels, f[0])
        self.maxpool1 = nn.MaxPool2d(2)
        self.conv2 = DoubleConv(f[0], f[1])
        self.maxpool2 = nn.MaxPool2d(2)
        self.conv3 = DoubleConv(f[1], f[2])
        self.maxpool3 = nn.MaxPool2d(2)
        self.conv4 = DoubleConv(f[2], f[3])
        self.maxpool4 = nn.MaxPool2d(2)
        self.conv5 = DoubleConv(f[3], f[4])
        cat = f[0]
        self.CatChannels, self.CatBlocks, self.UpChannels = cat, 5, 5 * cat
        up = self.UpChannels
        self.stages = []
        for d in (4, 3, 2, 1):
            names = []
            for e in range(1, 6):
                if e < d:
                    name = f"h{e}_PT_hd{d}"
                    setattr(self, name, nn.MaxPool2d(2 ** (d - e), 2 ** (d - e), ceil_mode=True))
                    cin = f[e - 1]
                elif e == d:
                    name, cin = f"h{e}_Cat_hd{d}", f[e - 1]
                else:
                    name = f"hd{e}_UT_hd{d}"
                    setattr(self, name, nn.Upsample(scale_factor=2 ** (e - d), mode="bilinear", align_corners=False))
                    cin = f[4] if e == 5 else up
                setattr(self, name + "_conv", nn.Conv2d(cin, cat, 3, padding=1))
                setattr(self, name + "_bn", nn.BatchNorm2d(cat))
                setattr(self, name + "_relu", nn.ReLU(inplace=True))
                names.append(name)
            setattr(self, f"conv{d}d_1", nn.Conv2d(up, up, 3, padding=1))
            setattr(self, f"bn{d}d_1", nn.BatchNorm2d(up))
            setattr(self, f"relu{d}d_1", nn.ReLU(inplace=True))
            self.stages.append((d, names))
        self.outc = OutConv(up, classes)

    def branch(self, name, x):
        if hasattr(self, name):  # the pooling or up-sampling, none for _Cat_
            x = getattr(self, name)(x)
        return getattr(self, name + "_relu")(getattr(self, name + "_bn")(getattr(self, name + "_conv")(x)))

    def forward(self, x):
        h1 = self.conv1(x)
        h2 = self.conv2(self.maxpool1(h1))
        h3 = self.conv3(self.maxpool2(h2))
        h4 = self.conv4(self.maxpool3(h3))
        hd5 = self.conv5(self.maxpool4(h4))
        maps = {1: h1, 2: h2, 3: h3, 4: h4, 5: hd5}  # h{e} for e ≤ d, hd{e} above
        for d, names in self.stages:
            y = torch.cat([self.branch(n, maps[e]) for e, n in enumerate(names, 1)], 1)
            maps[d] = getattr(self, f"relu{d}d_1")(getattr(self, f"bn{d}d_1")(getattr(self, f"conv{d}d_1")(y)))
        return self.outc(maps[1])


if __name__ == "__main__":
    print(sum(p.numel() for p in UNet3Plus().parameters()))
