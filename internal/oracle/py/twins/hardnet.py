"""PyTorch HarD-MSEG in the layout of jmedseg's `hardnet` (the JMedSeg
reference's HarDMSEG, model/HarDNet.py): a HarDNet-68 backbone ("hardnet.base.N",
conv + BatchNorm + ReLU6 layers, harmonic dense blocks), RFB_modified blocks
(BasicConv2d = conv + BatchNorm, no ReLU) on the taps at 1/8, 1/16 and 1/32,
PraNet's partial decoder ("agg1") to the classes at 1/8, bilinear ×8
(align_corners=False, as Jittor). Same parameter names, order and count as
the Go model.

`width` is the RFB channel count (32 in the reference); the backbone's base
width is 2·width (64, HarDNet-68's second stem conv), and every backbone
channel count and growth rate v scales as max(1, (v·2·width + 32) // 64)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


def scaled(v, w):
    return max(1, (v * w + 32) // 64)


class ConvLayer(nn.Sequential):
    def __init__(self, cin, cout, kernel=3, stride=1):
        super().__init__()
        self.add_module("conv", nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False))
        self.add_module("norm", nn.BatchNorm2d(cout))
        self.add_module("relu", nn.ReLU6())


def get_link(layer, base_ch, growth, grmul):
    if layer == 0:
        return base_ch, 0, []
    out = growth
    link = []
    for i in range(10):
        dv = 2 ** i
        if layer % dv == 0:
            link.append(layer - dv)
            if i > 0:
                out *= grmul
    out = int(int(out + 1) / 2) * 2
    cin = sum(get_link(k, base_ch, growth, grmul)[0] for k in link)
    return out, cin, link


class HarDBlock(nn.Module):
    def __init__(self, cin, growth, grmul, n_layers):
        super().__init__()
        self.links = []
        layers = []
        self.out_channels = 0
        for i in range(n_layers):
            out, inch, link = get_link(i + 1, cin, growth, grmul)
            self.links.append(link)
            layers.append(ConvLayer(inch, out))
            if i % 2 == 0 or i == n_layers - 1:
                self.out_channels += out
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        outs = [x]
        for layer, link in zip(self.layers, self.links):
            tin = [outs[i] for i in link]
            x = torch.cat(tin, 1) if len(tin) > 1 else tin[0]
            outs.append(layer(x))
        t = len(outs)
        return torch.cat([outs[i] for i in range(t) if i == t - 1 or i % 2 == 1], 1)


class HarDNet68(nn.Module):
    """Taps at base indices 4, 9, 12, 15: 128@1/4, 320@1/8, 640@1/16, 1024@1/32."""

    def __init__(self, in_channels=3, width=64):
        super().__init__()
        s = lambda v: scaled(v, width)
        first = [s(32), s(64)]
        ch_list = [s(c) for c in (128, 256, 320, 640, 1024)]
        gr = [s(g) for g in (14, 16, 20, 40, 160)]
        n_layers = [8, 16, 16, 16, 4]
        down = [1, 0, 1, 1, 0]
        self.base = nn.ModuleList()
        self.base.append(ConvLayer(in_channels, first[0], 3, stride=2))
        self.base.append(ConvLayer(first[0], first[1], 3))
        self.base.append(nn.MaxPool2d(3, stride=2, padding=1))
        ch = first[1]
        for i in range(5):
            blk = HarDBlock(ch, gr[i], 1.7, n_layers[i])
            self.base.append(blk)
            self.base.append(ConvLayer(blk.out_channels, ch_list[i], 1))
            ch = ch_list[i]
            if down[i]:
                self.base.append(nn.MaxPool2d(2, stride=2))

    def forward(self, x):
        taps = []
        for i, m in enumerate(self.base):
            x = m(x)
            if i in (4, 9, 12, 15):
                taps.append(x)
        return taps


class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, kernel, padding=0, dilation=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=padding, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


class RFB_modified(nn.Module):
    def __init__(self, cin, c):
        super().__init__()
        self.branch0 = nn.Sequential(BasicConv2d(cin, c, 1))
        for i, k in ((1, 3), (2, 5), (3, 7)):
            setattr(self, f"branch{i}", nn.Sequential(
                BasicConv2d(cin, c, 1),
                BasicConv2d(c, c, (1, k), padding=(0, k // 2)),
                BasicConv2d(c, c, (k, 1), padding=(k // 2, 0)),
                BasicConv2d(c, c, 3, padding=k, dilation=k)))
        self.conv_cat = BasicConv2d(4 * c, c, 3, padding=1)
        self.conv_res = BasicConv2d(cin, c, 1)

    def forward(self, x):
        cat = torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)
        return torch.relu(self.conv_cat(cat) + self.conv_res(x))


def up(x):
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class aggregation(nn.Module):
    """PraNet's partial decoder on three levels (four with levels=4, HarDNet_alter's)."""

    def __init__(self, c, classes, levels=3):
        super().__init__()
        self.levels = levels
        self.conv_upsample1 = BasicConv2d(c, c, 3, padding=1)
        self.conv_upsample2 = BasicConv2d(c, c, 3, padding=1)
        self.conv_upsample3 = BasicConv2d(c, c, 3, padding=1)
        self.conv_upsample4 = BasicConv2d(c, c, 3, padding=1)
        self.conv_upsample5 = BasicConv2d(2 * c, 2 * c, 3, padding=1)
        if levels == 4:
            self.conv_upsample6 = BasicConv2d(3 * c, 3 * c, 3, padding=1)
        self.conv_concat2 = BasicConv2d(2 * c, 2 * c, 3, padding=1)
        self.conv_concat3 = BasicConv2d(3 * c, 3 * c, 3, padding=1)
        if levels == 4:
            self.conv_concat4 = BasicConv2d(4 * c, 4 * c, 3, padding=1)
        self.conv4 = BasicConv2d(levels * c, levels * c, 3, padding=1)
        self.conv5 = nn.Conv2d(levels * c, classes, 1)

    def forward(self, x1, x2, x3, x4=None):
        x2_1 = self.conv_upsample1(up(x1)) * x2
        x3_1 = self.conv_upsample2(up(up(x1))) * self.conv_upsample3(up(x2)) * x3
        x2_2 = self.conv_concat2(torch.cat([x2_1, self.conv_upsample4(up(x1))], 1))
        x = self.conv_concat3(torch.cat([x3_1, self.conv_upsample5(up(x2_2))], 1))
        if self.levels == 4:
            x = self.conv_concat4(torch.cat([x4, self.conv_upsample6(up(x))], 1))
        return self.conv5(self.conv4(x))


class HarDMSEG(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=32):
        super().__init__()
        s = lambda v: scaled(v, 2 * width)
        self.rfb2_1 = RFB_modified(s(320), width)
        self.rfb3_1 = RFB_modified(s(640), width)
        self.rfb4_1 = RFB_modified(s(1024), width)
        self.agg1 = aggregation(width, classes)
        self.hardnet = HarDNet68(in_channels, 2 * width)

    def forward(self, x):
        _, x2, x3, x4 = self.hardnet(x)
        y = self.agg1(self.rfb4_1(x4), self.rfb3_1(x3), self.rfb2_1(x2))
        return F.interpolate(y, scale_factor=8, mode="bilinear", align_corners=False)


if __name__ == "__main__":
    print(sum(p.numel() for p in HarDMSEG().parameters()))
    print(sum(p.numel() for p in HarDNet68().parameters()))
