"""Train every model a profile's chapters use, with several worker processes, into the cache.

    python scripts/train_models.py --profile paper [--workers 2] [--threads 1] [-p NAME VALUE ...]

The chapters get their models from the file-locked model cache (``tvae.cache``), so running
them in parallel is already safe; but a chapter that asks for a model another chapter is
training waits for it. This script trains the profile's models (:func:`tvae.book.registry.
needed_models`, in the book's order) up front instead: each worker walks the same list and
trains the first entry that is neither complete nor locked by another worker
(:func:`tvae.cache.train_unless_busy`), so N workers keep N cores busy until the list is done.
Entries already in the cache are skipped, so a second run costs seconds.

``--workers`` defaults to the ``-j`` level of an enclosing ``make -jN``, else one per core, and
each worker gets ``TVAE_THREADS = cores // workers`` torch threads (at least 1,
:func:`tvae.runtime.threads_per_job`) unless
``TVAE_THREADS`` is set: by default, one single-threaded worker per core, which on a small
machine beats one multi-threaded process (benchmarks/README.md). ``-p`` passes the same
overrides the chapters take (``epochs``, ``seed``, ``device``, ``data_dir``). One line is
printed per model; exit status 1 if any worker failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from tvae.book import registry, store
from tvae.cache import train_unless_busy
from tvae.profiles import resolve
from tvae.runtime import THREADS_ENV, configure_threads, cores, threads_per_job

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_chapter import make_jobs, parse_value  # noqa: E402

POLL_SECONDS = 10.0
"""How long a worker sleeps when every entry it still needs is being trained by another."""


def work(profile: str, params: dict, worker: int) -> int:
    """One worker: train every missing, unlocked model of the profile; wait for the rest."""
    configure_threads()
    P = resolve(profile, **params)
    pending = registry.needed_models(P)
    total = len(pending)
    t_all = time.perf_counter()
    while pending:
        busy = []
        for cfg in pending:
            t0 = time.perf_counter()
            state = train_unless_busy(cfg, store.data_for(P, cfg), device=P.device, progress=False)
            if state == "busy":
                busy.append(cfg)
            elif state == "trained":
                took = time.perf_counter() - t0
                print(f"[worker {worker}] {registry.label(cfg):<46} trained in {took:7.1f} s "
                      f"(worker total {time.perf_counter() - t_all:.0f} s, {total} models in the profile)",
                      flush=True)
        if busy and len(busy) == len(pending):
            time.sleep(POLL_SECONDS)
        pending = busy
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", required=True)
    ap.add_argument("--workers", type=int, default=None,
                    help="worker processes (default: make's -j level, else one per core)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads per worker (default: $TVAE_THREADS, else cores // workers)")
    ap.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    params = {k: parse_value(v) for k, v in a.param}
    if a.worker is not None:
        return work(a.profile, params, a.worker)

    n_models = len(registry.needed_models(resolve(a.profile, **params)))  # also validates the parameters
    workers = a.workers or make_jobs(os.environ.get("MAKEFLAGS", "")) or cores()
    if workers < 1:
        ap.error(f"--workers must be >= 1, got {workers}")
    env = dict(os.environ)
    if a.threads is not None:
        env[THREADS_ENV] = str(max(1, a.threads))
    elif not env.get(THREADS_ENV):
        env[THREADS_ENV] = str(threads_per_job(workers, cores()))
    env.setdefault("TVAE_PROGRESS", "0")
    print(f"[{a.profile}] training {n_models} models: {workers} worker(s), "
          f"{THREADS_ENV}={env[THREADS_ENV]}", flush=True)
    t0 = time.perf_counter()
    cmd = [sys.executable, __file__, "--profile", a.profile]
    for k, v in a.param:
        cmd += ["-p", k, v]
    procs = [subprocess.Popen(cmd + ["--worker", str(i)], env=env) for i in range(workers)]
    codes = [p.wait() for p in procs]
    print(f"[{a.profile}] models ready in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0 if all(c == 0 for c in codes) else 1


if __name__ == "__main__":
    sys.exit(main())
