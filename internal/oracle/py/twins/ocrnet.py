"""PyTorch OCRNet in the layout of jmedseg's `ocrnet` (the JMedSeg reference's
OCRNet, model/OCRNet.py): pspnet.py's reference ResNet-101 (output stride
16); soft object regions from layer3 (get_context), pixel features from
layer4 (conv_3x3), OCRHead (region pooling, pixel-region relation, a
zero-initialised conv_1x1, concatenation, last_conv), bilinear resize
(align_corners=False, Jittor's). Same parameter names, order and count as
the Go model; `width` is the backbone's base width (64 in the reference).

The relation is normalised over the regions, as the published OCR;
OCRNetReferenceRelation normalises it over the pixels, as the reference's
second softmax(dim=2) (Go: OCRNetOptions.ReferenceRelation)."""
import torch
import torch.nn as nn

from pspnet import ResNet101, resize


class OCRHead(nn.Module):
    def __init__(self, in_channels, n_cls, reference=False):
        super().__init__()
        self.reference = reference
        self.softmax = nn.Softmax(dim=2)
        self.conv_1x1 = nn.Conv2d(in_channels, in_channels, kernel_size=1)
        self.last_conv = nn.Conv2d(in_channels * 2, n_cls, kernel_size=3, stride=1, padding=1)
        nn.init.zeros_(self.conv_1x1.weight)

    def forward(self, context, feature):
        b, c, h, w = feature.shape
        origin = feature
        feature = feature.reshape(b, c, -1).permute(0, 2, 1)  # b, hw, c
        context = context.reshape(b, context.shape[1], -1)  # b, K, hw
        attention = self.softmax(context)
        ocr_context = torch.bmm(attention, feature).permute(0, 2, 1)  # b, c, K
        relation = torch.bmm(feature, ocr_context).permute(0, 2, 1)  # b, K, hw
        attention = self.softmax(relation) if self.reference else torch.softmax(relation, dim=1)
        result = torch.bmm(ocr_context, attention).reshape(b, c, h, w)
        result = self.conv_1x1(result)
        return self.last_conv(torch.cat([result, origin], 1))


class OCRNet(nn.Module):
    reference = False

    def __init__(self, in_channels=3, classes=2, width=64):
        super().__init__()
        w = width
        self.backbone = ResNet101(in_channels, w)
        self.head = OCRHead(8 * w, classes, self.reference)
        self.get_context = nn.Sequential(
            nn.Conv2d(16 * w, 8 * w, kernel_size=3, stride=1, padding=1), nn.BatchNorm2d(8 * w), nn.ReLU(inplace=True),
            nn.Dropout(0.05), nn.Conv2d(8 * w, classes, kernel_size=1, stride=1, padding=0, bias=True))
        self.conv_3x3 = nn.Sequential(
            nn.Conv2d(32 * w, 8 * w, kernel_size=3, stride=1, padding=1), nn.BatchNorm2d(8 * w), nn.ReLU(inplace=True))

    def forward(self, x):
        _, _, x2, x3 = self.backbone(x)
        out = self.head(self.get_context(x2), self.conv_3x3(x3))
        return resize(out, x)


class OCRNetReferenceRelation(OCRNet):
    reference = True


if __name__ == "__main__":
    print(sum(p.numel() for p in OCRNet().parameters()))
