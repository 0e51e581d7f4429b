"""PyTorch UNet++ "big" (NestedUNet_Big) in the layout of jmedseg's
`unetppbig`, written from the reference's structure (JMedSeg
model/NestedUNet.py): unetpp where every up-sampling is an Up block
(bilinear ×2, align_corners=False, then DoubleConv(c, c, mid c/2)), one per
nested node, up{i}_{j} up-sampling node x{i}_{j}. Same state-dict keys in the
same order (the Up blocks first, as the reference registers them) and the
same trainable parameter count (53,159,746 at width 64)."""
import torch.nn as nn

from unetpp import DoubleConv, add_convs, filters_of, nested_forward


class Up(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv = DoubleConv(cin, cout, cin // 2)

    def forward(self, x):
        return self.conv(self.up(x))


class UNetPPBig(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=64):
        super().__init__()
        f = filters_of(width)
        self.pool = nn.MaxPool2d(2, 2)
        for i in range(1, 5):
            for j in range(5 - i):
                setattr(self, f"up{i}_{j}", Up(f[i], f[i]))
        add_convs(self, in_channels, classes, f)

    def forward(self, x):
        return nested_forward(self, x, lambda i, j, t: getattr(self, f"up{i}_{j}")(t))


if __name__ == "__main__":
    print(sum(p.numel() for p in UNetPPBig().parameters()))
