"""PyTorch OneNet in the layout of jmedseg's `onenet`, written from the
reference's structure (JMedSeg model/OneNet.py): same module attribute
names, so the same state-dict keys in the same order, and the same
trainable parameter count (4,765,826 at width 128, as the reference states).
Width scales every channel count and keeps the channels per group (16 in,
32 or 16 out), so the group counts scale with width/128. ShiftGroupConv and
NormLayer are shared with the LightNet twin (lightnet.py)."""
import torch
import torch.nn as nn


class NormLayer(nn.Module):
    def __init__(self, num_features, num_groups):
        super().__init__()
        self.norm = nn.GroupNorm(num_groups, num_features)

    def forward(self, x):
        return self.norm(x)


class ShiftGroupConv(nn.Module):
    """Grouped conv (no bias) + GroupNorm(groups) + ReLU, then the channels
    rolled by shift. OneNet's shift is out_group // 2; LightNet passes its
    own (8) and a kernel size."""

    def __init__(self, in_group, out_group, groups, dilation=1, shift=None, kernel_size=3):
        super().__init__()
        self.shift = out_group // 2 if shift is None else shift
        self.conv = nn.Conv2d(in_group * groups, out_group * groups, kernel_size,
                              padding=dilation * (kernel_size // 2), dilation=dilation, groups=groups, bias=False)
        self.norm = NormLayer(out_group * groups, groups)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return torch.roll(self.act(self.norm(self.conv(x))), shifts=self.shift, dims=1)


class In(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, stride=4)

    def forward(self, x):
        return self.conv(x)


class OutConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 4, stride=4)

    def forward(self, x):
        return self.conv(x)


DILATIONS = [1] * 3 + [2] * 4 + [4] * 6 + [8, 16, 32]


def chain(layers, x):
    """The reference's x_list: the outputs of the chained layers."""
    out = [layers[0](x)]
    for i in range(1, len(layers)):
        out.append(layers[i](out[i - 1]))
    return out


def taps(x_list):
    return x_list[2:3] + x_list[6:7] + x_list[11:13] + x_list[-4:]


class OneNet(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=128):
        super().__init__()
        w = width
        self.embed = In(in_channels, w)
        self.map = nn.Sequential(
            ShiftGroupConv(16, 32, w // 16), ShiftGroupConv(16, 32, w // 8), ShiftGroupConv(16, 32, w // 4))
        self.layers = nn.Sequential(*[ShiftGroupConv(16, 16, w // 2, dilation=d) for d in DILATIONS])
        self.fuse = nn.Sequential(
            nn.Conv2d(64 * w, 2 * w, 1, bias=False), NormLayer(2 * w, w // 8), nn.ReLU(inplace=True),
            nn.Dropout(0.1), OutConv(2 * w, classes))

    def forward(self, x):
        x_list = chain(self.layers, self.map(self.embed(x)))
        return self.fuse(torch.cat(taps(x_list), 1))


if __name__ == "__main__":
    m = OneNet()
    print(sum(p.numel() for p in m.parameters()))
    print(m(torch.randn(2, 3, 64, 64)).shape)
