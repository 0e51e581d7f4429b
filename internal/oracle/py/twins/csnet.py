"""PyTorch CS-Net in the layout of jmedseg's `csnet` (the JMedSeg
reference's CSNet): residual encoders at 32..512, affinity attention
(spatial: 1×3 query and 3×1 key convs at C/8, 1×1 value, γ; channel: γ) at
the bottom, fused with the features by a 1×1 conv, ConvTranspose 2×2
decoders, 1×1 head returning logits. Same parameter names, order and count
as the Go model (the two γ are parameters, listed before their module's
children as PyTorch does).

reference=True gives the reference's quirks: the channel attention's row
maxima come from batch element 0 for every sample (`jt.max(...)[0]`), and
the output goes through a sigmoid."""
import torch
import torch.nn as nn


class ResEncoder(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv1x1 = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        residual = self.conv1x1(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(out + residual)


class Decoder(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.conv(x)


class SpatialAttentionBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.query = nn.Sequential(nn.Conv2d(c, c // 8, (1, 3), padding=(0, 1)), nn.BatchNorm2d(c // 8), nn.ReLU(inplace=True))
        self.key = nn.Sequential(nn.Conv2d(c, c // 8, (3, 1), padding=(1, 0)), nn.BatchNorm2d(c // 8), nn.ReLU(inplace=True))
        self.value = nn.Conv2d(c, c, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):
        b, c, h, w = x.shape
        q = self.query(x).view(b, -1, w * h).permute(0, 2, 1)
        k = self.key(x).view(b, -1, w * h)
        affinity = self.softmax(torch.matmul(q, k))
        v = self.value(x).view(b, -1, h * w)
        weights = torch.matmul(v, affinity.permute(0, 2, 1)).view(b, c, h, w)
        return self.gamma * weights + x


class ChannelAttentionBlock(nn.Module):
    def __init__(self, c, reference=False):
        super().__init__()
        self.reference = reference
        self.gamma = nn.Parameter(torch.zeros(1))
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):
        b, c, h, w = x.shape
        q = x.view(b, c, -1)
        k = x.view(b, c, -1).permute(0, 2, 1)
        affinity = torch.matmul(q, k)
        m = torch.max(affinity, -1, keepdim=True)[0]  # [B, C, 1]: per sample
        if self.reference:
            m = m[0]  # Jittor's jt.max returns the values, so [0] is batch element 0
        affinity = self.softmax(m.expand_as(affinity) - affinity)
        weights = torch.matmul(affinity, x.view(b, c, -1)).view(b, c, h, w)
        return self.gamma * weights + x


class AffinityAttention(nn.Module):
    def __init__(self, c, reference=False):
        super().__init__()
        self.sab = SpatialAttentionBlock(c)
        self.cab = ChannelAttentionBlock(c, reference)

    def forward(self, x):
        return self.sab(x) + self.cab(x)


class CSNet(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=32, reference=False):
        super().__init__()
        w = width
        self.reference = reference
        self.enc_input = ResEncoder(in_channels, w)
        self.encoder1 = ResEncoder(w, 2 * w)
        self.encoder2 = ResEncoder(2 * w, 4 * w)
        self.encoder3 = ResEncoder(4 * w, 8 * w)
        self.encoder4 = ResEncoder(8 * w, 16 * w)
        self.downsample = nn.MaxPool2d(2, 2)
        self.affinity_attention = AffinityAttention(16 * w, reference)
        self.attention_fuse = nn.Conv2d(32 * w, 16 * w, 1)
        self.decoder4 = Decoder(16 * w, 8 * w)
        self.decoder3 = Decoder(8 * w, 4 * w)
        self.decoder2 = Decoder(4 * w, 2 * w)
        self.decoder1 = Decoder(2 * w, w)
        self.deconv4 = nn.ConvTranspose2d(16 * w, 8 * w, 2, stride=2)
        self.deconv3 = nn.ConvTranspose2d(8 * w, 4 * w, 2, stride=2)
        self.deconv2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)
        self.deconv1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.final = nn.Conv2d(w, classes, 1)

    def forward(self, x):
        e0 = self.enc_input(x)
        e1 = self.encoder1(self.downsample(e0))
        e2 = self.encoder2(self.downsample(e1))
        e3 = self.encoder3(self.downsample(e2))
        f = self.encoder4(self.downsample(e3))
        a = self.affinity_attention(f)
        fused = self.attention_fuse(torch.cat((f, a), 1))
        d = self.decoder4(torch.cat((e3, self.deconv4(fused)), 1))
        d = self.decoder3(torch.cat((e2, self.deconv3(d)), 1))
        d = self.decoder2(torch.cat((e1, self.deconv2(d)), 1))
        d = self.decoder1(torch.cat((e0, self.deconv1(d)), 1))
        out = self.final(d)
        return torch.sigmoid(out) if self.reference else out


class CSNetReference(CSNet):
    """The reference's quirks, for the option's parity test."""

    def __init__(self, in_channels=3, classes=2, width=32):
        super().__init__(in_channels, classes, width, reference=True)


if __name__ == "__main__":
    m = CSNet()
    print(sum(p.numel() for p in m.parameters()), sum(b.numel() for n, b in m.named_buffers() if "running" in n))
