"""Training engines: what trains a profile's models into the model cache before the chapters run.

- ``local`` (the default): worker processes on this machine that share the cache directory
  through its file locks (``scripts/train_models.py``). Needs nothing beyond the requirements.
- ``ray``: every model of the profile not yet in the cache is one Ray task, sent to the cluster
  named by ``$RAY_ADDRESS`` (or ``address=``), else to a local Ray started for the run and
  stopped after it (:func:`train_on_ray`).

Conventions of the Ray engine, stated once:

- *No shared file system.* The driver loads each dataset once, on the CPU, and puts it in
  Ray's object store; a task trains into a scratch file on its own node and returns the
  checkpoint's bytes; the driver writes them into its cache with
  :func:`tvae.cache.store_checkpoint` (the entry's lock, an atomic write, as local training).
- *Resources.* A task asks for ``cpus`` CPUs (default 1) and runs torch on as many threads; it
  asks for one GPU and trains on ``cuda`` when the cluster has GPUs (``gpus=`` overrides:
  ``0`` keeps every task on CPUs). A task no node can hold is refused before anything runs.
- *Faults.* A task whose worker dies (process killed, node lost) is run again, at most
  :data:`MAX_RETRIES` more times; on the same node it resumes from its scratch checkpoint's last
  epoch, which gives the same weights as an uninterrupted run. A task that raises (a bad
  config, a non-finite loss) is not retried: its model is reported failed in one line and the
  others go on. The cache only ever receives complete checkpoints.
- *Identity.* On the CPU a model gets bit-identical weights from either engine: the same
  :func:`tvae.train.train`, config, seed and data, on one torch thread per CPU of the task.

Ray is imported only by this module's functions, so tvae works without it installed.
"""

from __future__ import annotations

import io
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .config import Config
from .errors import EngineError, TVAEError

ENGINES = ("local", "ray")
"""Names accepted by ``scripts/train_models.py --engine`` and ``make models ENGINE=...``."""

RAY_REQUIREMENT = "ray==2.60.0"
"""The Ray release pinned in requirements.txt (the one the tests ran with)."""

MAX_RETRIES = 3
"""Runs of a task beyond the first when its worker dies (Ray's ``max_retries``): enough to ride
out a killed process or a lost node or two, few enough that a task which kills every worker it
lands on (say, out of memory) is given up within minutes. Errors that training raises are never
retried (``retry_exceptions=False``): the same config and seed would fail the same way."""

CONNECT_TIMEOUT_S = 10.0
"""How long the driver waits for a TCP connection to ``$RAY_ADDRESS`` before saying it is
unreachable (a closed port fails at once; a silent host after this)."""

INIT_TIMEOUT_S = 30.0
"""The whole connection to a named cluster (TCP check plus ``ray.init``) must finish within this;
``ray.init`` alone would retry for minutes against a port that answers but is not Ray's."""

SCRATCH_DIR = "tvae-ray"
"""Folder, under the node's temporary directory, of the tasks' scratch checkpoints (one per
model, deleted once returned; a killed task's file is resumed by its retry)."""

ATTEMPTS_ENV = "TVAE_TEST_RAY_ATTEMPTS"
"""Test hook: when set to a folder, each task run appends a line to ``<folder>/<config key>``
(so the tests count retries)."""


def check_engine(name: str) -> str:
    """``name`` if it is one of :data:`ENGINES`, else :class:`EngineError`."""
    if name not in ENGINES:
        raise EngineError(f"unknown engine {name!r}; use one of {', '.join(ENGINES)} "
                          "(e.g. make models ENGINE=ray)")
    return name


def import_ray():
    """The ``ray`` module, or :class:`EngineError` saying how to install it."""
    try:
        import ray
    except ImportError as e:
        raise EngineError(f"the ray engine needs Ray, which is not installed here; install it with "
                          f"`.venv/bin/pip install {RAY_REQUIREMENT}` (or use ENGINE=local)") from e
    return ray


