"""Time one training epoch of each tvae model against a bare VAE loop written inline.

    .venv/bin/python benchmarks/bench_epoch.py [--train-size N] [--repeats R] [--threads T]
                                               [--zdim Z] [--models M ...] [--profile MODEL]
                                               [--compile] [--device D]

What is timed
-------------
* **package**: ``tvae.train.train(config, data, progress=False)`` with ``epochs=1``. ``train``
  records in ``history[0]['seconds']`` the wall time of its training loop only (permutation,
  batch slicing, forward, ``loss.item()``, backward, Adadelta step); that is the *train*
  column. The per-epoch evaluation that ``train`` then runs (ELBO terms on the training subset
  and on the 10,000 test digits, plus the mean pose of pose models) is reported separately as
  *eval* = wall time of the ``train`` call minus *train* (it also holds model construction,
  a few milliseconds).
* **bare**: a VAE of the same size written inline below (784-256-256-z encoder with mu and
  log-sigma heads, z-256-256-784 decoder, the same initialisation family), the same maths
  (sigmoid, clipping to [1e-6, 1-1e-6], Bernoulli log-likelihood on grey targets, analytic KL,
  log-sigma floor), ``torch.optim.Adadelta(lr 1, rho 0.95, eps 1e-6)``, batch 100 sliced from
  one permutation of the same data tensor, one ``loss.item()`` per batch. Only its training
  loop is timed.
* **<model>+c** (``--compile``): the package with the compiled step (``train(...,
  compile=True)``: forward+loss through ``torch.compile``, the fused Adadelta); its warm-up
  run pays the compilation, reported as *compile s* (warm-up wall time minus a timed run's).
* **bce**: the per-epoch posterior-mean test BCE on the 10,000 test digits
  (``tvae.train.posterior_mean_bce``, part of *eval*), timed on its own right after each
  run (median), and given as a percentage of a 60,000-digit epoch of the same model (the
  loop's median x 60,000 / ``--train-size``).
* **bare-logits**: the same loop with ``binary_cross_entropy_with_logits`` (no clipping), the
  fastest way to write it; for information only.

All variants run in the same process on the same float32 tensor, interleaved repeat by repeat
(the order rotates each repeat), after one untimed warm-up of each; medians are reported.
Ratios: package VAE / bare (target <= 0.80), TPS-TVAE / package VAE (<= 1.3), Affine-DTVAE /
package VAE (<= 1.6), each for the package's default step and, with ``--compile``, for the
compiled one. The 1-minute load average is printed with each repeat: the machine is shared,
and a busy machine inflates everything. ``--device cuda`` runs everything on the GPU (the
data resident there; timings synchronise the device).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tvae.config import MODELS, Config  # noqa: E402
from tvae.data import load_dataset  # noqa: E402
from tvae.train import posterior_mean_bce, train  # noqa: E402

TARGETS = {("vae", "bare"): 0.80, ("tps-tvae", "vae"): 1.3, ("affine-dtvae", "vae"): 1.6}
"""Issue 11's targets: (model, reference) -> the largest allowed ratio of train-loop times."""

EPS = 1e-6


class BareVAE(nn.Module):
    """The reference: a plain MLP VAE, nothing shared with the package."""

    def __init__(self, zdim: int, hidden: int = 256):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, zdim)
        self.ls = nn.Linear(hidden, zdim)
        self.dec = nn.Sequential(nn.Linear(zdim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 784))

    def loss(self, x: torch.Tensor, logits_bce: bool) -> torch.Tensor:
        h = self.enc(x)
        mu, ls = self.mu(h), torch.relu(self.ls(h) + 6.0) - 6.0
        z = mu + ls.exp() * torch.randn_like(mu)
        out = self.dec(z)
        if logits_bce:
            bce = F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(-1)
        else:
            p = torch.sigmoid(out).clamp(EPS, 1 - EPS)
            bce = -(x * p.log() + (1 - x) * torch.log1p(-p)).sum(-1)
        kl = 0.5 * (mu.pow(2) + (2 * ls).exp() - 1 - 2 * ls).sum(-1)
        return (bce + kl).mean()


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def bare_epoch(x: torch.Tensor, zdim: int, seed: int, logits_bce: bool, batch: int = 100) -> float:
    """Seconds of one epoch of the bare loop on ``x`` ``(N, 784)`` (model built outside the timer)."""
    torch.manual_seed(seed)
    model = BareVAE(zdim).to(x.device)
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-6)
    gen = torch.Generator().manual_seed(seed)
    sync(x.device)
    t0 = time.perf_counter()
    perm = torch.randperm(len(x), generator=gen).to(x.device)
    running = 0.0
    for i in range(0, len(x), batch):
        loss = model.loss(x[perm[i:i + batch]], logits_bce)
        running += loss.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(x.device)
    seconds = time.perf_counter() - t0
    assert running == running, "bare loop produced NaN"
    return seconds


