"""PyTorch UNet++ (NestedUNet, no deep supervision) in the layout of jmedseg's
`unetpp`, written from the reference's structure (JMedSeg
model/NestedUNet.py): the same attribute names, so the same state-dict keys in
the same order, and the same trainable parameter count (36,629,698 at width
64). Up-sampling is bilinear with align_corners=False, Jittor's default."""
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


def filters_of(width):
    return [width * m for m in (1, 2, 4, 8, 16)]


def add_convs(m, in_channels, classes, f):
    """The nested DoubleConv nodes conv{i}_{j} and the 1×1 head, in the
    reference's attribute order (column by column)."""
    m.conv0_0 = DoubleConv(in_channels, f[0], f[0])
    m.conv1_0 = DoubleConv(f[0], f[1], f[1])
    m.conv2_0 = DoubleConv(f[1], f[2], f[2])
    m.conv3_0 = DoubleConv(f[2], f[3], f[3])
    m.conv4_0 = DoubleConv(f[3], f[4], f[4])
    m.conv0_1 = DoubleConv(f[0] + f[1], f[0], f[0])
    m.conv1_1 = DoubleConv(f[1] + f[2], f[1], f[1])
    m.conv2_1 = DoubleConv(f[2] + f[3], f[2], f[2])
    m.conv3_1 = DoubleConv(f[3] + f[4], f[3], f[3])
    m.conv0_2 = DoubleConv(f[0] * 2 + f[1], f[0], f[0])
    m.conv1_2 = DoubleConv(f[1] * 2 + f[2], f[1], f[1])
    m.conv2_2 = DoubleConv(f[2] * 2 + f[3], f[2], f[2])
    m.conv0_3 = DoubleConv(f[0] * 3 + f[1], f[0], f[0])
    m.conv1_3 = DoubleConv(f[1] * 3 + f[2], f[1], f[1])
    m.conv0_4 = DoubleConv(f[0] * 4 + f[1], f[0], f[0])
    m.final = nn.Conv2d(f[0], classes, 1)


def nested_forward(m, x, up):
    """The reference's forward; up(i, j, t) up-samples node x{i}_{j}."""
    cat = lambda ts: torch.cat(ts, 1)  # noqa: E731
    x0_0 = m.conv0_0(x)
    x1_0 = m.conv1_0(m.pool(x0_0))
    x0_1 = m.conv0_1(cat([x0_0, up(1, 0, x1_0)]))
    x2_0 = m.conv2_0(m.pool(x1_0))
    x1_1 = m.conv1_1(cat([x1_0, up(2, 0, x2_0)]))
    x0_2 = m.conv0_2(cat([x0_0, x0_1, up(1, 1, x1_1)]))
    x3_0 = m.conv3_0(m.pool(x2_0))
    x2_1 = m.conv2_1(cat([x2_0, up(3, 0, x3_0)]))
    x1_2 = m.conv1_2(cat([x1_0, x1_1, up(2, 1, x2_1)]))
    x0_3 = m.conv0_3(cat([x0_0, x0_1, x0_2, up(1, 2, x1_2)]))
    x4_0 = m.conv4_0(m.pool(x3_0))
    x3_1 = m.conv3_1(cat([x3_0, up(4, 0, x4_0)]))
    x2_2 = m.conv2_2(cat([x2_0, x2_1, up(3, 1, x3_1)]))
    x1_3 = m.conv1_3(cat([x1_0, x1_1, x1_2, up(2, 2, x2_2)]))
    x0_4 = m.conv0_4(cat([x0_0, x0_1, x0_2, x0_3, up(1, 3, x1_3)]))
    return m.final(x0_4)


class UNetPP(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=64):
        super().__init__()
        self.pool = nn.MaxPool2d(2, 2)
        self.Up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        add_convs(self, in_channels, classes, filters_of(width))

    def forward(self, x):
        return nested_forward(self, x, lambda i, j, t: self.Up(t))


if __name__ == "__main__":
    print(sum(p.numel() for p in UNetPP().parameters()))
