"""PyTorch DANet in the layout of jmedseg's `danet` (the JMedSeg reference's
DANet, model/DANet.py): pspnet.py's reference ResNet-101 (output stride 16),
DANetHead on layer4 (inter = in/4; position attention PAM_Module with
queries and keys of inter/8 channels and gamma; channel attention CAM_Module
with gamma; a conv3 per branch, summed, Dropout 0.1, 1×1), bilinear resize
(align_corners=False, Jittor's). Same parameter names, order and count as
the Go model; `width` is the backbone's base width (64 in the reference).

The channel attention is the reference's softmax(E) of the channel affinity
E; DANetOfficialCAM is the official DANet code's softmax(rowmax(E) - E)
(Go: DANetOptions.OfficialCAM)."""
import torch
import torch.nn as nn

from pspnet import ResNet101, resize


def cbr(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PAM_Module(nn.Module):
    def __init__(self, in_dim):
        super().__init__()
        self.query_conv = nn.Conv2d(in_dim, in_dim // 8, 1)
        self.key_conv = nn.Conv2d(in_dim, in_dim // 8, 1)
        self.value_conv = nn.Conv2d(in_dim, in_dim, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):
        b, c, h, w = x.shape
        q = self.query_conv(x).view(b, -1, h * w).permute(0, 2, 1)
        k = self.key_conv(x).view(b, -1, h * w)
        attention = self.softmax(torch.bmm(q, k))
        v = self.value_conv(x).view(b, -1, h * w)
        out = torch.bmm(v, attention.permute(0, 2, 1)).view(b, c, h, w)
        return self.gamma * out + x


class CAM_Module(nn.Module):
    def __init__(self, official=False):
        super().__init__()
        self.official = official
        self.gamma = nn.Parameter(torch.zeros(1))
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):
        b, c, h, w = x.shape
        q = x.view(b, c, -1)
        energy = torch.bmm(q, q.permute(0, 2, 1))
        if self.official:
            energy = torch.max(energy, -1, keepdim=True)[0].expand_as(energy) - energy
        out = torch.bmm(self.softmax(energy), q).view(b, c, h, w)
        return self.gamma * out + x


class DANetHead(nn.Module):
    def __init__(self, in_channels, out_channels, official=False):
        super().__init__()
        inter = in_channels // 4
        self.conv5a = cbr(in_channels, inter)
        self.conv5c = cbr(in_channels, inter)
        self.sa = PAM_Module(inter)
        self.sc = CAM_Module(official)
        self.conv51 = cbr(inter, inter)
        self.conv52 = cbr(inter, inter)
        self.conv8 = nn.Sequential(nn.Dropout(0.1), nn.Conv2d(inter, out_channels, 1))

    def forward(self, x):
        sa = self.conv51(self.sa(self.conv5a(x)))
        sc = self.conv52(self.sc(self.conv5c(x)))
        return self.conv8(sa + sc)


class DANet(nn.Module):
    official = False

    def __init__(self, in_channels=3, classes=2, width=64):
        super().__init__()
        self.backbone = ResNet101(in_channels, width)
        self.head = DANetHead(32 * width, classes, self.official)

    def forward(self, x):
        _, _, _, f = self.backbone(x)
        return resize(self.head(f), x)


class DANetOfficialCAM(DANet):
    official = True


if __name__ == "__main__":
    print(sum(p.numel() for p in DANet().parameters()))
