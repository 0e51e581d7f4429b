"""PyTorch oracle for the torch/optim parity tests.

argv: in.json, out.json, threads. The input holds the initial parameters,
the loss coefficients and the cases; each case trains the parameters for a
number of steps with a torch.optim optimizer (param groups built from index
lists), optional gradient clipping and an optional scheduler, and reports
the final parameters and the learning rate of every group after each step.
"""
import json
import sys

import torch


def main():
    torch.set_num_threads(int(sys.argv[3]))
    spec = json.load(open(sys.argv[1]))
    out = {}
    for c in spec["cases"]:
        ps = [torch.tensor(p["data"], dtype=torch.float32).reshape(p["shape"]).requires_grad_(True) for p in spec["params"]]
        cs = [torch.tensor(p["data"], dtype=torch.float32).reshape(p["shape"]) for p in spec["coef"]]
        groups = []
        for g in c["groups"]:
            d = {"params": [ps[i] for i in g["idx"]]}
            d.update(g.get("extra", {}))
            groups.append(d)
        env = {"torch": torch, "groups": groups}
        opt = eval(c["opt"], env)
        env["opt"] = opt
        sched = eval(c["sched"], env) if c.get("sched") else None
        lrs = []
        for _ in range(spec["steps"]):
            opt.zero_grad()
            loss = sum((p.sin() * k).sum() + 0.1 * (p * p).sum() for p, k in zip(ps, cs))
            loss.backward()
            if c.get("clip_norm"):
                torch.nn.utils.clip_grad_norm_(ps, c["clip_norm"], c.get("norm_type", 2.0))
            if c.get("clip_value"):
                torch.nn.utils.clip_grad_value_(ps, c["clip_value"])
            opt.step()
            if sched is not None:
                sched.step()
            lrs.append([g["lr"] for g in opt.param_groups])
        out[c["name"]] = {"params": [p.detach().reshape(-1).double().tolist() for p in ps], "lrs": lrs}
    json.dump(out, open(sys.argv[2], "w"))


main()
