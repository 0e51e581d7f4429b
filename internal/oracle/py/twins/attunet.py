"""PyTorch Attention U-Net (Oktay) in the layout of jmedseg's `attunet`."""
import torch
import torch.nn as nn


class ConvBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.conv(x)


class UpConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.up = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(cin, cout, 3, padding=1),
                                nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.up(x)


class AttentionBlock(nn.Module):
    def __init__(self, fg, fl, fint):
        super().__init__()
        self.W_g = nn.Sequential(nn.Conv2d(fg, fint, 1), nn.BatchNorm2d(fint))
        self.W_x = nn.Sequential(nn.Conv2d(fl, fint, 1), nn.BatchNorm2d(fint))
        self.psi = nn.Sequential(nn.Conv2d(fint, 1, 1), nn.BatchNorm2d(1), nn.Sigmoid())

    def forward(self, g, x):
        return x * self.psi(torch.relu(self.W_g(g) + self.W_x(x)))


class AttUNet(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=64):
        super().__init__()
        w = [width * m for m in (1, 2, 4, 8, 16)]
        self.Maxpool = nn.MaxPool2d(2, 2)
        self.Conv1 = ConvBlock(in_channels, w[0])
        self.Conv2 = ConvBlock(w[0], w[1])
        self.Conv3 = ConvBlock(w[1], w[2])
        self.Conv4 = ConvBlock(w[2], w[3])
        self.Conv5 = ConvBlock(w[3], w[4])
        self.Up5, self.Att5, self.Up_conv5 = UpConv(w[4], w[3]), AttentionBlock(w[3], w[3], w[2]), ConvBlock(w[4], w[3])
        self.Up4, self.Att4, self.Up_conv4 = UpConv(w[3], w[2]), AttentionBlock(w[2], w[2], w[1]), ConvBlock(w[3], w[2])
        self.Up3, self.Att3, self.Up_conv3 = UpConv(w[2], w[1]), AttentionBlock(w[1], w[1], w[0]), ConvBlock(w[2], w[1])
        self.Up2, self.Att2, self.Up_conv2 = UpConv(w[1], w[0]), AttentionBlock(w[0], w[0], w[0] // 2), ConvBlock(w[1], w[0])
        self.Conv_1x1 = nn.Conv2d(w[0], classes, 1)

    def forward(self, x):
        x1 = self.Conv1(x)
        x2 = self.Conv2(self.Maxpool(x1))
        x3 = self.Conv3(self.Maxpool(x2))
        x4 = self.Conv4(self.Maxpool(x3))
        x5 = self.Conv5(self.Maxpool(x4))
        d = self.Up5(x5)
        d = self.Up_conv5(torch.cat([self.Att5(d, x4), d], 1))
        d = self.Up4(d)
        d = self.Up_conv4(torch.cat([self.Att4(d, x3), d], 1))
        d = self.Up3(d)
        d = self.Up_conv3(torch.cat([self.Att3(d, x2), d], 1))
        d = self.Up2(d)
        d = self.Up_conv2(torch.cat([self.Att2(d, x1), d], 1))
        return self.Conv_1x1(d)


if __name__ == "__main__":
    print(sum(p.numel() for p in AttUNet().parameters()))
