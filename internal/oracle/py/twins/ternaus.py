"""PyTorch TernausNet UNet16 in the layout of jmedseg's `ternaus` (the JMedSeg
reference's model/TernausNet.py, UNet16 with is_deconv=False): VGG16's
features (torchvision's layout, no BatchNorm) as `encoder`, the stages viewed
as conv1..conv5 (Sequentials of the encoder's own convolutions and one shared
ReLU), DecoderBlockV2 (bilinear x2, align_corners=False as Jittor's
interpolate, then two ConvRelu), dec1, final.

conv1..conv5 share the encoder's parameters: state_dict() lists them under
both names (encoder.0.weight and conv1.0.weight), which is what the Go model's
state dict and checkpoints hold, so they load here strictly. Parameters count
once (named_parameters() gives the encoder.N names). `width` is VGG16's first
stage (64 in the reference); num_filters is width // 2."""
import torch
import torch.nn as nn


def vgg16_features(in_channels, width):
    """torchvision's vgg16().features (cfg D, no BatchNorm), widths scaled."""
    w = width
    layers, cin = [], in_channels
    for v in [w, w, "M", 2 * w, 2 * w, "M", 4 * w, 4 * w, 4 * w, "M", 8 * w, 8 * w, 8 * w, "M", 8 * w, 8 * w, 8 * w, "M"]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
            cin = v
    return nn.Sequential(*layers)


class ConvRelu(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.activation(self.conv(x))


class Interpolate(nn.Module):
    def forward(self, x):
        return nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class DecoderBlockV2(nn.Module):
    def __init__(self, cin, mid, cout):
        super().__init__()
        self.block = nn.Sequential(Interpolate(), ConvRelu(cin, mid), ConvRelu(mid, cout))

    def forward(self, x):
        return self.block(x)


class TernausNet(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=64):
        super().__init__()
        w, nf = width, width // 2
        self.pool = nn.MaxPool2d(2, 2)
        self.encoder = vgg16_features(in_channels, w)
        self.relu = nn.ReLU(inplace=True)
        e = self.encoder
        self.conv1 = nn.Sequential(e[0], self.relu, e[2], self.relu)
        self.conv2 = nn.Sequential(e[5], self.relu, e[7], self.relu)
        self.conv3 = nn.Sequential(e[10], self.relu, e[12], self.relu, e[14], self.relu)
        self.conv4 = nn.Sequential(e[17], self.relu, e[19], self.relu, e[21], self.relu)
        self.conv5 = nn.Sequential(e[24], self.relu, e[26], self.relu, e[28], self.relu)
        self.center = DecoderBlockV2(8 * w, nf * 8 * 2, nf * 8)
        self.dec5 = DecoderBlockV2(8 * w + nf * 8, nf * 8 * 2, nf * 8)
        self.dec4 = DecoderBlockV2(8 * w + nf * 8, nf * 8 * 2, nf * 8)
        self.dec3 = DecoderBlockV2(4 * w + nf * 8, nf * 4 * 2, nf * 2)
        self.dec2 = DecoderBlockV2(2 * w + nf * 2, nf * 2 * 2, nf)
        self.dec1 = ConvRelu(w + nf, nf)
        self.final = nn.Conv2d(nf, classes, 1)

    def forward(self, x):
        conv1 = self.conv1(x)
        conv2 = self.conv2(self.pool(conv1))
        conv3 = self.conv3(self.pool(conv2))
        conv4 = self.conv4(self.pool(conv3))
        conv5 = self.conv5(self.pool(conv4))
        center = self.center(self.pool(conv5))
        dec5 = self.dec5(torch.cat([center, conv5], 1))
        dec4 = self.dec4(torch.cat([dec5, conv4], 1))
        dec3 = self.dec3(torch.cat([dec4, conv3], 1))
        dec2 = self.dec2(torch.cat([dec3, conv2], 1))
        return self.final(self.dec1(torch.cat([dec2, conv1], 1)))


if __name__ == "__main__":
    m = TernausNet()
    print(sum(p.numel() for p in m.parameters()), len(m.state_dict()))
