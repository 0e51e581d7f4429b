"""Checks Go models against their PyTorch twins (twins/*.py).

    twin_check.py JOBS.json THREADS

JOBS.json is a list of {"name", "twin": "module.Class", "width",
"in_channels", "classes", "dir", "train"}. Each dir holds state.safetensors (the Go
model's state dict, float64, its key order in the metadata "order") and
input.safetensors ("x"). For each job this builds
Class(in_channels=, classes=, width=) from twins/module.py in float64,
checks that its state-dict keys are Go's in the same order, loads Go's state
strictly, runs x through it in eval mode (or, with "train", in training
mode with every dropout probability set to 0), backpropagates
sum(out * sin(0..n-1)) and writes out.safetensors to dir: the output "y",
the input's gradient "grad_input" and every parameter's gradient
"grad.NAME". A job that fails writes its error to dir/error.txt; the others
still run.
"""
import importlib
import json
import os
import sys
import traceback

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "twins"))
from stio import read, write  # noqa: E402


def twin(spec):
    module, _, cls = spec.rpartition(".")
    if not module or not cls:
        raise ValueError(f"twin {spec!r} is not module.Class")
    return getattr(importlib.import_module(module), cls)


def check(job):
    d = job["dir"]
    m = twin(job["twin"])(in_channels=job["in_channels"], classes=job["classes"], width=job["width"]).double()
    state, meta = read(os.path.join(d, "state.safetensors"))
    go_order = json.loads(meta["order"])
    py_order = list(m.state_dict().keys())
    if go_order != py_order:
        diff = [(i, a, b) for i, (a, b) in enumerate(zip(go_order, py_order)) if a != b][:5]
        raise ValueError(f"state-dict order differs: {len(go_order)} Go keys vs {len(py_order)} PyTorch keys; first: {diff}")
    m.load_state_dict(state, strict=True)
    if job.get("train"):
        m.train()
        for mod in m.modules():  # batch statistics, but no randomness
            if isinstance(mod, torch.nn.modules.dropout._DropoutNd):
                mod.p = 0.0
            elif isinstance(mod, torch.nn.MultiheadAttention):
                mod.dropout = 0.0
    else:
        m.eval()
    x = read(os.path.join(d, "input.safetensors"))[0]["x"].clone().requires_grad_(True)
    y = m(x)
    w = torch.sin(torch.arange(y.numel(), dtype=y.dtype)).reshape(y.shape)
    (y * w).sum().backward()
    out = {"y": y, "grad_input": x.grad}
    for k, p in m.named_parameters():
        if p.grad is None:
            raise ValueError(f"{k} has no gradient in PyTorch")
        out["grad." + k] = p.grad
    write(os.path.join(d, "out.safetensors"), out)


def main():
    torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    for job in json.load(open(sys.argv[1])):
        try:
            check(job)
        except Exception:  # reported per job, so the Go test names the model
            with open(os.path.join(job["dir"], "error.txt"), "w") as f:
                f.write(traceback.format_exc())


main()
