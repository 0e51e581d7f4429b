"""PyTorch twin of `jmedseg bench`: times one model's training step or
inference the way bench.Run (bench/bench.go) does, on the PyTorch twin of the
Go model (internal/oracle/py/twins/, the models' parity twins), and prints
the same JSON keys.

    /usr/bin/python3 bench/bench.py --model unet --twin unet.UNet --batch 4 \
        --size 128 --width 64 --steps 10 --warmup 3 --mode train --threads 1 --json

--twin is the model's Spec.Twin ("module.Class" under the twins directory);
benchcmp passes it for every registered model.

Train step: forward, cross-entropy (mean), backward, Adam (lr 1e-4) step,
zero_grad(set_to_none=True), loss.item(). Inference: eval mode,
torch.inference_mode() forward, sum().item(). Inputs: randn N×3×S×S images and
randint(0, classes) N×S×S labels, made once. Warm-up steps first (untimed),
then the median of the timed steps. Peak memory is the process's VmHWM (peak
resident set size), so run one configuration per process.

The tricks, as jmedseg bench's flags of the same names: --freeze (inference:
torch.jit.freeze of the traced model, which folds BatchNorms into
convolutions, PyTorch's counterpart of --fuse), --ofi (inference:
torch.jit.optimize_for_inference(torch.jit.freeze(trace)), PyTorch's
counterpart of jmedseg's --engine jit; built before the warm-up, its time
reported as engine_build_seconds), --channels-last (model and
input in torch.channels_last), --amp bf16|fp16 (torch.autocast around the
forward and loss; fp16 training with torch.cuda.amp.GradScaler), --foreach
(Adam(foreach=True)) and --cuda-graphs (torch.cuda.graph capture of the
inference forward, or of forward and backward with the optimizer step
eager, as jmedseg does).
"""
import argparse
import json
import os
import resource
import sys
import time

import torch

# The twins live with the parity oracles; no bytecode caches in the tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "internal", "oracle", "py", "twins"))
import importlib  # noqa: E402


def twin_class(twin):
    """The class a "module.Class" twin name gives."""
    mod, _, cls = twin.partition(".")
    if not mod or not cls:
        sys.exit(f"bench.py: --twin {twin!r}: want module.Class")
    try:
        return getattr(importlib.import_module(mod), cls)
    except (ImportError, AttributeError) as e:
        sys.exit(f"bench.py: --twin {twin}: {e}")


