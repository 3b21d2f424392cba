"""Where one training step's time goes: ``torch.profiler`` over package training steps.

    .venv/bin/python benchmarks/step_profile.py [--models vae tps-tvae ...] [--steps 100] [--compile]

Runs ``--steps`` steps of :func:`tvae.train.train_epoch`'s body (batch 100, dim z 20, the
default config) per model after a warm-up, and prints the self CPU time per step of each
group of operators: matrix products, the Adadelta update (the flat buffer), the gradient sum
(non-finite check), the warp (sampling grid and bilinear sampler, forward and backward),
the loss's elementwise work, noise and the rest (autograd bookkeeping, slicing, dispatch).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tvae.config import MODELS, Config  # noqa: E402
from tvae.train import start_run  # noqa: E402

GROUPS = {
    "matrix products": ("addmm", "aten::mm", "aten::bmm", "matmul", "linear"),
    "warp (grid + sampler)": ("grid_sampler", "affine_grid", "linalg", "cdist", "_linalg_solve"),
    "noise": ("normal_", "randn"),
}


def group_of(name: str, scope: str) -> str:
    if scope:
        return scope
    for g, keys in GROUPS.items():
        if any(k in name for k in keys):
            return g
    return "elementwise, autograd, rest"


def step(run, x: torch.Tensor, i: int) -> None:
    """One training step of ``run`` on the ``i``-th batch of 100 of ``x`` (as train_epoch)."""
    xb = x[(i * 100) % len(x):(i * 100) % len(x) + 100]
    eps_z, eps_u = run.model.draw_noise(100, run.noise_gen)
    run.opt.flat.zero_grad()
    loss = run.step_loss(xb, eps_z, eps_u)
    loss.backward()
    with record_function("grad sum (non-finite check)"):
        run.opt.flat.grad_sum()
    with record_function("Adadelta update"):
        run.opt.step()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["vae", "tps-tvae", "affine-dtvae"], choices=MODELS)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--compile", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    x = torch.rand(5000, 784, generator=torch.Generator().manual_seed(0))
    for m in a.models:
        run = start_run(Config(model=m, zdim=20), torch.device("cpu"), a.compile)
        for i in range(20):
            step(run, x, i)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for i in range(a.steps):
                step(run, x, i)
        per: dict[str, float] = defaultdict(float)
        total = 0.0
        for ev in prof.events():
            scope = ""
            p = ev.cpu_parent
            while p is not None:
                if p.name in ("grad sum (non-finite check)", "Adadelta update"):
                    scope = p.name
                p = p.cpu_parent
            if ev.name in ("grad sum (non-finite check)", "Adadelta update"):
                continue
            per[group_of(ev.name, scope)] += ev.self_cpu_time_total
            total += ev.self_cpu_time_total
        print(f"\n{m}{' (compiled step)' if a.compile else ''}: {total / a.steps / 1000:.2f} ms of "
              "profiled CPU time per step")
        for g, t in sorted(per.items(), key=lambda kv: -kv[1]):
            print(f"  {g:<32}{t / a.steps / 1000:7.2f} ms  {100 * t / total:5.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
