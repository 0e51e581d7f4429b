"""PyTorch R2AttU-Net (R2U-Net with attention gates) in the layout of
jmedseg's `r2att`, written from the reference's structure (JMedSeg
model/R2UNet.py, R2AttentionUNet): the recurrent residual blocks of r2.py and
Attention U-Net gates whose norms are InstanceNorms without affine
parameters. Same state-dict keys in the same order and the same trainable
parameter count (39,427,366 at width 64)."""
import torch
import torch.nn as nn

from r2 import RRCNNBlock, UpConv, norm


class AttentionBlock(nn.Module):
    def __init__(self, fg, fl, fint):
        super().__init__()
        self.W_g = nn.Sequential(nn.Conv2d(fg, fint, 1), norm(fint))
        self.W_x = nn.Sequential(nn.Conv2d(fl, fint, 1), norm(fint))
        self.psi = nn.Sequential(nn.Conv2d(fint, 1, 1), norm(1), nn.Sigmoid())
        self.relu = nn.ReLU(inplace=True)

    def forward(self, g, x):
        return x * self.psi(self.relu(self.W_g(g) + self.W_x(x)))


class R2AttUNet(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=64, t=3):
        super().__init__()
        w = [width * m for m in (1, 2, 4, 8, 16)]
        self.Maxpool = nn.MaxPool2d(2, 2)
        self.Upsample = nn.Upsample(scale_factor=2)  # unused, as in the reference
        self.RRCNN1 = RRCNNBlock(in_channels, w[0], t)
        self.RRCNN2 = RRCNNBlock(w[0], w[1], t)
        self.RRCNN3 = RRCNNBlock(w[1], w[2], t)
        self.RRCNN4 = RRCNNBlock(w[2], w[3], t)
        self.RRCNN5 = RRCNNBlock(w[3], w[4], t)
        self.Up5 = UpConv(w[4], w[3])
        self.Att5 = AttentionBlock(w[3], w[3], w[2])
        self.Up_RRCNN5 = RRCNNBlock(w[4], w[3], t)
        self.Up4 = UpConv(w[3], w[2])
        self.Att4 = AttentionBlock(w[2], w[2], w[1])
        self.Up_RRCNN4 = RRCNNBlock(w[3], w[2], t)
        self.Up3 = UpConv(w[2], w[1])
        self.Att3 = AttentionBlock(w[1], w[1], w[0])
        self.Up_RRCNN3 = RRCNNBlock(w[2], w[1], t)
        self.Up2 = UpConv(w[1], w[0])
        self.Att2 = AttentionBlock(w[0], w[0], w[0] // 2)
        self.Up_RRCNN2 = RRCNNBlock(w[1], w[0], t)
        self.Conv_1x1 = nn.Conv2d(w[0], classes, 1)

    def forward(self, x):
        x1 = self.RRCNN1(x)
        x2 = self.RRCNN2(self.Maxpool(x1))
        x3 = self.RRCNN3(self.Maxpool(x2))
        x4 = self.RRCNN4(self.Maxpool(x3))
        x5 = self.RRCNN5(self.Maxpool(x4))
        d = self.Up5(x5)
        d = self.Up_RRCNN5(torch.cat([self.Att5(d, x4), d], 1))
        d = self.Up4(d)
        d = self.Up_RRCNN4(torch.cat([self.Att4(d, x3), d], 1))
        d = self.Up3(d)
        d = self.Up_RRCNN3(torch.cat([self.Att3(d, x2), d], 1))
        d = self.Up2(d)
        d = self.Up_RRCNN2(torch.cat([self.Att2(d, x1), d], 1))
        return self.Conv_1x1(d)


if __name__ == "__main__":
    print(sum(p.numel() for p in R2AttUNet().parameters()))
