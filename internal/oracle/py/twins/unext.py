"""PyTorch UNeXt in the layout of jmedseg's `unext`, written from the
reference's structure (JMedSeg model/UNext.py, after jeya-maria-jose's
UNeXt-pytorch): same module attribute names, so the same state-dict keys in
the same order, and the same trainable parameter count (1,471,938 at width
16). Channel counts scale with width/16 (16, 32, 128, 160, 256). Drop rates
are the reference's defaults (0), so DropPath is Identity and Dropout(0).

The shifted MLP shifts along the height before fc1 and along the width
before fc2, as published; reference_shift=True shifts along the height both
times, as the reference does. Bilinear up-sampling uses align_corners=False
(Jittor's nn.interpolate default)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class DWConv(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x, H, W):
        B, _, C = x.shape
        x = x.transpose(1, 2).reshape(B, C, H, W)
        return self.dwconv(x).flatten(2).transpose(1, 2)


class ShiftMLP(nn.Module):
    def __init__(self, in_features, hidden_features=None, shift_size=5, reference_shift=False):
        super().__init__()
        hidden_features = hidden_features or in_features
        self.dim = in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.dwconv = DWConv(hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(0.0)
        self.shift_size = shift_size
        self.pad = shift_size // 2
        self.second_dim = 2 if reference_shift else 3

    def shift(self, x, H, W, dim):
        B, N, C = x.shape
        xn = x.transpose(1, 2).reshape(B, C, H, W)
        xn = F.pad(xn, (self.pad, self.pad, self.pad, self.pad))
        xs = torch.chunk(xn, self.shift_size, 1)
        x_cat = torch.cat([torch.roll(c, s, dim) for c, s in zip(xs, range(-self.pad, self.pad + 1))], 1)
        x_s = x_cat[:, :, self.pad:self.pad + H, self.pad:self.pad + W]
        return x_s.reshape(B, C, H * W).transpose(1, 2)

    def forward(self, x, H, W):
        x = self.fc1(self.shift(x, H, W, 2))
        x = self.drop(self.act(self.dwconv(x, H, W)))
        x = self.fc2(self.shift(x, H, W, self.second_dim))
        return self.drop(x)


class ShiftedBlock(nn.Module):
    def __init__(self, dim, mlp_ratio=1.0, reference_shift=False):
        super().__init__()
        self.drop_path = nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = ShiftMLP(dim, int(dim * mlp_ratio), reference_shift=reference_shift)

    def forward(self, x, H, W):
        return x + self.drop_path(self.mlp(self.norm2(x), H, W))


class OverlapPatchEmbed(nn.Module):
    def __init__(self, patch_size=3, stride=2, in_chans=3, embed_dim=768):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride, patch_size // 2)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x):
        x = self.proj(x)
        _, _, H, W = x.shape
        return self.norm(x.flatten(2).transpose(1, 2)), H, W


class UNext(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=16, reference_shift=False):
        super().__init__()
        w = width
        c1, c2, c3, e1, e2 = w, 2 * w, 8 * w, 10 * w, 16 * w
        rs = reference_shift
        self.encoder1 = nn.Conv2d(in_channels, c1, 3, 1, 1)
        self.encoder2 = nn.Conv2d(c1, c2, 3, 1, 1)
        self.encoder3 = nn.Conv2d(c2, c3, 3, 1, 1)
        self.ebn1, self.ebn2, self.ebn3 = nn.BatchNorm2d(c1), nn.BatchNorm2d(c2), nn.BatchNorm2d(c3)
        self.norm3, self.norm4 = nn.LayerNorm(e1), nn.LayerNorm(e2)
        self.dnorm3, self.dnorm4 = nn.LayerNorm(e1), nn.LayerNorm(c3)
        self.block1 = ShiftedBlock(e1, reference_shift=rs)
        self.block2 = ShiftedBlock(e2, reference_shift=rs)
        self.dblock1 = ShiftedBlock(e1, reference_shift=rs)
        self.dblock2 = ShiftedBlock(c3, reference_shift=rs)
        self.patch_embed3 = OverlapPatchEmbed(3, 2, c3, e1)
        self.patch_embed4 = OverlapPatchEmbed(3, 2, e1, e2)
        self.decoder1 = nn.Conv2d(e2, e1, 3, 1, 1)
        self.decoder2 = nn.Conv2d(e1, c3, 3, 1, 1)
        self.decoder3 = nn.Conv2d(c3, c2, 3, 1, 1)
        self.decoder4 = nn.Conv2d(c2, c1, 3, 1, 1)
        self.decoder5 = nn.Conv2d(c1, c1, 3, 1, 1)
        self.dbn1, self.dbn2 = nn.BatchNorm2d(e1), nn.BatchNorm2d(c3)
        self.dbn3, self.dbn4 = nn.BatchNorm2d(c2), nn.BatchNorm2d(c1)
        self.final = nn.Conv2d(c1, classes, 1)

    @staticmethod
    def up(x):
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    @staticmethod
    def img(x, B, H, W):
        return x.reshape(B, H, W, -1).permute(0, 3, 1, 2).contiguous()

    def forward(self, x):
        B = x.shape[0]
        t1 = out = F.relu(F.max_pool2d(self.ebn1(self.encoder1(x)), 2, 2))
        t2 = out = F.relu(F.max_pool2d(self.ebn2(self.encoder2(out)), 2, 2))
        t3 = out = F.relu(F.max_pool2d(self.ebn3(self.encoder3(out)), 2, 2))
        out, H, W = self.patch_embed3(out)
        t4 = out = self.img(self.norm3(self.block1(out, H, W)), B, H, W)
        out, H, W = self.patch_embed4(out)
        out = self.img(self.norm4(self.block2(out, H, W)), B, H, W)
        out = F.relu(self.up(self.dbn1(self.decoder1(out)))) + t4
        _, _, H, W = out.shape
        out = self.img(self.dnorm3(self.dblock1(out.flatten(2).transpose(1, 2), H, W)), B, H, W)
        out = F.relu(self.up(self.dbn2(self.decoder2(out)))) + t3
        _, _, H, W = out.shape
        out = self.img(self.dnorm4(self.dblock2(out.flatten(2).transpose(1, 2), H, W)), B, H, W)
        out = F.relu(self.up(self.dbn3(self.decoder3(out)))) + t2
        out = F.relu(self.up(self.dbn4(self.decoder4(out)))) + t1
        out = F.relu(self.up(self.decoder5(out)))
        return self.final(out)


class UNextReferenceShift(UNext):
    """UNext with the reference's quirk: both shifts along the height."""

    def __init__(self, in_channels=3, classes=2, width=16):
        super().__init__(in_channels, classes, width, reference_shift=True)


if __name__ == "__main__":
    m = UNext()
    print(sum(p.numel() for p in m.parameters()),
          sum(p.numel() for p in m.parameters()) + sum(b.numel() for n, b in m.named_buffers() if "running" in n))
    print(m(torch.randn(1, 3, 64, 64)).shape)
