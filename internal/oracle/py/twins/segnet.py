"""PyTorch SegNet in the layout of jmedseg's `segnet` (the JMedSeg reference's
SegNet, model/SegNet.py): a VGG16-BN encoder of five stages (2, 2, 3, 3, 3
conv3 + BatchNorm + ReLU at w, 2w, 4w, 8w, 8w channels), each ending in a
2x2 max-pooling whose indices the mirrored decoder's max-unpooling uses;
the decoder's last convolution conv11d maps w channels to the classes with
neither norm nor ReLU. Same attribute names as the reference (conv11, bn11,
..., conv53d, bn53d, ..., conv11d), so the same state-dict keys, order and
count as the Go model; `width` is the first stage's width (64 in the
reference)."""
import torch.nn as nn
import torch.nn.functional as F

# (stage, convs, channels as a multiple of the width)
ENC = [(1, 2, 1), (2, 2, 2), (3, 3, 4), (4, 3, 8), (5, 3, 8)]


class SegNet(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=64):
        super().__init__()
        w = width
        cin = in_channels
        for s, n, m in ENC:
            for i in range(1, n + 1):
                setattr(self, f"conv{s}{i}", nn.Conv2d(cin, m * w, 3, padding=1))
                setattr(self, f"bn{s}{i}", nn.BatchNorm2d(m * w, momentum=0.1))
                cin = m * w
        # decoder stage s mirrors encoder stage s: convs s n..1, the last
        # one mapping to the previous stage's width (the classes at stage 1)
        for s, n, m in reversed(ENC):
            out = ENC[s - 2][2] * w if s > 1 else None
            for i in range(n, 0, -1):
                c_out = m * w if i > 1 else out
                if c_out is None:
                    setattr(self, f"conv{s}{i}d", nn.Conv2d(m * w, classes, 3, padding=1))
                else:
                    setattr(self, f"conv{s}{i}d", nn.Conv2d(m * w, c_out, 3, padding=1))
                    setattr(self, f"bn{s}{i}d", nn.BatchNorm2d(c_out, momentum=0.1))
        self.max_pool2d = nn.MaxPool2d(2, 2, return_indices=True)
        self.max_unpool2d = nn.MaxUnpool2d(2, 2)

    def forward(self, x):
        ids = []
        for s, n, _ in ENC:
            for i in range(1, n + 1):
                x = F.relu(getattr(self, f"bn{s}{i}")(getattr(self, f"conv{s}{i}")(x)))
            x, idx = self.max_pool2d(x)
            ids.append(idx)
        for s, n, _ in reversed(ENC):
            x = self.max_unpool2d(x, ids[s - 1])
            for i in range(n, 0, -1):
                x = getattr(self, f"conv{s}{i}d")(x)
                if s > 1 or i > 1:
                    x = F.relu(getattr(self, f"bn{s}{i}d")(x))
        return x


if __name__ == "__main__":
    print(sum(p.numel() for p in SegNet().parameters()))
