"""Checks a Go model against its PyTorch twin: load the Go state dict
strictly, compare key order, run the Go input through the module in eval mode,
and write the output and the gradients of sum(out * sin(0..n-1)) for Go to
compare.

    check.py MODEL WIDTH IN_CHANNELS CLASSES DIR

DIR holds state.safetensors and input.safetensors from Go; out.safetensors is
written there. Reads and writes safetensors with torch, json and struct only.
"""
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attunet import AttUNet  # noqa: E402
from deeplab import DeepLab  # noqa: E402
from setr import SETR  # noqa: E402
from unet import UNet  # noqa: E402

MODELS = {"unet": UNet, "attunet": AttUNet, "deeplab": DeepLab, "setr": SETR}
DT = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}
NAME = {v: k for k, v in DT.items()}


def read(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for k, v in header.items():
        s, e = v["data_offsets"]
        t = torch.frombuffer(bytearray(b[base + s:base + e]), dtype=DT[v["dtype"]]) if e > s else torch.empty(0, dtype=DT[v["dtype"]])
        out[k] = t.reshape(v["shape"])
    return out, meta


def write(path, tensors):
    header, blobs, off = {}, [], 0
    for k, t in tensors.items():
        raw = t.detach().contiguous().cpu().numpy().tobytes()
        header[k] = {"dtype": NAME[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    name, width, cin, classes, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    torch.set_num_threads(1)
    m = MODELS[name](in_channels=cin, classes=classes, width=width).double()
    state, meta = read(os.path.join(d, "state.safetensors"))
    go_order = json.loads(meta["order"])
    py_order = list(m.state_dict().keys())
    if go_order != py_order:
        diff = [(i, a, b) for i, (a, b) in enumerate(zip(go_order, py_order)) if a != b][:5]
        sys.exit(f"state-dict order differs: {len(go_order)} Go keys vs {len(py_order)} PyTorch keys; first: {diff}")
    m.load_state_dict(state, strict=True)
    m.eval()
    x = read(os.path.join(d, "input.safetensors"))[0]["x"]
    y = m(x)
    w = torch.sin(torch.arange(y.numel(), dtype=y.dtype)).reshape(y.shape)
    (y * w).sum().backward()
    out = {"y": y}
    for k, p in m.named_parameters():
        out["grad." + k] = p.grad
    write(os.path.join(d, "out.safetensors"), out)


main()
