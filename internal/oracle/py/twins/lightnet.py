"""PyTorch LightNet in the layout of jmedseg's `lightnet`, written from the
reference's structure (JMedSeg model/LightNet.py): same module attribute
names, so the same state-dict keys in the same order, and the same
trainable parameter count (2,836,802 at width 64, as the reference states).
The input is summed over its channels (in_channels does not change the
layout). Width scales every channel count and keeps the channels per group,
so the group counts scale with width/64; the shift stays 8."""
import torch
import torch.nn as nn

from onenet import DILATIONS, ShiftGroupConv, chain, taps


class Input(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, stride=4)

    def forward(self, x):
        return self.conv(x)


class Output(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 4, stride=4)

    def forward(self, x):
        return self.conv(x)


class LightNet(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=64):
        super().__init__()
        w = width
        self.embed = nn.Sequential(
            Input(1, w),
            ShiftGroupConv(16, 32, w // 16, shift=8), ShiftGroupConv(16, 32, w // 8, shift=8),
            ShiftGroupConv(16, 32, w // 4, shift=8), ShiftGroupConv(16, 32, w // 2, shift=8))
        self.layers = nn.Sequential(*[ShiftGroupConv(16, 16, w, dilation=d, shift=8) for d in DILATIONS])
        self.fuse = nn.Sequential(*[ShiftGroupConv(16, 16, w, shift=8, kernel_size=1) for _ in range(7)])
        self.decode = nn.Sequential(
            ShiftGroupConv(32, 16, w // 2, shift=8, kernel_size=1),
            ShiftGroupConv(32, 16, w // 4, shift=8, kernel_size=1),
            Output(4 * w, classes))

    def forward(self, x):
        x = x.sum(dim=1, keepdim=True)
        fuse_list = taps(chain(self.layers, self.embed(x)))
        fused = fuse_list[7]
        for i in range(6, -1, -1):
            fused = self.fuse[i](fused * fuse_list[i])
        return self.decode(fused)


if __name__ == "__main__":
    m = LightNet()
    print(sum(p.numel() for p in m.parameters()))
    print(m(torch.randn(2, 3, 64, 64)).shape)
