"""PyTorch twins of the encoders, for the Go parity tests.

    encoder_twins.py DIR...

Each DIR/state.safetensors holds the Go encoder's state dict, with the key order
("order") and the configuration ("config", JSON) in its metadata;
DIR/input.safetensors holds "x". The twin is built from the configuration,
its key order is compared with Go's, the state is loaded strictly, the input
goes through it (train or eval mode as configured), and DIR/out.safetensors
gets each tap ("y0", "y1", ...) and the gradient of every parameter
("grad.NAME") of sum_i sum(tap_i * sin(0..n_i-1)).

The ResNet follows the reference backbone's construction (model/backbone/
resnet.py: _make_layer, _make_MG_unit) for dilated layouts and torchvision's
names; the VGG is torchvision's make_layers. Plain torch, no torchvision.
"""
import json
import os
import sys
import traceback

import torch
import torch.nn as nn

from stio import read, write  # noqa: E402


class NormLayer(nn.Module):
    """The reference's GroupNorm rule."""

    def __init__(self, c):
        super().__init__()
        g = 32 if c >= 512 else 16 if c >= 256 else 8 if c >= 128 else 4 if c >= 64 else 1
        self.norm = nn.GroupNorm(g, c)

    def forward(self, x):
        return self.norm(x)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, dilation=1, downsample=None, norm=nn.BatchNorm2d):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = norm(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = norm(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = norm(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        idt = self.downsample(x) if self.downsample is not None else x
        return self.relu(out + idt)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, dilation=1, downsample=None, norm=nn.BatchNorm2d):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = norm(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = norm(planes)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        idt = self.downsample(x) if self.downsample is not None else x
        return self.relu(out + idt)


DEPTHS = {18: (BasicBlock, [2, 2, 2, 2]), 34: (BasicBlock, [3, 4, 6, 3]),
          50: (Bottleneck, [3, 4, 6, 3]), 101: (Bottleneck, [3, 4, 23, 3])}


class ResNet(nn.Module):
    def __init__(self, c):
        super().__init__()
        block, layers = DEPTHS[c["depth"]]
        w, cin = c["width"], c["in"]
        norm = NormLayer if c["norm"] == "normlayer" else nn.BatchNorm2d
        self.norm = norm
        self.stem = c["stem"]
        self.taps = c["taps"]
        if self.stem == "standard":
            self.conv1 = nn.Conv2d(cin, w, 7, 2, 3, bias=False)
            self.bn1 = norm(w)
            self.relu = nn.ReLU(inplace=True)
            self.inplanes = w
        elif self.stem in ("deep", "deepnorm"):
            self.conv1 = nn.Sequential(
                nn.Conv2d(cin, w, 3, 2, 1, bias=False), norm(w), nn.ReLU(inplace=True),
                nn.Conv2d(w, w, 3, 1, 1, bias=False), norm(w), nn.ReLU(inplace=True),
                nn.Conv2d(w, 2 * w, 3, 1, 1, bias=False))
            if self.stem == "deepnorm":
                self.bn1 = norm(2 * w)
            self.inplanes = 2 * w
        elif self.stem == "deepflat":
            self.conv1 = nn.Conv2d(cin, w, 3, 2, 1, bias=False)
            self.bn1 = norm(w)
            self.conv2 = nn.Conv2d(w, w, 3, 1, 1, bias=False)
            self.bn2 = norm(w)
            self.conv3 = nn.Conv2d(w, 2 * w, 3, 1, 1, bias=False)
            self.inplanes = 2 * w
        self.maxpool = nn.MaxPool2d(2, 2) if self.stem == "deepnorm" else nn.MaxPool2d(3, 2, 1)
        os_ = c["os"]
        strides, dilations = {32: ([1, 2, 2, 2], [1, 1, 1, 1]), 16: ([1, 2, 2, 1], [1, 1, 1, 2]),
                              8: ([1, 2, 1, 1], [1, 1, 2, 4])}[os_]
        n = max(self.taps)
        for i in range(min(n, 3)):
            setattr(self, "layer%d" % (i + 1), self._make_layer(block, w << i, layers[i], strides[i], dilations[i]))
        if n == 4:
            if c.get("multigrid"):
                self.layer4 = self._make_mg_unit(block, 8 * w, [m * dilations[3] for m in c["multigrid"]], strides[3])
            elif c.get("layer4"):
                self.layer4 = self._make_mg_unit(block, 8 * w, c["layer4"], strides[3])
            else:
                self.layer4 = self._make_layer(block, 8 * w, layers[3], strides[3], dilations[3])

    def _down(self, block, planes, stride):
        if stride != 1 or self.inplanes != planes * block.expansion:
            return nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                 self.norm(planes * block.expansion))
        return None

    def _make_layer(self, block, planes, blocks, stride, dilation):
        mods = [block(self.inplanes, planes, stride, dilation, self._down(block, planes, stride), self.norm)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            mods.append(block(self.inplanes, planes, 1, dilation, None, self.norm))
        return nn.Sequential(*mods)

    def _make_mg_unit(self, block, planes, dils, stride):
        mods = [block(self.inplanes, planes, stride, dils[0], self._down(block, planes, stride), self.norm)]
        self.inplanes = planes * block.expansion
        for d in dils[1:]:
            mods.append(block(self.inplanes, planes, 1, d, None, self.norm))
        return nn.Sequential(*mods)

    def forward(self, x):
        if self.stem == "standard":
            x = self.relu(self.bn1(self.conv1(x)))
        elif self.stem == "deep":
            x = self.conv1(x)
        elif self.stem == "deepnorm":
            x = torch.relu(self.bn1(self.conv1(x)))
        else:
            x = torch.relu(self.bn1(self.conv1(x)))
            x = torch.relu(self.bn2(self.conv2(x)))
            x = torch.relu(self.conv3(x))
        out = [x] if 0 in self.taps else []
        x = self.maxpool(x)
        for i in range(1, max(self.taps) + 1):
            x = getattr(self, "layer%d" % i)(x)
            if i in self.taps:
                out.append(x)
        return out


class VGG(nn.Module):
    """torchvision's vgg16(_bn).features."""

    def __init__(self, c):
        super().__init__()
        w = c["width"]
        cfg = [w, w, "M", 2 * w, 2 * w, "M", 4 * w, 4 * w, 4 * w, "M", 8 * w, 8 * w, 8 * w, "M", 8 * w, 8 * w, 8 * w, "M"]
        layers, cin = [], c["in"]
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers.append(nn.Conv2d(cin, v, 3, padding=1))
                if c["bn"]:
                    layers.append(nn.BatchNorm2d(v))
                layers.append(nn.ReLU(inplace=True))
                cin = v
        # Only the stages up to the deepest tap (as Go builds them).
        pools = [i for i, m in enumerate(layers) if isinstance(m, nn.MaxPool2d)]
        self.features = nn.Sequential(*layers[:pools[max(c["taps"])]])
        self.taps = c["taps"]

    def forward(self, x):
        out, stage = [], 0
        for m in self.features:
            if isinstance(m, nn.MaxPool2d):
                if stage in self.taps:
                    out.append(x)
                stage += 1
            x = m(x)
        out.append(x)
        return out


def main():
    torch.set_num_threads(1)
    for d in sys.argv[1:]:
        try:
            run(d)
        except Exception:  # reported per case by the Go test
            with open(os.path.join(d, "error.txt"), "w") as f:
                f.write(traceback.format_exc())


def run(d):
    state, meta = read(os.path.join(d, "state.safetensors"))
    c = json.loads(meta["config"])
    m = (ResNet(c) if c["kind"] == "resnet" else VGG(c)).double()
    go_order = json.loads(meta["order"])
    py_order = list(m.state_dict().keys())
    if go_order != py_order:
        diff = [(i, a, b) for i, (a, b) in enumerate(zip(go_order, py_order)) if a != b][:5]
        raise ValueError(f"state-dict order differs: {len(go_order)} Go keys vs {len(py_order)} PyTorch keys; first: {diff}")
    m.load_state_dict(state, strict=True)
    m.train(c["train"])
    x = read(os.path.join(d, "input.safetensors"))[0]["x"]
    ys = m(x)
    loss = sum((y * torch.sin(torch.arange(y.numel(), dtype=y.dtype)).reshape(y.shape)).sum() for y in ys)
    loss.backward()
    out = {"y%d" % i: y for i, y in enumerate(ys)}
    for k, p in m.named_parameters():
        out["grad." + k] = p.grad
    for k, b in m.named_buffers():
        if b.dtype.is_floating_point:
            out["buf." + k] = b
    write(os.path.join(d, "out.safetensors"), out)


main()
