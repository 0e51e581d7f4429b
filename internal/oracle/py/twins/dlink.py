"""PyTorch D-LinkNet50 in the layout of jmedseg's `dlink` (the JMedSeg
reference's DinkNet50, model/dlink_jittor.py): a ResNet-50 encoder taken
apart as firstconv, firstbn, firstrelu, firstmaxpool, encoder1..4 (cenet.py's
ResNet), the D-block (Dblock_more_dilate: five cascaded dilated conv3 of
dilation 1, 2, 4, 8, 16 at 32w channels, biases zero at first, summed with
the input), LinkNet decoder blocks 32w -> 16w -> 8w -> 4w -> 4w with additive
skips, then finaldeconv1 (4x4 stride-2 transposed conv to 32),
finalconv2, finalconv3 to the classes. Logits out, as the Go model's default
(the reference ends in a sigmoid). Same parameter names, order and count as
the Go model; `width` is the ResNet's base width (64 in the reference)."""
import torch.nn as nn
import torch.nn.functional as F

from cenet import Bottleneck, DecoderBlock, ResNet, add_head, encode, head, take_apart, zero_biases


class Dblock_more_dilate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dilate1 = nn.Conv2d(c, c, 3, dilation=1, padding=1)
        self.dilate2 = nn.Conv2d(c, c, 3, dilation=2, padding=2)
        self.dilate3 = nn.Conv2d(c, c, 3, dilation=4, padding=4)
        self.dilate4 = nn.Conv2d(c, c, 3, dilation=8, padding=8)
        self.dilate5 = nn.Conv2d(c, c, 3, dilation=16, padding=16)
        zero_biases(self)

    def forward(self, x):
        d1 = F.relu(self.dilate1(x))
        d2 = F.relu(self.dilate2(d1))
        d3 = F.relu(self.dilate3(d2))
        d4 = F.relu(self.dilate4(d3))
        d5 = F.relu(self.dilate5(d4))
        return x + d1 + d2 + d3 + d4 + d5


class DLinkNet50(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=64, sigmoid=False):
        super().__init__()
        w = width
        take_apart(self, ResNet(Bottleneck, [3, 4, 6, 3], in_channels, w))
        self.dblock = Dblock_more_dilate(32 * w)
        self.decoder4 = DecoderBlock(32 * w, 16 * w)
        self.decoder3 = DecoderBlock(16 * w, 8 * w)
        self.decoder2 = DecoderBlock(8 * w, 4 * w)
        self.decoder1 = DecoderBlock(4 * w, 4 * w)
        add_head(self, 4 * w, 32, classes)
        self.sigmoid = sigmoid

    def forward(self, x):
        e1, e2, e3, e4 = encode(self, x)
        e4 = self.dblock(e4)
        d4 = self.decoder4(e4) + e3
        d3 = self.decoder3(d4) + e2
        d2 = self.decoder2(d3) + e1
        out = head(self, self.decoder1(d2))
        return out.sigmoid() if self.sigmoid else out


class DLinkNet50Sigmoid(DLinkNet50):
    """The reference's output: a sigmoid over the logits."""

    def __init__(self, in_channels=3, classes=2, width=64):
        super().__init__(in_channels, classes, width, sigmoid=True)


if __name__ == "__main__":
    print(sum(p.numel() for p in DLinkNet50().parameters()))
