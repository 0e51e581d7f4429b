"""PyTorch simplified SETR in the layout of jmedseg's `setr`."""
import torch
import torch.nn as nn


class SETR(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=1024, patch=32, layers=8, heads=16, max_tokens=512):
        super().__init__()
        d = width
        self.patch, self.dim = patch, d
        self.patch_embed = nn.Sequential(nn.Linear(in_channels * patch * patch, d), nn.GELU(), nn.LayerNorm(d))
        self.register_buffer("pos_embed", torch.randn(max_tokens, d))
        layer = nn.TransformerEncoderLayer(d, heads, d, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d))
        self.proj = nn.Linear(d, 4 * d)
        mods, cin = [], d
        for _ in range(4):
            mods += [nn.Conv2d(cin, cin // 2, 3, padding=1), nn.BatchNorm2d(cin // 2), nn.ReLU(),
                     nn.Upsample(scale_factor=2, mode="bilinear")]
            cin //= 2
        mods.append(nn.Conv2d(cin, classes, 3, padding=1))
        self.decoder = nn.Sequential(*mods)

    def forward(self, x):
        n, c, h, w = x.shape
        p = self.patch
        gh, gw = h // p, w // p
        t = x.view(n, c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5).reshape(n, gh * gw, c * p * p)
        t = self.encoder(self.patch_embed(t) + self.pos_embed[: gh * gw])
        f = self.proj(t).view(n, gh, gw, self.dim, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(n, self.dim, 2 * gh, 2 * gw)
        return self.decoder(f)


if __name__ == "__main__":
    print(sum(p.numel() for p in SETR().parameters()))
