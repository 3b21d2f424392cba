"""Where torch runs: the device, and how many CPU threads each process may use.

The thread policy, in one place. Torch's own default (one thread per core) is right for one
process alone on a machine and many times too slow when several processes share the cores
(benchmarks/README.md): so parallel jobs split the cores, :func:`threads_per_job`
(``cores // jobs``, at least 1), and pass the result down as ``$TVAE_THREADS``, which
:func:`configure_threads` applies in every process that trains (``make -j`` through
``scripts/run_chapter.py``, ``scripts/train_models.py``'s workers). A command typed by a user
(:func:`choose_threads`) also counts the cores other programs keep busy.
"""

from __future__ import annotations

import os

import torch

from .errors import ConfigError, DeviceError

THREADS_ENV = "TVAE_THREADS"
"""The environment variable carrying a process's torch thread count."""


# ------------------------------------------------------------------------- devices ----
def select_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` or ``'auto'``: CUDA if present, else MPS, else the CPU. An explicit device that
    is not available raises :class:`DeviceError`."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise DeviceError(f"unknown device {device!r}; use cpu, cuda, cuda:N, mps or auto") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} requested but CUDA is not available on this machine; "
                          "use --device cpu (or auto)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"device {device!r} requested but only {torch.cuda.device_count()} "
                          "CUDA device(s) exist; use cuda:0 or auto")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) is not None
                                  and torch.backends.mps.is_available()):
        raise DeviceError(f"device {device!r} requested but MPS is not available; use --device cpu")
    return dev


# ------------------------------------------------------------------------- threads ----
def cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_per_job(jobs: int, ncores: int | None = None) -> int:
    """Torch threads for each of ``jobs`` processes sharing ``ncores`` cores (default
    :func:`cores`): ``ncores // jobs``, at least 1, so that jobs x threads never exceeds the
    cores."""
    return max(1, (cores() if ncores is None else ncores) // max(1, jobs))


def configure_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count to ``n``, else ``$TVAE_THREADS``; with neither, leave
    torch's own choice (one thread per physical core) or the caller's ``set_num_threads``.
    Returns the thread count in force."""
    if n is None:
        env = os.environ.get(THREADS_ENV)
        if not env:
            return torch.get_num_threads()
        if not env.strip().isdigit():
            raise ConfigError(f"{THREADS_ENV} must be a positive integer, got {env!r}; "
                              f"unset it or set e.g. {THREADS_ENV}=1")
        n = int(env)
    n = max(1, int(n))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def choose_threads(requested: int | None = None) -> int:
    """Set and return torch's thread count for a command typed by a user: ``requested``
    (``--threads``), else ``$TVAE_THREADS``, else the cores not already busy by the 1-minute
    load average (``cores - round(load)``, clamped to ``1..cores``): with every core busy, a
    second torch thread makes an epoch 10-20 x slower (benchmarks/README.md)."""
    if requested is not None:
        if requested < 1:
            raise ConfigError(f"--threads must be >= 1, got {requested}")
        return configure_threads(requested)
    if os.environ.get(THREADS_ENV):
        return configure_threads()
    n = cores()
    try:
        busy = round(os.getloadavg()[0])
    except OSError:  # not available on this platform
        busy = 0
    return configure_threads(max(1, min(n, n - busy)))


__all__ = ["THREADS_ENV", "select_device", "cores", "threads_per_job", "configure_threads",
           "choose_threads"]