# ------------------------------------------------------------------- the task (worker) ----
def _train_task(config: dict, data, device: str, threads: int) -> dict:
    """One model, on a Ray worker: train ``config`` on ``data`` into a scratch checkpoint on this
    node (resuming a killed attempt's file), return the checkpoint's bytes and its history."""
    from filelock import FileLock, Timeout

    from .cache import entry_path
    from .errors import CheckpointError
    from .train import configure_threads, read_checkpoint, train

    cfg = Config.from_dict(config)
    if os.environ.get(ATTEMPTS_ENV):
        with open(Path(os.environ[ATTEMPTS_ENV]) / cfg.key(), "a") as f:
            f.write(f"{os.getpid()}\n")
    os.environ["TVAE_THREADS"] = str(threads)  # train() reads it; workers are reused across tasks
    configure_threads(threads)
    path = entry_path(cfg, data.identity, Path(tempfile.gettempdir()) / f"{SCRATCH_DIR}-{os.getuid()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:  # another driver trains the same model on this node: keep to our own file
        lock, path = None, path.with_name(f"{path.stem}.{os.getpid()}.pt")
    try:
        resumed = 0
        if path.exists():
            try:
                resumed = int(read_checkpoint(path)["epoch"])
            except CheckpointError:
                path.unlink(missing_ok=True)
        t0 = time.perf_counter()
        try:
            result = train(cfg, data, out=path, resume=path.exists(), device=device, progress=False)
        except TVAEError:  # a real error: a rerun would fail the same way, keep no scratch file
            path.unlink(missing_ok=True)
            raise
        blob = path.read_bytes()
        path.unlink()
        return {"checkpoint": blob, "history": result.history, "seconds": time.perf_counter() - t0,
                "resumed_from": resumed, "node": socket.gethostname()}
    finally:
        if lock is not None:
            lock.release()


# ------------------------------------------------------------------ the driver ----
@dataclass
class Outcome:
    """What became of one model: ``state`` is ``'cached'`` (nothing to do), ``'trained'`` (stored
    in the cache now) or ``'failed'`` (``error`` says why, in one line)."""

    config: Config
    state: str
    seconds: float = 0.0
    resumed_from: int = 0
    node: str = ""
    error: str = ""


def ray_address(address: str | None = None) -> str | None:
    """The cluster to use: ``address``, else ``$RAY_ADDRESS``; ``None`` (or ``'local'``) means a
    local Ray started for the run."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    return None if address in (None, "local") else address.strip()


def check_reachable(address: str) -> None:
    """:class:`EngineError` unless a TCP connection to ``address`` (``HOST:PORT``,
    ``ray://HOST:PORT`` or ``auto``) opens within :data:`CONNECT_TIMEOUT_S`."""
    hostport = address
    if address == "auto":
        from ray._private.services import canonicalize_bootstrap_address_or_die

        try:
            hostport = canonicalize_bootstrap_address_or_die("auto")
        except ConnectionError as e:
            raise EngineError("RAY_ADDRESS=auto but no Ray cluster runs on this machine; start one "
                              "with `ray start --head` or unset RAY_ADDRESS for a local Ray") from e
    host, _, port = hostport.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise EngineError(f"RAY_ADDRESS {address!r} is not HOST:PORT; pass the head's address as "
                          "`ray start --head` printed it, e.g. RAY_ADDRESS=10.0.0.1:6379")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise EngineError(f"cannot reach the Ray cluster at {address} ({e.strerror or e or 'timed out'}); "
                          "start it with `ray start --head` there, or unset RAY_ADDRESS to train on "
                          "a local Ray") from e


def _connect(ray, address: str | None, num_cpus: int | None) -> bool:
    """Connect this process to Ray; True if it started a local Ray (to shut down afterwards).
    An existing connection (``ray.init`` by the caller) is used as it is."""
    if ray.is_initialized():
        return False
    if address is None:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                 logging_level="WARNING")
        return True
    t0 = time.monotonic()
    check_reachable(address)
    import tvae

    box: dict = {}

    def init() -> None:
        try:
            ray.init(address=address, logging_level="WARNING",
                     runtime_env={"py_modules": [str(Path(tvae.__file__).parent)]})
            box["ok"] = True
        except Exception as e:  # noqa: BLE001 - any failure to connect is reported as one line
            box["error"] = e

    thread = threading.Thread(target=init, name="ray-init", daemon=True)
    thread.start()
    thread.join(max(1.0, INIT_TIMEOUT_S - (time.monotonic() - t0)))
    if "error" in box:
        raise EngineError(f"cannot connect to the Ray cluster at {address} "
                          f"({_one_line(box['error'])}); check RAY_ADDRESS and that this machine has "
                          "the cluster's Ray version and token (~/.ray/auth_token)") from box["error"]
    if not box.get("ok"):
        raise EngineError(f"the Ray cluster at {address} did not answer within {INIT_TIMEOUT_S:.0f} s; "
                          "check that RAY_ADDRESS is the head's GCS address (port 6379 by default)")
    return False


def _one_line(e: BaseException) -> str:
    """An exception as one line: a tvae error's own message, else its type and first line."""
    if isinstance(e, TVAEError):
        return str(e)
    first = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def check_resources(ray, cpus: int, gpus: float, where: str) -> None:
    """:class:`EngineError` naming the missing resource unless some live node of the cluster has
    ``cpus`` CPUs and ``gpus`` GPUs (a task needing more would wait forever)."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if any(r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus for r in nodes):
        return
    most_cpu = max((r.get("CPU", 0) for r in nodes), default=0)
    most_gpu = max((r.get("GPU", 0) for r in nodes), default=0)
    if gpus > most_gpu:
        raise EngineError(f"each task asks for {gpus:g} GPU but no node of {where} has "
                          f"{'one' if most_gpu == 0 else f'{gpus:g} (at most {most_gpu:g})'}; "
                          "pass --gpus 0 to train on CPUs, or add GPU nodes")
    if cpus > most_cpu:
        raise EngineError(f"each task asks for {cpus} CPUs (--threads {cpus}) but the largest node "
                          f"of {where} has {most_cpu:g}; pass --threads {max(1, int(most_cpu))} or less")
    raise EngineError(f"no node of {where} has both {cpus} CPUs and {gpus:g} GPUs for a task; "
                      "lower --threads or --gpus")


def _device(profile_device: str | None, gpus: float) -> str:
    """The device a task trains on: ``cuda`` when it holds a GPU; else the profile's device,
    or the CPU for ``None``/``auto``/``cuda`` (a CPU task must not take a node's GPU)."""
    if gpus > 0:
        return "cuda"
    if profile_device in (None, "auto") or str(profile_device).startswith("cuda"):
        return "cpu"
    return str(profile_device)


def train_on_ray(profile, configs: Sequence[Config] | None = None, *, address: str | None = None,
                 root: str | Path | None = None, cpus: int = 1, gpus: float | None = None,
                 num_cpus: int | None = None, max_retries: int = MAX_RETRIES,
                 progress: bool | None = None, log: Callable[[str], None] | None = None
                 ) -> list[Outcome]:
    """Train ``configs`` (default: every model of ``profile``, :func:`tvae.book.registry.
    needed_models`) that are not in the cache ``root`` as Ray tasks; one :class:`Outcome` per
    config, in order.

    ``address``: the cluster (default ``$RAY_ADDRESS``; none: a local Ray of ``num_cpus`` CPUs,
    started and stopped here; a connection the caller opened with ``ray.init`` is used as is).
    ``cpus``: CPUs (and torch threads) per task. ``gpus``: GPUs per task (default: 1 when the
    cluster has GPUs, else 0). ``progress``: a bar counting models done (default: unless
    ``$TVAE_PROGRESS`` is ``0``). ``log``: where the one-line reports go (default ``print``).
    Bad input (no Ray, an unreachable cluster, a task no node can hold) raises
    :class:`EngineError` before anything is written.
    """
    from .book import registry, store
    from .cache import is_cached
    from .profiles import resolve

    ray = import_ray()
    if not isinstance(cpus, int) or isinstance(cpus, bool) or cpus < 1:
        raise EngineError(f"CPUs per task must be a positive integer, got {cpus!r}; pass --threads 1")
    if gpus is not None and not gpus >= 0:
        raise EngineError(f"GPUs per task must be >= 0, got {gpus!r}; pass --gpus 0 or 1")
    say = log or print
    address = ray_address(address)
    if address is not None and not ray.is_initialized():
        check_reachable(address)  # at once, before any data is loaded
    P = resolve(profile) if isinstance(profile, str) else profile
    configs = list(registry.needed_models(P) if configs is None else configs)
    P_cpu = replace(P, device="cpu")  # the driver ships CPU tensors; tasks move them
    datasets = {c.key(): store.data_for(P_cpu, c) for c in configs}
    outcomes = {c.key(): Outcome(c, "cached") for c in configs}
    pending = [c for c in configs if not is_cached(c, datasets[c.key()].identity, root)]
    if not pending:
        say(f"[{P.name}] all {len(configs)} models are in the cache; nothing to train")
        return list(outcomes.values())

    where = ("the connected Ray cluster" if ray.is_initialized() else
             f"the Ray cluster at {address}" if address else "the local Ray")
    started = _connect(ray, address, num_cpus)
    try:
        if gpus is None:
            gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        check_resources(ray, cpus, gpus, where)
        device = _device(P.device, gpus)
        running = _submit(ray, pending, datasets, device, cpus, gpus, max_retries)
        say(f"[{P.name}] {len(pending)} of {len(configs)} models to train on {where} "
            f"({cpus} CPU{'s' if cpus > 1 else ''}{f', {gpus:g} GPU' if gpus else ''} per task, "
            f"device {device}); {len(configs) - len(pending)} cached")
        _collect(ray, running, datasets, outcomes, root, max_retries, progress, log)
    finally:
        if started:
            ray.shutdown()
    return list(outcomes.values())


def _submit(ray, pending: Sequence[Config], datasets: dict, device: str, cpus: int, gpus: float,
            max_retries: int) -> dict:
    """Start one Ray task per config of ``pending`` (each dataset put in Ray's object store once,
    ``datasets`` by config key); returns ``{task ref: config}``."""
    from .book import registry

    refs: dict = {}
    for c in pending:
        d = datasets[c.key()]
        if d.identity not in refs:
            refs[d.identity] = ray.put(d)
    task = ray.remote(_train_task)
    return {
        task.options(num_cpus=cpus, num_gpus=gpus, max_retries=max_retries,
                     retry_exceptions=False, name=f"tvae {registry.label(c)}")
            .remote(c.to_dict(), refs[datasets[c.key()].identity], device, cpus): c
        for c in pending}


def _collect(ray, running: dict, datasets: dict, outcomes: dict, root, max_retries: int,
             progress: bool | None, log: Callable[[str], None] | None) -> None:
    """Wait for the tasks in ``running`` (ref -> config), store each checkpoint as it comes."""
    import torch
    from tqdm.auto import tqdm

    from .book import registry
    from .cache import store_checkpoint

    if progress is None:
        progress = os.environ.get("TVAE_PROGRESS", "1") != "0"
    bar = tqdm(total=len(running), desc="models", unit="model", disable=not progress)
    say = log or (tqdm.write if progress else print)
    try:
        while running:
            (ref,), _ = ray.wait(list(running), num_returns=1)
            cfg = running.pop(ref)
            out = outcomes[cfg.key()]
            try:
                r = ray.get(ref)
                state = torch.load(io.BytesIO(r["checkpoint"]), map_location="cpu", weights_only=False)
                store_checkpoint(cfg, datasets[cfg.key()].identity, state, root)
            except ray.exceptions.RayTaskError as e:  # the task raised: not retried
                cause = getattr(e, "cause", None) or e
                out.state, out.error = "failed", _one_line(cause)
            except ray.exceptions.WorkerCrashedError as e:
                out.state, out.error = "failed", (
                    f"its worker died {max_retries + 1} time(s) (killed, out of memory or node "
                    f"lost) and Ray gave up ({type(e).__name__})")
            except (ray.exceptions.RayError, TVAEError) as e:
                out.state, out.error = "failed", _one_line(e)
            else:
                out.state, out.seconds = "trained", r["seconds"]
                out.resumed_from, out.node = r["resumed_from"], r["node"]
            if out.state == "failed":
                say(f"FAILED {registry.label(cfg)}: {out.error}")
            else:
                again = (f", resumed at epoch {out.resumed_from} after a lost worker"
                         if out.resumed_from else "")
                say(f"{registry.label(cfg):<46} trained in {out.seconds:7.1f} s on {out.node}{again}")
            bar.update(1)
    finally:
        bar.close()
