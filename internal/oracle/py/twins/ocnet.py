"""PyTorch OCNet in the layout of jmedseg's `ocnet` (the JMedSeg reference's
OCNet, model/OCNet.py): pspnet.py's reference ResNet-101 (output stride 16),
OCHead on layer4 (inter = in/4; OC_Module self-attention with queries and
keys of inter/2 channels and a zero-initialised 1×1 scale_conv, concatenated
with its input; conv3; Dropout 0.1; 1×1), bilinear resize
(align_corners=False, Jittor's). Same parameter names, order and count as
the Go model; `width` is the backbone's base width (64 in the reference)."""
import torch
import torch.nn as nn

from pspnet import ResNet101, resize


def cbr(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class OC_Module(nn.Module):
    def __init__(self, in_dim):
        super().__init__()
        self.query_conv = nn.Conv2d(in_dim, in_dim // 2, 1)
        self.key_conv = nn.Conv2d(in_dim, in_dim // 2, 1)
        self.value_conv = nn.Conv2d(in_dim, in_dim, 1)
        self.scale_conv = nn.Conv2d(in_dim, in_dim, 1)
        nn.init.zeros_(self.scale_conv.weight)
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):
        b, c, h, w = x.shape
        q = self.query_conv(x).view(b, -1, h * w).permute(0, 2, 1)
        k = self.key_conv(x).view(b, -1, h * w)
        attention = self.softmax(torch.bmm(q, k))
        v = self.value_conv(x).view(b, -1, h * w)
        out = torch.bmm(v, attention.permute(0, 2, 1)).view(b, c, h, w)
        return torch.cat([self.scale_conv(out), x], 1)


class OCHead(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        inter = in_channels // 4
        self.conv_0 = cbr(in_channels, inter)
        self.oc = OC_Module(inter)
        self.conv_1 = cbr(2 * inter, inter)
        self.conv_2 = nn.Sequential(nn.Dropout(0.1), nn.Conv2d(inter, out_channels, 1))

    def forward(self, x):
        return self.conv_2(self.conv_1(self.oc(self.conv_0(x))))


class OCNet(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=64):
        super().__init__()
        self.backbone = ResNet101(in_channels, width)
        self.head = OCHead(32 * width, classes)

    def forward(self, x):
        _, _, _, f = self.backbone(x)
        return resize(self.head(f), x)


if __name__ == "__main__":
    print(sum(p.numel() for p in OCNet().parameters()))
