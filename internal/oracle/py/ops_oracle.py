"""PyTorch oracle of oracle.Check (internal/oracle) for the Go parity tests.

Reads a JSON list of cases from argv[1], evaluates each case's Python
expression with torch on the same inputs, and writes outputs and input
gradients to argv[2]. The upstream gradient of the first output is
sin(arange(1, numel+1)) in its shape, as on the Go side.
"""
import json
import math
import sys

import torch
import torch.nn.functional as F

DTYPES = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64,
          "int32": torch.int32, "uint8": torch.uint8, "bool": torch.bool}


def as_list(t):
    if t.dtype == torch.bool:
        t = t.to(torch.int64)
    return t.detach().reshape(-1).to(torch.float64).tolist()


def main():
    torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    cases = json.load(open(sys.argv[1]))
    out = []
    for c in cases:
        env = {"torch": torch, "F": F, "math": math}
        ins = []
        for i, spec in enumerate(c["inputs"]):
            t = torch.tensor(spec["data"], dtype=torch.float64).reshape(spec["shape"]).to(DTYPES[spec["dtype"]])
            if spec.get("grad"):
                t.requires_grad_(True)
            ins.append(t)
            env["abcdefgh"[i]] = t
        try:
            exec(c.get("setup", ""), env)
            res = eval(c["py"], env)
        except Exception as e:  # reported so the Go test can say which case failed
            out.append({"name": c["name"], "error": repr(e)})
            continue
        outs = list(res) if isinstance(res, (tuple, list)) else [res]
        rec = {"name": c["name"], "outputs": [{"shape": list(o.shape), "data": as_list(o)} for o in outs]}
        first = outs[0]
        if any(t.requires_grad for t in ins) and first.requires_grad:
            w = torch.sin(torch.arange(1, first.numel() + 1, dtype=torch.float64)).reshape(first.shape).to(first.dtype)
            (first * w).sum().backward()
            rec["grads"] = [as_list(t.grad) if t.grad is not None else None for t in ins]
        out.append(rec)
    json.dump(out, open(sys.argv[2], "w"))


main()
