"""PyTorch oracle for the torch/nn parity tests.

argv: cases.json, a directory, a thread count. For each case the Go test has
written <dir>/<name>.w.safetensors (its module's state dict, written by Go)
and <dir>/<name>.x.safetensors (inputs in0, in1, ...). This script builds the
same module in PyTorch, loads Go's weights strictly, runs the call, back-
propagates sin(arange(numel)) through the first output and writes
<dir>/<name>.out.safetensors with the outputs (out.K), input gradients
(gin.K), parameter gradients (gp.NAME) and the state dict after the call
(sd.NAME). With "pysd" it also writes a state dict of a freshly initialised
PyTorch module (pysd.NAME) and that module's outputs (pyout.K), for the
Python-to-Go direction. The safetensors files are read and written with the
few lines below, not the safetensors package. keys.json gets each module's
state_dict() keys in order.
"""
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DT = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_}
REV = {np.dtype(v): k for k, v in DT.items()}


def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    data = b[8 + n:]
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        a = np.frombuffer(data[s:e], dtype=DT[v["dtype"]]).reshape(v["shape"])
        out[k] = torch.from_numpy(a.copy())
    return out


def save(path, tensors):
    header, blobs, off = {}, [], 0
    for k, t in tensors.items():
        a = t.detach().cpu().contiguous().numpy()
        b = a.tobytes()
        header[k] = {"dtype": REV[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(header).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))


class DoubleConv(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
            nn.Conv2d(o, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(i, o))

    def forward(self, x):
        return self.maxpool_conv(x)


def outputs(res):
    return list(res) if isinstance(res, (tuple, list)) else [res]


def run(m, call, ins):
    env = {"m": m, "torch": torch, "F": F}
    for i, t in enumerate(ins):
        env["abcdefgh"[i]] = t
    return [o for o in outputs(eval(call, env)) if o is not None]


def main():
    torch.set_num_threads(int(sys.argv[3]))
    cases = json.load(open(sys.argv[1]))
    d = sys.argv[2]
    keys = {}
    env = {"nn": nn, "torch": torch, "DoubleConv": DoubleConv, "Down": Down}
    for c in cases:
        name = c["name"]
        m = eval(c["ctor"], env)
        m.train(c["train"])
        keys[name] = list(m.state_dict().keys())
        m.load_state_dict(load(f"{d}/{name}.w.safetensors"), strict=True)
        xs = load(f"{d}/{name}.x.safetensors")
        ins = [xs[f"in{i}"] for i in range(len(xs))]
        for t in ins:
            if t.is_floating_point():
                t.requires_grad_(True)
        outs = run(m, c["call"], ins)
        res = {}
        for i, o in enumerate(outs):
            res[f"out.{i}"] = o
        w = torch.sin(torch.arange(outs[0].numel(), dtype=torch.float64)).reshape(outs[0].shape).to(outs[0].dtype)
        (outs[0] * w).sum().backward()
        for i, t in enumerate(ins):
            if t.grad is not None:
                res[f"gin.{i}"] = t.grad
        for k, p in m.named_parameters():
            if p.grad is not None:
                res[f"gp.{k}"] = p.grad
        for k, v in m.state_dict().items():
            res[f"sd.{k}"] = v
        if c.get("pysd"):
            torch.manual_seed(0)
            m2 = eval(c["ctor"], env)
            m2.train(c["train"])
            for k, v in m2.state_dict().items():
                res[f"pysd.{k}"] = v
            with torch.no_grad():
                for i, o in enumerate(run(m2, c["call"], [t.detach() for t in ins])):
                    res[f"pyout.{i}"] = o
        save(f"{d}/{name}.out.safetensors", res)
    json.dump(keys, open(f"{d}/keys.json", "w"))


main()