def package_epoch(config: Config, data, compile: bool | None = None, key: str = "") -> tuple[float, float]:
    """``(train-loop seconds, evaluation seconds)`` of ``tvae.train.train`` for one epoch."""
    dev = data.x_train.device
    sync(dev)
    t0 = time.perf_counter()
    res = train(config, data, progress=False, device=dev, compile=compile)
    sync(dev)
    wall = time.perf_counter() - t0
    loop = res.history[0]["seconds"]
    if compile and res.step_modes != ["compiled"]:
        raise SystemExit(f"{key}: the step did not run compiled ({res.step_modes}); see the log")
    BCE.setdefault(key, []).append(bce_seconds(res.model, data.x_test, repeats=1))
    return loop, wall - loop


BCE: dict[str, list[float]] = {}
"""Per package variant: the seconds of the per-epoch posterior-mean test BCE, timed right
after each of its runs (so under the same load as the run)."""


def bce_seconds(model, x_test: torch.Tensor, repeats: int = 3) -> float:
    """Best of ``repeats`` timings of the per-epoch posterior-mean test BCE."""
    best = float("inf")
    for _ in range(repeats):
        sync(x_test.device)
        t0 = time.perf_counter()
        posterior_mean_bce(model, x_test)
        sync(x_test.device)
        best = min(best, time.perf_counter() - t0)
    return best


def load1() -> float:
    return os.getloadavg()[0]


