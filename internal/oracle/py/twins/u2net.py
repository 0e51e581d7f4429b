"""PyTorch U^2-Net and U^2-Net small in the layout of jmedseg's `u2net` and
`u2netp`, written from the reference's structure (JMedSeg model/U2Net.py):
same module attribute names, so the same state-dict keys in the same order,
and the same trainable parameter counts (44,023,718 and 1,134,662 at width
64). Bilinear resizing uses align_corners=False (Jittor's default); the
forward returns the fused logits d0, as the reference's does."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class REBNCONV(nn.Module):
    def __init__(self, in_ch, out_ch, dirate=1):
        super().__init__()
        self.conv_s1 = nn.Conv2d(in_ch, out_ch, 3, padding=dirate, dilation=dirate)
        self.bn_s1 = nn.BatchNorm2d(out_ch)
        self.relu_s1 = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu_s1(self.bn_s1(self.conv_s1(x)))


def upsample_like(src, tar):
    return F.interpolate(src, size=tar.shape[2:], mode="bilinear", align_corners=False)


def pool():
    return nn.MaxPool2d(2, stride=2, ceil_mode=True)


class RSU(nn.Module):
    """RSU-L (L = 7..4): rebnconvin, rebnconv1..L-1 with pool1..L-2 between,
    rebnconvL (dilation 2), rebnconv(L-1)d..rebnconv1d; the residual adds
    rebnconvin's output. Attribute order as in the reference's RSU7..RSU4."""

    def __init__(self, levels, in_ch, mid_ch, out_ch):
        super().__init__()
        self.levels = levels
        self.rebnconvin = REBNCONV(in_ch, out_ch, 1)
        setattr(self, "rebnconv1", REBNCONV(out_ch, mid_ch, 1))
        for i in range(2, levels):
            setattr(self, f"pool{i - 1}", pool())
            setattr(self, f"rebnconv{i}", REBNCONV(mid_ch, mid_ch, 1))
        setattr(self, f"rebnconv{levels}", REBNCONV(mid_ch, mid_ch, 2))
        for i in range(levels - 1, 0, -1):
            setattr(self, f"rebnconv{i}d", REBNCONV(2 * mid_ch, out_ch if i == 1 else mid_ch, 1))

    def forward(self, x):
        L = self.levels
        hxin = self.rebnconvin(x)
        hx = [self.rebnconv1(hxin)]
        for i in range(2, L):
            hx.append(getattr(self, f"rebnconv{i}")(getattr(self, f"pool{i - 1}")(hx[-1])))
        d = getattr(self, f"rebnconv{L}")(hx[-1])
        d = getattr(self, f"rebnconv{L - 1}d")(torch.cat((d, hx[L - 2]), 1))
        for i in range(L - 2, 0, -1):
            up = upsample_like(d, hx[i - 1])
            d = getattr(self, f"rebnconv{i}d")(torch.cat((up, hx[i - 1]), 1))
        return d + hxin


class RSU4F(nn.Module):
    def __init__(self, in_ch, mid_ch, out_ch):
        super().__init__()
        self.rebnconvin = REBNCONV(in_ch, out_ch, 1)
        self.rebnconv1 = REBNCONV(out_ch, mid_ch, 1)
        self.rebnconv2 = REBNCONV(mid_ch, mid_ch, 2)
        self.rebnconv3 = REBNCONV(mid_ch, mid_ch, 4)
        self.rebnconv4 = REBNCONV(mid_ch, mid_ch, 8)
        self.rebnconv3d = REBNCONV(2 * mid_ch, mid_ch, 4)
        self.rebnconv2d = REBNCONV(2 * mid_ch, mid_ch, 2)
        self.rebnconv1d = REBNCONV(2 * mid_ch, out_ch, 1)

    def forward(self, x):
        hxin = self.rebnconvin(x)
        hx1 = self.rebnconv1(hxin)
        hx2 = self.rebnconv2(hx1)
        hx3 = self.rebnconv3(hx2)
        hx4 = self.rebnconv4(hx3)
        hx3d = self.rebnconv3d(torch.cat((hx4, hx3), 1))
        hx2d = self.rebnconv2d(torch.cat((hx3d, hx2), 1))
        hx1d = self.rebnconv1d(torch.cat((hx2d, hx1), 1))
        return hx1d + hxin


def rsu(levels, flat, i, m, o):
    return RSU4F(i, m, o) if flat else RSU(levels, i, m, o)


class _U2(nn.Module):
    def __init__(self, in_channels, classes, enc, dec):
        super().__init__()
        for k, s in enumerate(enc):
            setattr(self, f"stage{k + 1}", rsu(*s))
            if k < 5:
                setattr(self, f"pool{k + 1}{k + 2}", pool())
        for k, s in enumerate(dec):
            setattr(self, f"stage{5 - k}d", rsu(*s))
        side_in = [dec[4][4], dec[3][4], dec[2][4], dec[1][4], dec[0][4], enc[5][4]]
        for k, c in enumerate(side_in):
            setattr(self, f"side{k + 1}", nn.Conv2d(c, classes, 3, padding=1))
        self.outconv = nn.Conv2d(6 * classes, classes, 1)

    def forward(self, x):
        hx1 = self.stage1(x)
        hx2 = self.stage2(self.pool12(hx1))
        hx3 = self.stage3(self.pool23(hx2))
        hx4 = self.stage4(self.pool34(hx3))
        hx5 = self.stage5(self.pool45(hx4))
        hx6 = self.stage6(self.pool56(hx5))
        hx5d = self.stage5d(torch.cat((upsample_like(hx6, hx5), hx5), 1))
        hx4d = self.stage4d(torch.cat((upsample_like(hx5d, hx4), hx4), 1))
        hx3d = self.stage3d(torch.cat((upsample_like(hx4d, hx3), hx3), 1))
        hx2d = self.stage2d(torch.cat((upsample_like(hx3d, hx2), hx2), 1))
        hx1d = self.stage1d(torch.cat((upsample_like(hx2d, hx1), hx1), 1))
        d1 = self.side1(hx1d)
        d2 = upsample_like(self.side2(hx2d), d1)
        d3 = upsample_like(self.side3(hx3d), d1)
        d4 = upsample_like(self.side4(hx4d), d1)
        d5 = upsample_like(self.side5(hx5d), d1)
        d6 = upsample_like(self.side6(hx6), d1)
        return self.outconv(torch.cat((d1, d2, d3, d4, d5, d6), 1))


class U2Net(_U2):
    """U2NET: RSU7(in,32,64), RSU6(64,32,128), RSU5(128,64,256),
    RSU4(256,128,512), RSU4F(512,256,512) ×2; decoder RSU4F(1024,256,512),
    RSU4(1024,128,256), RSU5(512,64,128), RSU6(256,32,64), RSU7(128,16,64);
    channel counts scale with width/64."""

    def __init__(self, in_channels=3, classes=2, width=64):
        q = width // 4
        enc = [(7, False, in_channels, 2 * q, 4 * q), (6, False, 4 * q, 2 * q, 8 * q), (5, False, 8 * q, 4 * q, 16 * q),
               (4, False, 16 * q, 8 * q, 32 * q), (4, True, 32 * q, 16 * q, 32 * q), (4, True, 32 * q, 16 * q, 32 * q)]
        dec = [(4, True, 64 * q, 16 * q, 32 * q), (4, False, 64 * q, 8 * q, 16 * q), (5, False, 32 * q, 4 * q, 8 * q),
               (6, False, 16 * q, 2 * q, 4 * q), (7, False, 8 * q, q, 4 * q)]
        super().__init__(in_channels, classes, enc, dec)


class U2NetP(_U2):
    """U2NETP: every RSU mid 16, out 64 (width/4 and width)."""

    def __init__(self, in_channels=3, classes=2, width=64):
        w, q = width, width // 4
        enc = [(7, False, in_channels, q, w)] + [(L, f, w, q, w) for L, f in ((6, False), (5, False), (4, False), (4, True), (4, True))]
        dec = [(L, f, 2 * w, q, w) for L, f in ((4, True), (4, False), (5, False), (6, False), (7, False))]
        super().__init__(in_channels, classes, enc, dec)


if __name__ == "__main__":
    for cls in (U2Net, U2NetP):
        m = cls()
        print(cls.__name__, sum(p.numel() for p in m.parameters()),
              sum(p.numel() for p in m.parameters()) + sum(b.numel() for n, b in m.named_buffers() if "running" in n))
