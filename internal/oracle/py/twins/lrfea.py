"""PyTorch LRF-EANet in the layout of jmedseg's `lrfea` (the JMedSeg
reference's LRFEANet, model/LRFEANet.py): a "large receptive field"
GroupNorm backbone of patch-merging and aggregation blocks to 1/16, the
EANet external-attention head, a patch-split block and a transposed
convolution to 1/4, then a bilinear resize (align_corners=False, as Jittor's
nn.resize) to the input. Same parameter names, order and count as the Go
model. The widths scale with `width` (64 in the reference: 64, 128, 256,
512 and the 64 memory units of the attention)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


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


class PatchMergeBlock(nn.Module):
    def __init__(self, cin, cout, p):
        super().__init__()
        e = p * p
        self.block = nn.Sequential(
            nn.Conv2d(cin, cin * e, p, stride=p, bias=False), NormLayer(cin * e), nn.ReLU(inplace=True),
            nn.Conv2d(cin * e, cout, 1, bias=False), NormLayer(cout), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.block(x)


class PatchSplitBlock(nn.Module):
    def __init__(self, cin, cout, p):
        super().__init__()
        e = p * p
        self.block = nn.Sequential(
            nn.Conv2d(cin, cin * e, 1, bias=False), NormLayer(cin * e), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(cin * e, cout, p, stride=p, bias=False), NormLayer(cout), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.block(x)


class AggregationBlock(nn.Module):
    def __init__(self, c, d=1, e=2):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(c, c * e, 3, padding=d, dilation=d, bias=False), NormLayer(c * e), nn.ReLU(inplace=True),
            nn.Conv2d(c * e, c, 1, bias=False), NormLayer(c))

    def forward(self, x):
        return torch.relu(self.block(x) + x)


def layer(c, dilations):
    return nn.Sequential(*[AggregationBlock(c, d) for d in dilations])


class LRFResNet(nn.Module):
    def __init__(self, in_channels, w):
        super().__init__()
        self.net = nn.Sequential(
            PatchMergeBlock(in_channels, w, 2),
            AggregationBlock(w),
            PatchMergeBlock(w, w, 2),
            layer(w, [1] * 5),
            PatchMergeBlock(w, 2 * w, 2),
            layer(2 * w, [1] * 5),
            PatchMergeBlock(2 * w, 4 * w, 2),
            layer(4 * w, [1, 1, 2] * 6),
            nn.Conv2d(4 * w, 8 * w, 1, bias=False),
            NormLayer(8 * w),
            nn.ReLU(inplace=True),
            layer(8 * w, [1, 2, 4, 8]))

    def forward(self, x):
        return self.net(x)


class External_attention(nn.Module):
    def __init__(self, c, k=64):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 1)
        self.k = k
        self.linear_0 = nn.Conv1d(c, k, 1, bias=False)
        self.linear_1 = nn.Conv1d(k, c, 1, bias=False)
        self.conv2 = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), NormLayer(c))

    def forward(self, x):
        idn = x
        x = self.conv1(x)
        b, c, h, w = x.shape
        attn = self.linear_0(x.view(b, c, h * w))
        attn = F.softmax(attn, dim=-1)
        attn = attn / (1e-9 + attn.sum(dim=1, keepdim=True))
        x = self.linear_1(attn).view(b, c, h, w)
        x = self.conv2(x)
        return torch.relu(x + idn)


class LRFEANet(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=64):
        super().__init__()
        w = width
        self.backbone = LRFResNet(in_channels, w)
        self.head = External_attention(8 * w, w)
        self.split = nn.Sequential(PatchSplitBlock(8 * w, 4 * w, 2), nn.Dropout(0.1))
        self.fc = nn.ConvTranspose2d(4 * w, classes, 2, stride=2)

    def forward(self, x):
        size = x.shape[2:]
        y = self.fc(self.split(self.head(self.backbone(x))))
        return F.interpolate(y, size=size, mode="bilinear", align_corners=False)


if __name__ == "__main__":
    print(sum(p.numel() for p in LRFEANet().parameters()))