def profile_model(config: Config, data, rows: int = 25) -> None:
    """Print torch.profiler's top operators (by self CPU time) for one package epoch."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train(config, data, progress=False)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def set_threads(n: int) -> None:
    """Torch intra-op threads for the next variant (``train`` reads ``$TVAE_THREADS``)."""
    os.environ["TVAE_THREADS"] = str(n)
    torch.set_num_threads(n)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-size", type=int, default=10_000, help="training digits per epoch (default 10000)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats of every variant (default 5)")
    p.add_argument("--threads", type=int, nargs="+", default=[1],
                   help="torch intra-op thread counts; several (e.g. 1 2) are interleaved (default 1)")
    p.add_argument("--zdim", type=int, default=20, help="dim z of every model (default 20)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS, help="models to time")
    p.add_argument("--no-logits", action="store_true", help="skip the bare-logits variant")
    p.add_argument("--profile", choices=MODELS, help="also profile one package epoch of this model")
    p.add_argument("--data-dir", default=None, help="data root (default $TVAE_DATA, else ./data)")
    p.add_argument("--compile", action="store_true",
                   help="also time every model with the compiled step (<model>+c)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    a = p.parse_args(argv)

    set_threads(a.threads[0])
    dev = torch.device(a.device)
    data = load_dataset("mnist", a.data_dir, train_size=a.train_size, seed=0, device=dev)
    x = data.x_train
    models = list(dict.fromkeys(["vae", *a.models]))
    configs = {m: Config(model=m, zdim=a.zdim, epochs=1, train_size=a.train_size) for m in models}

    base: dict[str, object] = {"bare": lambda: (bare_epoch(x, a.zdim, 0, False), 0.0)}
    if not a.no_logits:
        base["bare-logits"] = lambda: (bare_epoch(x, a.zdim, 0, True), 0.0)
    for m, c in configs.items():
        base[m] = (lambda c=c, m=m: package_epoch(c, data, None, m))
        if a.compile:
            base[m + "+c"] = (lambda c=c, m=m: package_epoch(c, data, True, m + "+c"))
    package = {n for n in base if not n.startswith("bare")}
    variants = {(n, t): fn for t in a.threads for n, fn in base.items()}

    def label(key: tuple[str, int]) -> str:
        return key[0] if len(a.threads) == 1 else f"{key[0]}@{key[1]}t"

    print(f"# {datetime.datetime.now().isoformat(timespec='minutes')}  {platform.node()}  device {dev}  "
          f"{platform.processor() or platform.machine()}  cores {os.cpu_count()}  torch {torch.__version__}  "
          f"threads {a.threads}  train-size {a.train_size}  zdim {a.zdim}  repeats {a.repeats}  "
          f"load1 at start {load1():.2f}")
    warm: dict = {}
    for k, fn in variants.items():  # warm-up (allocator, TPS basis cache, lazy imports, compile)
        set_threads(k[1])
        t0 = time.perf_counter()
        fn()
        warm[k] = time.perf_counter() - t0
    keys = list(variants)
    times: dict = {k: [] for k in keys}
    evals: dict = {k: [] for k in keys}
    loads: list[float] = []
    for r in range(a.repeats):
        order = keys[r % len(keys):] + keys[:r % len(keys)]
        for k in order:
            set_threads(k[1])
            t, e = variants[k]()
            times[k].append(t)
            evals[k].append(e)
        loads.append(load1())
        print(f"repeat {r + 1}: load1 {loads[-1]:.2f}  "
              + "  ".join(f"{label(k)} {times[k][-1]:.2f}s" for k in keys), flush=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    med_eval = {k: statistics.median(v) for k, v in evals.items()}
    print(f"\nmedian over {a.repeats} repeats, seconds per epoch of {a.train_size} digits "
          f"(load1 median {statistics.median(loads):.2f}, min {min(loads):.2f}, max {max(loads):.2f})")
    print(f"{'variant':<18}{'train s':>9}{'eval s':>9}{'ms/batch':>10}{'x bare':>8}{'x vae':>8}"
          f"{'compile s':>11}{'bce s':>8}{'bce %':>7}")
    nb = -(-a.train_size // 100)
    for k in keys:
        n, t = k
        ref = ("vae+c" if n.endswith("+c") else "vae", t)
        ratio_vae = f"{med[k] / med[ref]:8.2f}" if n in package else f"{'':>8}"
        ev = f"{med_eval[k]:9.2f}" if n in package else f"{'':>9}"
        comp = (f"{warm[k] - med[k] - med_eval[k]:11.1f}" if n.endswith("+c") else f"{'':>11}")
        bce = ""
        if n in package:   # its median over the runs, against a 60,000-digit epoch
            sec = statistics.median(BCE[n])
            bce = f"{sec:8.2f}{100 * sec / (med[k] * 60_000 / a.train_size):6.1f}%"
        print(f"{label(k):<18}{med[k]:9.2f}{ev}{1000 * med[k] / nb:10.1f}{med[k] / med[('bare', t)]:8.2f}"
              f"{ratio_vae}{comp}{bce}")
    for t in a.threads:
        tag = f" ({t} thread{'s' if t > 1 else ''})"
        for suffix in ("", "+c") if a.compile else ("",):
            for (m, refm), target in TARGETS.items():
                km, kr = (m + suffix, t), ((refm + suffix) if refm != "bare" else "bare", t)
                if km in med and kr in med:
                    r = med[km] / med[kr]
                    print(f"target {km[0]} <= {target} x {kr[0]}{tag}: {r:.3f} "
                          f"{'met' if r <= target else 'MISSED'}")
        if a.compile:
            print("compiled / default step: " + ", ".join(
                f"{m} {med[(m + '+c', t)] / med[(m, t)]:.2f}x" for m in configs) + tag)
    if len(a.threads) > 1:
        t0 = a.threads[0]
        for t in a.threads[1:]:
            print("speed-up of " + ", ".join(f"{n} {med[(n, t0)] / med[(n, t)]:.2f}x" for n in base)
                  + f" with {t} threads over {t0}")
    if a.profile:
        set_threads(a.threads[0])
        print(f"\nprofile of one package epoch of {a.profile} ({a.threads[0]} thread(s)):")
        profile_model(configs.get(a.profile) or Config(model=a.profile, zdim=a.zdim, epochs=1), data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
