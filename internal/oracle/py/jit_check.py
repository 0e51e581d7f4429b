"""Runs modules that `jmedseg export` wrote, with PyTorch alone (no jmedseg).

    jit_check.py JOBS.json THREADS

JOBS.json is a list of {"name", "dir", "twin": "module.Class" or "",
"in_channels", "classes", "width"}. Each dir holds model.pt (the TorchScript
module), state.safetensors (the bare state dict, as `export --format
safetensors` writes it) and input.safetensors ("x": raw pixel values
[N, C, H, W] float32; "x_norm": the same images normalised by Go's
training pipeline). For each job this loads model.pt with torch.jit.load
and writes to dir:

  out.safetensors  "y": the module's logits for x; "y_twin": those of the
                   PyTorch twin (twins/module.py) with state.safetensors
                   loaded strictly, in eval mode, for x_norm (when the job
                   names a twin)
  result.json      the module's attributes, its state-dict keys in order,
                   whether each key's tensor equals state.safetensors'
                   bit for bit, whether any submodule is in training mode,
                   the error a wrong-size input raises, and whether the
                   logits change when the weights do (the graph reads the
                   weights as attributes rather than baked constants)

A job that fails writes its error to dir/error.txt; the others still run.

On PyTorch 2.x the modules run with the graph executor's optimisations off
(torch.jit.optimized_execution(False)): 2.6's profiling executor does not
finish optimising some traced graphs (multires: minutes on the second call,
whose first takes 0.1 s), which 1.13 optimises at once. result.json says
which way it ran.
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

OPTIMIZE = int(torch.__version__.split(".")[0]) < 2

ATTRS = ["model", "class_names", "in_channels", "num_classes", "input_size", "pixel_scale", "norm_mean", "norm_std",
         "jmedseg_info"]


def twin(spec):
    module, _, cls = spec.rpartition(".")
    return getattr(importlib.import_module(module), cls)


def check(job):
    d = job["dir"]
    m = torch.jit.load(os.path.join(d, "model.pt"))
    inputs = read(os.path.join(d, "input.safetensors"))[0]
    state = read(os.path.join(d, "state.safetensors"))[0]
    x = inputs["x"]
    res = {"attrs": {a: getattr(m, a) for a in ATTRS}}
    sd = m.state_dict()
    res["keys"] = list(sd.keys())
    res["equal"] = {k: bool(k in state and v.dtype == state[k].dtype and torch.equal(v, state[k])) for k, v in sd.items()}
    res["training"] = [n for n, mod in m.named_modules() if mod.training]
    res["optimized"] = OPTIMIZE
    with torch.no_grad(), torch.jit.optimized_execution(OPTIMIZE):
        y = m(x)
        try:
            m(x[:, :, 1:, :])
            res["bad_input_error"] = ""
        except Exception as e:  # torch.jit.Error: the module's own message
            res["bad_input_error"] = str(e)
        out = {"y": y}
        if job.get("twin"):
            t = twin(job["twin"])(in_channels=job["in_channels"], classes=job["classes"], width=job["width"])
            t.load_state_dict(state, strict=True)
            t.eval()
            out["y_twin"] = t(inputs["x_norm"])
        for p in m.parameters():
            p.mul_(0.5)
        res["reads_weights"] = bool((m(x) - y).abs().max() > 0)
    write(os.path.join(d, "out.safetensors"), out)
    with open(os.path.join(d, "result.json"), "w") as f:
        json.dump(res, f)


def main():
    torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    for job in json.load(open(sys.argv[1])):
        try:
            check(job)
        except Exception:  # reported per job, so the Go test names the model
            with open(os.path.join(job["dir"], "error.txt"), "w") as f:
                f.write(traceback.format_exc())


main()
