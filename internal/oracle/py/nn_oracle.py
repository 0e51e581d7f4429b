"""PyTorch oracle for the torch/nn parity tests.

argv: cases.json, a directory, a thread count. For each case the Go test has
written <dir>/<name>.w.safetensors (its module's state dict, written by Go)
and <dir>/<name>.x.safetensors (inputs in0, in1, ...). This script builds the
same module in PyTorch, loads Go's weights strictly, runs the call, back-
propagates sin(arange(1, numel+1)) through the first output and writes
<dir>/<name>.out.safetensors with the outputs (out.K), input gradients
(gin.K), parameter gradients (gp.NAME) and the state dict after the call
(sd.NAME). With "pysd" it also writes a state dict of a freshly initialised
PyTorch module (pysd.NAME) and that module's outputs (pyout.K), for the
Python-to-Go direction. The safetensors files are read and written by
stio.py. keys.json gets each module's state_dict() keys in order.
"""
import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from stio import read, write


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
        m.load_state_dict(read(f"{d}/{name}.w.safetensors")[0], strict=True)
        xs = read(f"{d}/{name}.x.safetensors")[0]
        ins = [xs[f"in{i}"] for i in range(len(xs))]
        for t in ins:
            if t.is_floating_point():
                t.requires_grad_(True)
        outs = run(m, c["call"], ins)
        res = {}
        for i, o in enumerate(outs):
            res[f"out.{i}"] = o
        w = torch.sin(torch.arange(1, outs[0].numel() + 1, dtype=torch.float64)).reshape(outs[0].shape).to(outs[0].dtype)
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
        write(f"{d}/{name}.out.safetensors", res)
    json.dump(keys, open(f"{d}/keys.json", "w"))


main()
