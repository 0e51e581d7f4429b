"""PyTorch twins of the blocks, for the Go parity tests.

    block_twins.py DIR...

Each DIR/state.safetensors holds the Go block's state dict, with the key order
("order") and the case ("config", JSON: kind and arguments) in its metadata;
DIR/input.safetensors holds the inputs "x0", "x1", ... The twin is built
from the case in the reference's layout (attribute names as the Jittor
source, in PyTorch), its key order is compared with Go's, the state is
loaded strictly, and DIR/out.safetensors gets the output "y", the gradient
of sum(y * sin(0..n-1)) for every parameter ("grad.NAME") and every input
("gin.I"), and the float buffers afterwards ("buf.NAME").
"""
import json
import os
import sys
import traceback

import torch
import torch.nn as nn
import torch.nn.functional as F

from stio import read, write  # noqa: E402


class NormLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        g = 32 if c >= 512 else 16 if c >= 256 else 8 if c >= 128 else 4 if c >= 64 else 1
        self.norm = nn.GroupNorm(g, c)

    def forward(self, x):
        return self.norm(x)


def norm_of(kind):
    return {"bn": nn.BatchNorm2d, "in": nn.InstanceNorm2d, "normlayer": NormLayer,
            "gn4": lambda c: nn.GroupNorm(4, c), None: None}[kind]


def act_of(kind):
    return {"relu": lambda: nn.ReLU(inplace=True), "relu6": nn.ReLU6, None: None}[kind]


def conv_of(c, cin, cout, k):
    kh, kw = c.get("kernel", [k, k])
    d = c.get("dilation", 1)
    pad = c.get("padding", [d * (kh - 1) // 2, d * (kw - 1) // 2])
    return nn.Conv2d(cin, cout, (kh, kw), stride=c.get("stride", 1), padding=tuple(pad), dilation=d,
                     groups=c.get("groups", 1), bias=c.get("bias", True))


def cbr(c, cin, cout, k):
    mods = [conv_of(c, cin, cout, k)]
    if norm_of(c.get("norm", "bn")):
        mods.append(norm_of(c.get("norm", "bn"))(cout))
    if act_of(c.get("act", "relu")):
        mods.append(act_of(c.get("act", "relu"))())
    return mods


class ConvNormAct(nn.Module):
    def __init__(self, c):
        super().__init__()
        names = c.get("names", ["conv", "bn"])
        setattr(self, names[0], conv_of(c, c["in"], c["out"], c["k"]))
        self.order = [names[0]]
        if norm_of(c.get("norm", "bn")):
            setattr(self, names[1], norm_of(c.get("norm", "bn"))(c["out"]))
            self.order.append(names[1])
        if act_of(c.get("act", "relu")):
            self.relu = act_of(c.get("act", "relu"))()
            self.order.append("relu")

    def forward(self, x):
        for n in self.order:
            x = getattr(self, n)(x)
        return x


class DoubleConv(nn.Module):
    def __init__(self, cin, cout, mid=None):
        super().__init__()
        mid = mid or cout
        self.double_conv = nn.Sequential(
            nn.Conv2d(cin, mid, 3, padding=1), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())

    def forward(self, x):
        return self.double_conv(x)


class Up(nn.Module):
    def __init__(self, cin, cout, mid, align):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=align)
        self.conv = DoubleConv(cin, cout, mid)

    def forward(self, x1, x2):
        x = self.up(x1)
        dy, dx = x2.shape[2] - x.shape[2], x2.shape[3] - x.shape[3]
        x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([x2, x], 1))


def gate(kind, t):
    if kind == "softmaxall":  # Jittor's softmax(x) without a dim
        return torch.softmax(t.reshape(-1), 0).reshape(t.shape)
    return torch.sigmoid(t)


