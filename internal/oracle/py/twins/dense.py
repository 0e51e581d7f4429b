"""PyTorch DenseUNet in the layout of jmedseg's `dense` (the JMedSeg
reference's DenseUNet, after Merofine/DenseUnet_BraTs): a 1×1 stem, five
additive-dense levels of constant width, max-pooling down (the reference's
one `down1` module serves every level; down2..4 exist and hold nothing),
bilinear up (align_corners False) + concat [skip, up] + DoubleConv, 1×1
head. Same parameter names, order and count as the Go model."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class SingleLevelDenseNet(nn.Module):
    def __init__(self, filters, num_conv=4):
        super().__init__()
        self.num_conv = num_conv
        self.conv_list = nn.ModuleList([nn.Conv2d(filters, filters, 3, padding=1) for _ in range(num_conv)])
        self.bn_list = nn.ModuleList([nn.BatchNorm2d(filters) for _ in range(num_conv)])

    def forward(self, x):
        outs = [x]
        for i in range(self.num_conv):
            t = self.conv_list[i](outs[i])
            for j in range(i):
                t = t + outs[j]
            outs.append(F.relu(self.bn_list[i](t)))
        return outs[-1]


class DownSample(nn.Module):
    def __init__(self):
        super().__init__()
        self.down_sample_layer = nn.MaxPool2d(2, 2)

    def forward(self, x):
        return self.down_sample_layer(x), x


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
    """in_channels is x's, not the concatenation's (as the reference)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv = DoubleConv(cin * 2, cout, cout)

    def forward(self, x1, x2):
        return self.conv(torch.cat([x2, self.up(x1)], 1))


class DenseUNet(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=64):
        super().__init__()
        f = width
        self.conv1 = nn.Conv2d(in_channels, f, 1)
        self.d1 = SingleLevelDenseNet(f)
        self.down1 = DownSample()
        self.d2 = SingleLevelDenseNet(f)
        self.down2 = DownSample()
        self.d3 = SingleLevelDenseNet(f)
        self.down3 = DownSample()
        self.d4 = SingleLevelDenseNet(f)
        self.down4 = DownSample()
        self.bottom = SingleLevelDenseNet(f)
        self.up4 = Up(f, f)
        self.u4 = SingleLevelDenseNet(f)
        self.up3 = Up(f, f)
        self.u3 = SingleLevelDenseNet(f)
        self.up2 = Up(f, f)
        self.u2 = SingleLevelDenseNet(f)
        self.up1 = Up(f, f)
        self.u1 = SingleLevelDenseNet(f)
        self.outconv = nn.Conv2d(f, classes, 1)

    def forward(self, x):
        x = self.conv1(x)
        x, y1 = self.down1(self.d1(x))
        x, y2 = self.down1(self.d2(x))
        x, y3 = self.down1(self.d3(x))
        x, y4 = self.down1(self.d4(x))
        x = self.bottom(x)
        x = self.u4(self.up4(x, y4))
        x = self.u3(self.up3(x, y3))
        x = self.u2(self.up2(x, y2))
        x = self.u1(self.up1(x, y1))
        return self.outconv(x)


if __name__ == "__main__":
    print(sum(p.numel() for p in DenseUNet().parameters()))
