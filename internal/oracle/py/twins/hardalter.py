"""PyTorch HarD-MSEG "alter" in the layout of jmedseg's `hardalter` (the
JMedSeg reference's HarDMSEG_alter, model/HarDNet_alter.py): `hardnet`'s
HarDNet-68 backbone and RFB blocks plus an RFB on the 1/4 tap and a
four-level partial decoder, logits at 1/4 up-sampled bilinearly ×4
(align_corners=False). Same parameter names, order and count as the Go
model; `width` as in hardnet.py."""
import torch.nn as nn
import torch.nn.functional as F

from hardnet import HarDNet68, RFB_modified, aggregation, scaled


class HarDMSEGAlter(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=32):
        super().__init__()
        s = lambda v: scaled(v, 2 * width)
        self.rfb1_1 = RFB_modified(s(128), width)
        self.rfb2_1 = RFB_modified(s(320), width)
        self.rfb3_1 = RFB_modified(s(640), width)
        self.rfb4_1 = RFB_modified(s(1024), width)
        self.agg1 = aggregation(width, classes, levels=4)
        self.hardnet = HarDNet68(in_channels, 2 * width)

    def forward(self, x):
        x1, x2, x3, x4 = self.hardnet(x)
        y = self.agg1(self.rfb4_1(x4), self.rfb3_1(x3), self.rfb2_1(x2), self.rfb1_1(x1))
        return F.interpolate(y, scale_factor=4, mode="bilinear", align_corners=False)


if __name__ == "__main__":
    print(sum(p.numel() for p in HarDMSEGAlter().parameters()))
