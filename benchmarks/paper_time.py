"""Train the paper profile's models for a few epochs and extrapolate the profile's training time.

    python benchmarks/paper_time.py --epochs 3 --workers 16 [--device cuda] [--cache DIR]
                                    [--time-limit S]

Runs ``scripts/train_models.py --profile paper -p epochs E -p device D`` (every model of the
paper profile, ``--workers`` concurrent single-thread workers sharing the device) into a
fresh model cache, then prints per model: the wall seconds its worker spent on it (from the
script's ``trained in`` lines), its first epoch's loop seconds (which hold the step's
compilation when the step is compiled) and its later epochs' loop seconds (the checkpoint's
history), and an extrapolation to the profile's 50 epochs:

    model_50 = wall_E + (50 - E) * (wall_E - loop_1) / (E - 1)

(the per-epoch cost estimated from epochs 2..E, evaluation and setup included, so a slight
over-estimate), and for the whole profile ``sum(model_50) / parallelism``, where the
parallelism is the one achieved in this run (sum of per-model walls / the run's wall). Models
not finished within ``--time-limit`` are reported as such and left out of the sums.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAPER_EPOCHS = 50
LINE = re.compile(r"\[worker (\d+)\] (.+?)\s+trained in\s+([\d.]+) s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=3, help="epochs per model (>= 2; default 3)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--cache", default=None, help="model cache (default: a fresh $OUT/paper-cache "
                                                  "or ./paper-time-cache)")
    ap.add_argument("--time-limit", type=float, default=240.0,
                    help="seconds after which the training is stopped (default 240)")
    a = ap.parse_args(argv)
    if a.epochs < 2:
        ap.error("--epochs must be >= 2 (the first epoch holds the compilation)")
    cache = Path(a.cache or Path(os.environ.get("OUT", ".")) / "paper-cache").resolve()
    cache.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TVAE_CACHE=str(cache), TVAE_THREADS="1", OMP_NUM_THREADS="1",
               TVAE_PROGRESS="0", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, str(ROOT / "scripts" / "train_models.py"), "--profile", "paper",
           "--workers", str(a.workers), "--threads", "1",
           "-p", "epochs", str(a.epochs), "-p", "device", a.device]
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1, start_new_session=True)
    walls: dict[str, float] = {}

    def stop() -> None:
        print(f"time limit {a.time_limit:.0f} s reached: stopping the workers", flush=True)
        os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(a.time_limit, stop)
    timer.start()
    try:
        for line in proc.stdout:
            print(line, end="", flush=True)
            m = LINE.search(line)
            if m:
                walls[m.group(2).strip()] = float(m.group(3))
    finally:
        timer.cancel()
        proc.wait()
    total_wall = time.perf_counter() - t0
    return report(a, cache, walls, total_wall)


def report(a, cache: Path, walls: dict[str, float], total_wall: float) -> int:
    from tvae.book.registry import label, needed_models
    from tvae.book.store import data_for
    from tvae.cache import entry_path
    from tvae.io import read_checkpoint
    from tvae.profiles import resolve

    P = resolve("paper", epochs=a.epochs)
    configs = needed_models(P)
    print(f"\n{'model':<46}{'wall s':>8}{'loop 1':>8}{'loop 2..E':>10}{'x50 s':>9}  steps")
    est, done_wall = [], 0.0
    for cfg in configs:
        name = label(cfg)
        path = entry_path(cfg, data_for(P, cfg).identity, cache)
        if name not in walls or not path.exists():
            print(f"{name:<46}{'not finished':>16}")
            continue
        state = read_checkpoint(path)
        loops = [r["seconds"] for r in state["history"]]
        wall = walls[name]
        x50 = wall + (PAPER_EPOCHS - a.epochs) * (wall - loops[0]) / (a.epochs - 1)
        est.append(x50)
        done_wall += wall
        later = sum(loops[1:]) / max(1, len(loops) - 1)
        print(f"{name:<46}{wall:8.1f}{loops[0]:8.1f}{later:10.2f}{x50:9.1f}  "
              f"{'/'.join(sorted(set(state.get('step_modes', ['?']))))}")
    parallel = done_wall / total_wall if total_wall > 0 else 1.0
    print(f"\n{len(est)} of {len(configs)} models finished in {total_wall:.0f} s of wall time with "
          f"{a.workers} workers (achieved parallelism {parallel:.1f})")
    if est:
        full = sum(est) / max(parallel, 1e-9)
        scale = len(configs) / len(est)
        print(f"extrapolated paper profile ({PAPER_EPOCHS} epochs): {full:.0f} s for the finished "
              f"models, about {full * scale:.0f} s ({full * scale / 60:.1f} min) for all "
              f"{len(configs)}")
    return 0 if len(est) == len(configs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