class SpatialGate2d(nn.Module):
    """The reference's (channel) squeeze-excitation, Linear form."""

    def __init__(self, c, r, g):
        super().__init__()
        self.linear_1 = nn.Linear(c, c // r)
        self.linear_2 = nn.Linear(c // r, c)
        self.g = g

    def forward(self, x):
        z = x.view(*x.shape[:-2], -1).mean(-1)
        z = self.linear_2(torch.relu(self.linear_1(z)))
        return x * gate(self.g, z.unsqueeze(-1).unsqueeze(-1))


class SqueezeExcitation(nn.Module):
    """torchvision's, with ReLU."""

    def __init__(self, c, r, g):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // r, 1)
        self.fc2 = nn.Conv2d(c // r, c, 1)
        self.g = g

    def forward(self, x):
        z = F.adaptive_avg_pool2d(x, 1)
        return x * gate(self.g, self.fc2(torch.relu(self.fc1(z))))


class ChannelGate2d(nn.Module):
    def __init__(self, c, g):
        super().__init__()
        self.conv = nn.Conv2d(c, 1, 1)
        self.g = g

    def forward(self, x):
        return x * gate(self.g, self.conv(x))


class SCSE(nn.Module):
    def __init__(self, c, r, g):
        super().__init__()
        self.spatial_gate = SpatialGate2d(c, r, g)
        self.channel_gate = ChannelGate2d(c, g)

    def forward(self, x):
        return self.spatial_gate(x) + self.channel_gate(x)


class Attention_block(nn.Module):
    def __init__(self, fg, fl, fint, norm):
        super().__init__()
        self.W_g = nn.Sequential(nn.Conv2d(fg, fint, 1), norm(fint))
        self.W_x = nn.Sequential(nn.Conv2d(fl, fint, 1), norm(fint))
        self.psi = nn.Sequential(nn.Conv2d(fint, 1, 1), norm(1), nn.Sigmoid())

    def forward(self, g, x):
        return x * self.psi(torch.relu(self.W_g(g) + self.W_x(x)))


class ASPP(nn.Module):
    """This project's deeplab ASPP (internal/oracle/py/twins/deeplab.py)."""

    def __init__(self, cin, c, rates):
        super().__init__()

        def b(k, d):
            return [nn.Conv2d(cin, c, k, padding=(k // 2) * d, dilation=d, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
        self.aspp1 = nn.Sequential(*b(1, 1))
        self.aspp2 = nn.Sequential(*b(3, rates[0]))
        self.aspp3 = nn.Sequential(*b(3, rates[1]))
        self.aspp4 = nn.Sequential(*b(3, rates[2]))
        self.global_avg_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), *b(1, 1))
        self.conv1 = nn.Conv2d(5 * c, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        g = F.interpolate(self.global_avg_pool(x), size=x.shape[2:], mode="bilinear", align_corners=True)
        x = torch.cat([self.aspp1(x), self.aspp2(x), self.aspp3(x), self.aspp4(x), g], 1)
        return self.dropout(torch.relu(self.bn1(self.conv1(x))))


class PyramidPool(nn.Module):
    def __init__(self, cin, cout, size):
        super().__init__()
        self.conv = nn.Sequential(nn.AdaptiveAvgPool2d(size), nn.Conv2d(cin, cout, 1, bias=False),
                                  nn.BatchNorm2d(cout), nn.ReLU())

    def forward(self, x):
        return F.interpolate(self.conv(x), size=x.shape[2:], mode="bilinear", align_corners=False)


class PSPHead(nn.Module):
    def __init__(self, cin, cout, bins):
        super().__init__()
        self.names = ["layer5" + "abcd"[i] for i in range(len(bins))]
        for n, b in zip(self.names, bins):
            setattr(self, n, PyramidPool(cin, cout, b))

    def forward(self, x):
        return torch.cat([x] + [getattr(self, n)(x) for n in self.names], 1)


class DecoderBlock(nn.Module):
    """LinkNet's, as D-LinkNet and CE-Net."""

    def __init__(self, cin, nf):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin // 4, 1)
        self.norm1 = nn.BatchNorm2d(cin // 4)
        self.deconv2 = nn.ConvTranspose2d(cin // 4, cin // 4, 3, stride=2, padding=1, output_padding=1)
        self.norm2 = nn.BatchNorm2d(cin // 4)
        self.conv3 = nn.Conv2d(cin // 4, nf, 1)
        self.norm3 = nn.BatchNorm2d(nf)

    def forward(self, x):
        x = torch.relu(self.norm1(self.conv1(x)))
        x = torch.relu(self.norm2(self.deconv2(x)))
        return torch.relu(self.norm3(self.conv3(x)))


def build(c):
    k = c["kind"]
    if k == "cbr":
        return nn.Sequential(*cbr(c, c["in"], c["out"], c["k"]))
    if k == "convnormact":
        return ConvNormAct(c)
    if k == "doubleconv":
        return DoubleConv(c["in"], c["out"], c.get("mid"))
    if k == "up":
        return Up(c["in"], c["out"], c["mid"], c.get("align", False))
    if k == "se":
        cls = SqueezeExcitation if c.get("conv") else SpatialGate2d
        return cls(c["c"], c.get("r", 16), c.get("gate", "sigmoid"))
    if k == "sse":
        return ChannelGate2d(c["c"], c.get("gate", "sigmoid"))
    if k == "scse":
        return SCSE(c["c"], c.get("r", 16), c.get("gate", "sigmoid"))
    if k == "attgate":
        return Attention_block(c["fg"], c["fl"], c["fint"], norm_of(c.get("norm", "bn")))
    if k == "aspp":
        return ASPP(c["in"], c["out"], c["rates"])
    if k == "psp":
        return PSPHead(c["in"], c["out"], c["bins"])
    if k == "linknet":
        return DecoderBlock(c["in"], c["out"])
    raise ValueError(k)


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
    m = build(c).double()
    go_order = json.loads(meta["order"])
    py_order = list(m.state_dict().keys())
    if go_order != py_order:
        raise ValueError(f"state-dict order differs: Go {go_order} vs PyTorch {py_order}")
    m.load_state_dict(state, strict=True)
    m.train(c.get("train", False))
    ins = read(os.path.join(d, "input.safetensors"))[0]
    xs = [ins["x%d" % i].requires_grad_(True) for i in range(len(ins))]
    y = m(*xs)
    (y * torch.sin(torch.arange(y.numel(), dtype=y.dtype)).reshape(y.shape)).sum().backward()
    out = {"y": y}
    for k, p in m.named_parameters():
        out["grad." + k] = p.grad
    for i, x in enumerate(xs):
        out["gin.%d" % i] = x.grad
    for k, b in m.named_buffers():
        if b.dtype.is_floating_point:
            out["buf." + k] = b
    write(os.path.join(d, "out.safetensors"), out)


main()
