"""PyTorch MultiResUNet in the layout of jmedseg's `multires` (the JMedSeg
reference's MultiResUnet, after makifozkanoglu/MultiResUNet-PyTorch): nf 32,
alpha 1.67; every conv is "same" by reflection padding and has no bias, each
followed by an affine BatchNorm; ConvTranspose 2×2 up-sampling; the head is
conv2d_bn (1×1, no bias) + BatchNorm. Same parameter names, order and count
as the Go model."""
import torch
import torch.nn as nn


def conv2d_same(cin, cout, k, bias=True):
    ka = k // 2
    kb = ka - 1 if k % 2 == 0 else ka
    return [nn.ReflectionPad2d((ka, kb, ka, kb)), nn.Conv2d(cin, cout, k, bias=bias)]


def conv2d_bn(cin, filters, k, activation="relu"):
    seq = conv2d_same(cin, filters, k, bias=False) + [nn.BatchNorm2d(filters)]
    if activation == "relu":
        seq.append(nn.ReLU(inplace=True))
    return nn.Sequential(*seq)


def widths(u, alpha=1.67):
    w = alpha * u
    return int(w * 0.167), int(w * 0.333), int(w * 0.5)


class MultiResBlock(nn.Module):
    def __init__(self, cin, u, alpha=1.67):
        super().__init__()
        a, b, c = widths(u, alpha)
        self.out_channel = a + b + c
        self.conv2d_bn = conv2d_bn(cin, self.out_channel, 1, activation=None)
        self.conv3x3 = conv2d_bn(cin, a, 3)
        self.conv5x5 = conv2d_bn(a, b, 3)
        self.conv7x7 = conv2d_bn(b, c, 3)
        self.bn_1 = nn.BatchNorm2d(self.out_channel)
        self.relu = nn.ReLU()
        self.bn_2 = nn.BatchNorm2d(self.out_channel)

    def forward(self, x):
        shortcut = self.conv2d_bn(x)
        c3 = self.conv3x3(x)
        c5 = self.conv5x5(c3)
        c7 = self.conv7x7(c5)
        out = self.bn_1(torch.cat([c3, c5, c7], 1))
        out = torch.relu(shortcut + out)
        return self.bn_2(out)


class ResPathBlock(nn.Module):
    def __init__(self, cin, filters):
        super().__init__()
        self.conv2d_bn1 = conv2d_bn(cin, filters, 1, activation=None)
        self.conv2d_bn2 = conv2d_bn(cin, filters, 3)
        self.relu = nn.ReLU()
        self.bn = nn.BatchNorm2d(filters)

    def forward(self, x):
        return self.bn(torch.relu(self.conv2d_bn1(x) + self.conv2d_bn2(x)))


class ResPath(nn.Module):
    def __init__(self, cin, filters, length):
        super().__init__()
        self.first_block = ResPathBlock(cin, filters)
        self.blocks = nn.Sequential(*[ResPathBlock(filters, filters) for _ in range(length - 1)])

    def forward(self, x):
        return self.blocks(self.first_block(x))


class MultiResUNet(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=32):
        super().__init__()
        nf = width
        self.mres_block1 = MultiResBlock(in_channels, nf)
        self.pool = nn.MaxPool2d(2)
        self.res_path1 = ResPath(self.mres_block1.out_channel, nf, 4)
        self.mres_block2 = MultiResBlock(self.mres_block1.out_channel, nf * 2)
        self.res_path2 = ResPath(self.mres_block2.out_channel, nf * 2, 3)
        self.mres_block3 = MultiResBlock(self.mres_block2.out_channel, nf * 4)
        self.res_path3 = ResPath(self.mres_block3.out_channel, nf * 4, 2)
        self.mres_block4 = MultiResBlock(self.mres_block3.out_channel, nf * 8)
        self.res_path4 = ResPath(self.mres_block4.out_channel, nf * 8, 1)
        self.mres_block5 = MultiResBlock(self.mres_block4.out_channel, nf * 16)
        self.deconv1 = nn.ConvTranspose2d(self.mres_block5.out_channel, nf * 8, 2, stride=2)
        self.mres_block6 = MultiResBlock(nf * 8 + nf * 8, nf * 8)
        self.deconv2 = nn.ConvTranspose2d(self.mres_block6.out_channel, nf * 4, 2, stride=2)
        self.mres_block7 = MultiResBlock(nf * 4 + nf * 4, nf * 4)
        self.deconv3 = nn.ConvTranspose2d(self.mres_block7.out_channel, nf * 2, 2, stride=2)
        self.mres_block8 = MultiResBlock(nf * 2 + nf * 2, nf * 2)
        self.deconv4 = nn.ConvTranspose2d(self.mres_block8.out_channel, nf, 2, stride=2)
        self.mres_block9 = MultiResBlock(nf + nf, nf)
        self.conv10 = conv2d_bn(self.mres_block9.out_channel, classes, 1, activation=None)

    def forward(self, x):
        m1 = self.mres_block1(x)
        p = self.pool(m1)
        m1 = self.res_path1(m1)
        m2 = self.mres_block2(p)
        p = self.pool(m2)
        m2 = self.res_path2(m2)
        m3 = self.mres_block3(p)
        p = self.pool(m3)
        m3 = self.res_path3(m3)
        m4 = self.mres_block4(p)
        p = self.pool(m4)
        m4 = self.res_path4(m4)
        m = self.mres_block5(p)
        m = self.mres_block6(torch.cat([self.deconv1(m), m4], 1))
        m = self.mres_block7(torch.cat([self.deconv2(m), m3], 1))
        m = self.mres_block8(torch.cat([self.deconv3(m), m2], 1))
        m = self.mres_block9(torch.cat([self.deconv4(m), m1], 1))
        return self.conv10(m)


if __name__ == "__main__":
    m = MultiResUNet()
    print(sum(p.numel() for p in m.parameters()), sum(b.numel() for n, b in m.named_buffers() if "running" in n))
