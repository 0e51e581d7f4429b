"""PyTorch HRNet in the layout of jmedseg's `hrnet` (the JMedSeg reference's
simplified HRNet-W16, model/hrnet.py): two stride-1 conv3 at full
resolution, layer1 of 4 Bottlenecks, branches of c, 2c, 4c, 8c channels
with 4 BasicBlocks each, stage2 1, stage3 4, stage4 3 modules (the last
returns branch 0 only), a 1×1 head. Same parameter names, order and count
as the Go model; the stem and layer1 scale with the width as 4·width (64 at
the reference's width 16)."""
import torch
import torch.nn as nn


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        res = self.downsample(x) if self.downsample is not None else x
        return torch.relu(out + res)


class BasicBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + x)


class StageModule(nn.Module):
    def __init__(self, stage, output_branches, c):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*[BasicBlock(c * 2 ** i) for _ in range(4)]) for i in range(stage))
        self.fuse_layers = nn.ModuleList()
        for i in range(output_branches):
            row = nn.ModuleList()
            for j in range(stage):
                if i == j:
                    row.append(nn.Sequential())
                elif i < j:
                    row.append(nn.Sequential(
                        nn.Conv2d(c * 2 ** j, c * 2 ** i, 1, bias=False),
                        nn.BatchNorm2d(c * 2 ** i),
                        nn.Upsample(scale_factor=2.0 ** (j - i), mode="nearest")))
                else:
                    ops = [nn.Sequential(
                        nn.Conv2d(c * 2 ** j, c * 2 ** j, 3, stride=2, padding=1, bias=False),
                        nn.BatchNorm2d(c * 2 ** j),
                        nn.ReLU(inplace=True)) for _ in range(i - j - 1)]
                    ops.append(nn.Sequential(
                        nn.Conv2d(c * 2 ** j, c * 2 ** i, 3, stride=2, padding=1, bias=False),
                        nn.BatchNorm2d(c * 2 ** i)))
                    row.append(nn.Sequential(*ops))
            self.fuse_layers.append(row)

    def forward(self, xs):
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for row in self.fuse_layers:
            y = row[0](xs[0])
            for j in range(1, len(self.branches)):
                y = y + row[j](xs[j])
            out.append(torch.relu(y))
        return out


def cbr(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class HRNet(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=16):
        super().__init__()
        c, s = width, 4 * width
        self.conv1 = nn.Conv2d(in_channels, s, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(s)
        self.conv2 = nn.Conv2d(s, s, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(s)
        down = nn.Sequential(nn.Conv2d(s, 4 * s, 1, bias=False), nn.BatchNorm2d(4 * s))
        self.layer1 = nn.Sequential(Bottleneck(s, s, down), *[Bottleneck(4 * s, s) for _ in range(3)])
        self.transition1 = nn.ModuleList([cbr(4 * s, c, 1), nn.Sequential(cbr(4 * s, 2 * c, 2))])
        self.stage2 = nn.Sequential(StageModule(2, 2, c))
        self.transition2 = nn.ModuleList([nn.Sequential(), nn.Sequential(), nn.Sequential(cbr(2 * c, 4 * c, 2))])
        self.stage3 = nn.Sequential(*[StageModule(3, 3, c) for _ in range(4)])
        self.transition3 = nn.ModuleList([nn.Sequential(), nn.Sequential(), nn.Sequential(), nn.Sequential(cbr(4 * c, 8 * c, 2))])
        self.stage4 = nn.Sequential(StageModule(4, 4, c), StageModule(4, 4, c), StageModule(4, 1, c))
        self.final_layer = nn.Conv2d(c, classes, 1)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        xs = [t(x) for t in self.transition1]
        xs = self.stage2(xs)
        xs = [self.transition2[0](xs[0]), self.transition2[1](xs[1]), self.transition2[2](xs[-1])]
        xs = self.stage3(xs)
        xs = [self.transition3[0](xs[0]), self.transition3[1](xs[1]), self.transition3[2](xs[2]), self.transition3[3](xs[-1])]
        xs = self.stage4(xs)
        return self.final_layer(xs[0])


if __name__ == "__main__":
    print(sum(p.numel() for p in HRNet().parameters()))
