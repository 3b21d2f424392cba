"""Train every model a profile's chapters use, with several worker processes, into the cache.

    python scripts/train_models.py --profile paper [--workers 2] [--threads 1] [-p NAME VALUE ...]
    python scripts/train_models.py --profile paper --engine ray [--address HOST:PORT] [--gpus 1]
    python scripts/train_models.py --profile paper --status [--workers 2]

The chapters get their models from the file-locked model cache (``tvae.cache``), so running
them in parallel is already safe; but a chapter that asks for a model another chapter is
training waits for it. This script trains the profile's models (:func:`tvae.book.registry.
needed_models`, in the book's order) up front instead: each worker walks the same list and
trains the first entry that is neither complete nor locked by another worker
(:func:`tvae.cache.train_unless_busy`), so N workers keep N cores busy until the list is done.
Entries already in the cache are skipped, so a second run costs seconds, and a run stopped
part-way (a session's end, Ctrl-C, kill -9) resumes where it was: completed models are kept and
a model in training restarts from its last saved epoch. ``--status`` trains nothing: it prints,
from the cache, how many models and epochs of each seed are done and an estimate of the time left
(:func:`tvae.book.training.cache_status`).

``--workers`` defaults to the ``-j`` level of an enclosing ``make -jN``, else one per core, and
each worker gets ``TVAE_THREADS = cores // workers`` torch threads (at least 1,
:func:`tvae.runtime.threads_per_job`) unless
``TVAE_THREADS`` is set: by default, one single-threaded worker per core, which on a small
machine beats one multi-threaded process (benchmarks/README.md). ``-p`` passes the same
overrides the chapters take (``epochs``, ``seed``, ``device``, ``data_dir``). One line is
printed per model; exit status 1 if any worker failed.

``--engine ray`` trains the same models as Ray tasks instead (:mod:`tvae.engines`): on the
cluster named by ``--address`` / ``$RAY_ADDRESS``, else on a local Ray of ``--workers`` CPUs
started for the run. ``--threads`` is then the CPUs (and torch threads) of each task, default 1;
``--gpus`` the GPUs of each task, default 1 when the cluster has GPUs. Exit status 1 if any
model failed (each is named, with the reason, in one line); bad input (an unknown engine, Ray
not installed, an unreachable cluster, a task no node can hold) is one line on stderr, exit 2.
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
    ap.add_argument("--engine", default="local",
                    help="local (worker processes sharing the cache) or ray (tasks on a Ray cluster)")
    ap.add_argument("--address", default=None,
                    help="ray engine: the cluster's HOST:PORT (default $RAY_ADDRESS, else a local Ray)")
    ap.add_argument("--gpus", type=float, default=None,
                    help="ray engine: GPUs per task (default 1 when the cluster has GPUs, else 0)")
    ap.add_argument("--status", action="store_true",
                    help="train nothing: print what the cache holds of the profile and the time left")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    params = {k: parse_value(v) for k, v in a.param}
    if a.worker is not None:
        return work(a.profile, params, a.worker)
    if a.status:
        from tvae.book.training import cache_status, status_lines

        P = resolve(a.profile, **params)
        workers = a.workers or make_jobs(os.environ.get("MAKEFLAGS", "")) or cores()
        print(f"[{a.profile}] model cache {os.environ.get('TVAE_CACHE') or 'cache'}:")
        for line in status_lines(cache_status(P), workers):
            print("  " + line)
        return 0
    from tvae.errors import TVAEError

    try:
        from tvae.engines import check_engine

        if check_engine(a.engine) == "ray":
            return ray_engine(a, params)
    except TVAEError as e:
        print(f"tvae: error: {e}", file=sys.stderr)
        return e.exit_code

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


def ray_engine(a: argparse.Namespace, params: dict) -> int:
    """``--engine ray``: the profile's missing models as Ray tasks; 1 if any failed."""
    from tvae.engines import train_on_ray
    from tvae.profiles import resolve

    P = resolve(a.profile, **params)
    t0 = time.perf_counter()
    outcomes = train_on_ray(P, address=a.address, cpus=max(1, a.threads or 1), gpus=a.gpus,
                            num_cpus=a.workers or make_jobs(os.environ.get("MAKEFLAGS", "")) or None)
    failed = [o for o in outcomes if o.state == "failed"]
    trained = sum(o.state == "trained" for o in outcomes)
    print(f"[{a.profile}] ray: {trained} trained, {len(outcomes) - trained - len(failed)} cached, "
          f"{len(failed)} failed, in {time.perf_counter() - t0:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