def peak_rss():
    """VmHWM in bytes, else ru_maxrss (KiB on Linux) × 1024."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def run(a):
    cls = twin_class(a.twin)
    width = a.width
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    m = cls(in_channels=3, classes=a.classes, width=width).to(dev)
    params = sum(p.numel() for p in m.parameters())  # before freezing folds them away
    x = torch.randn(a.batch, 3, a.size, a.size, device=dev)
    y = torch.randint(0, a.classes, (a.batch, a.size, a.size), device=dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    if a.channels_last:
        m = m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    amp = {"": None, "bf16": torch.bfloat16, "fp16": torch.float16}[a.amp]
    if amp is torch.float16 and dev.type != "cuda":
        sys.exit("bench.py: --amp fp16 needs CUDA")

    def autocast():
        return torch.autocast(dev.type, dtype=amp, enabled=amp is not None)

    if a.mode == "train":
        opt = torch.optim.Adam(m.parameters(), lr=1e-4, foreach=True if a.foreach else None)
        scaler = torch.cuda.amp.GradScaler(enabled=amp is torch.float16)
        m.train()

        def loss_of():
            with autocast():
                return torch.nn.functional.cross_entropy(m(x), y)

        def step():
            loss = loss_of()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
            loss.item()  # synchronises, as a training loop reading its loss does

        if a.cuda_graphs:
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for _ in range(max(a.warmup, 1)):
                    scaler.scale(loss_of()).backward()
                    opt.zero_grad(set_to_none=True)
            torch.cuda.current_stream().wait_stream(s)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                static_loss = loss_of()
                scaler.scale(static_loss).backward()

            def step():  # noqa: F811
                g.replay()
                scaler.step(opt)
                scaler.update()
                static_loss.item()
    else:
        m.eval()
        build = 0.0
        if a.ofi:
            t0 = time.perf_counter()
            with torch.no_grad():
                m = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(m, x, check_trace=False)))
            with torch.inference_mode():
                m(x).sum().item()
            build = time.perf_counter() - t0
        elif a.freeze:
            # Traced in float32 (autocast's weight cache would fail the
            # trace check); the frozen graph then runs under autocast too.
            with torch.no_grad():
                m = torch.jit.freeze(torch.jit.trace(m, x, check_trace=False))

        def step():
            with torch.inference_mode(), autocast():
                m(x).sum().item()

        if a.cuda_graphs:
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s), torch.inference_mode(), autocast():
                for _ in range(max(a.warmup, 1)):
                    m(x)
            torch.cuda.current_stream().wait_stream(s)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g), torch.inference_mode(), autocast():
                static_out = m(x)

            def step():  # noqa: F811
                g.replay()
                static_out.sum().item()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    med = median(times)
    profile = []
    if a.profile:
        # One more step, untimed, under the profiler: jmedseg bench --profile.
        with torch.autograd.profiler.profile(use_cpu=True) as prof:
            step()
            sync()
        prof.export_chrome_trace(a.profile)
        profile = [{"name": e.key, "calls": e.count, "total_seconds": e.cpu_time_total / 1e6,
                    "self_seconds": e.self_cpu_time_total / 1e6} for e in prof.key_averages()]
        profile.sort(key=lambda o: (-o["self_seconds"], o["name"]))
    return {
        "model": a.model, "mode": a.mode, "params": params,
        "batch": a.batch, "size": a.size, "width": width, "threads": torch.get_num_threads(),
        "device": a.device, "steps": a.steps, "step_seconds_median": med, "step_seconds_min": min(times),
        "step_seconds_mean": sum(times) / len(times), "images_per_second": a.batch / med,
        "peak_rss_bytes": peak_rss(), "step_seconds": times, "libtorch": torch.__version__,
        "side": "pytorch", "amp": a.amp, "channels_last": a.channels_last, "frozen": a.freeze,
        "foreach": a.foreach, "cuda_graphs": a.cuda_graphs,
        **({"engine": "ofi", "engine_build_seconds": build} if a.mode == "infer" and a.ofi else {}),
        **({"profile": profile} if a.profile else {}),
    }


def write_profile(ops, n):
    """jmedseg's bench.WriteProfile table: the first n operators by self time."""
    total = sum(o["self_seconds"] for o in ops)
    print(f"{'self ms':>10} {'total ms':>10} {'self%':>6} {'calls':>8}  operator")
    for o in ops[:n]:
        share = 100 * o["self_seconds"] / total if total > 0 else 0
        print(f"{o['self_seconds'] * 1e3:10.3f} {o['total_seconds'] * 1e3:10.3f} {share:6.1f} {o['calls']:8d}  {o['name']}")
    if len(ops) > n:
        rest = sum(o["self_seconds"] for o in ops[n:])
        print(f"{rest * 1e3:10.3f} {'':>10} {'':>6} {'':>8}  ({len(ops) - n} more operators)")
    print(f"{total * 1e3:10.3f} {'':>10} {'':>6} {'':>8}  all operators' self time")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="unet", help="the Go model's name (reported only)")
    p.add_argument("--twin", required=True, help="the twin as module.Class, e.g. unet.UNet")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--width", type=int, required=True, help="base width")
    p.add_argument("--classes", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--mode", default="train", choices=["train", "infer"])
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (0: libtorch's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    p.add_argument("--freeze", action="store_true", help="inference: torch.jit.freeze(torch.jit.trace(model))")
    p.add_argument("--ofi", action="store_true",
                   help="inference: torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model)))")
    p.add_argument("--channels-last", action="store_true", help="model and input in torch.channels_last")
    p.add_argument("--amp", default="", choices=["", "bf16", "fp16"], help="torch.autocast dtype")
    p.add_argument("--foreach", action="store_true", help="train: Adam(foreach=True)")
    p.add_argument("--cuda-graphs", action="store_true", help="CUDA: capture the step with torch.cuda.graph")
    p.add_argument("--profile", default="", metavar="FILE",
                   help="one more step under torch.autograd.profiler: its Chrome trace to FILE, the operators printed")
    p.add_argument("--profile-top", type=int, default=25, help="operators the --profile table shows")
    p.add_argument("--force", action="store_true", help="overwrite an existing --profile file")
    a = p.parse_args()
    if a.profile and os.path.exists(a.profile) and not a.force:
        sys.exit(f"bench.py: --profile {a.profile}: the file exists (--force overwrites it)")
    if a.cuda_graphs and a.device == "cpu":
        sys.exit("bench.py: --cuda-graphs needs --device cuda")
    if (a.freeze or a.ofi) and a.mode != "infer":
        sys.exit("bench.py: --freeze and --ofi are for --mode infer")
    if a.ofi and (a.amp or a.cuda_graphs):
        sys.exit("bench.py: --ofi runs the float32 trace, without --amp or --cuda-graphs")
    if a.batch <= 0 or a.size <= 0 or a.steps <= 0:
        sys.exit("bench.py: batch, size and steps must be positive")
    if a.warmup == 0:
        a.warmup = 3  # as bench.Run
    r = run(a)
    if a.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"{r['model']} {r['mode']}: {r['params']} params, batch {r['batch']}, {r['size']}x{r['size']}, "
              f"{r['threads']} threads on {r['device']}: median {r['step_seconds_median']:.4f} s/step "
              f"({r['images_per_second']:.1f} img/s), peak RSS {r['peak_rss_bytes'] / 2**20:.0f} MiB")
        if a.profile:
            print(f"one more step under torch.autograd.profiler (Chrome trace: {a.profile}):")
            write_profile(r["profile"], a.profile_top)


if __name__ == "__main__":
    main()
