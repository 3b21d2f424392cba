"""The Ray engine (issue 13): smoke-profile models trained as Ray tasks on a local Ray of 2 CPUs.

What is checked, each against an independent computation:

* weights bit-identical to local training (the same :func:`tvae.train.train` in this process,
  through :func:`tvae.cache.train_unless_busy`), for trained models and for the whole smoke
  profile through ``scripts/train_models.py --engine ray`` connected to a running cluster;
* a worker killed mid-task: Ray runs the task again, which resumes from the scratch checkpoint
  and still gives the local weights; with no retries left the model is reported failed;
* real errors (a batch larger than the data, a non-finite loss) run once, fail in one line
  naming the model, and the other models go on; the cache holds complete entries only;
* bad input: an unknown engine, Ray missing (the default engine still works), an unreachable
  ``RAY_ADDRESS`` (one line within 30 s, nothing written), a task no node can hold.

The Ray started here is shut down at the end of the module (the fixture's finaliser).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import ray
import torch

from tvae.book import registry, store
from tvae.cache import entry_path, train_unless_busy
from tvae.engines import ATTEMPTS_ENV, SCRATCH_DIR, train_on_ray
from tvae.errors import EngineError
from tvae.profiles import resolve

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "train_models.py"
BLOCK_RAY = """\
import sys
class _NoRay:
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, _NoRay())
"""
"""A ``sitecustomize.py`` that makes ``import ray`` fail in every Python process started with
it on ``PYTHONPATH`` (as if Ray were not installed)."""


# ------------------------------------------------------------------------ helpers ----
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray of 2 CPUs, no dashboard, for the module; yields the attempts folder (the
    workers inherit ``TVAE_TEST_RAY_ATTEMPTS``, set before they start)."""
    attempts = tmp_path_factory.mktemp("attempts")
    os.environ[ATTEMPTS_ENV] = str(attempts)
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        yield attempts
    finally:
        ray.shutdown()
        os.environ.pop(ATTEMPTS_ENV, None)


@pytest.fixture(scope="module")
def smoke(mnist_root):
    """The smoke profile on the real MNIST, 2 epochs (so that training, not only initialisation,
    is compared)."""
    return resolve("smoke", epochs=2, data_dir=str(mnist_root))


def attempts(folder: Path, cfg) -> int:
    """How many times a task of ``cfg`` started (the test hook's lines)."""
    f = folder / cfg.key()
    return len(f.read_text().splitlines()) if f.exists() else 0


def scratch(P, cfg) -> Path:
    """The task's scratch checkpoint on this node (``tvae.engines._train_task``)."""
    return entry_path(cfg, store.data_for(P, cfg).identity,
                      Path(tempfile.gettempdir()) / f"{SCRATCH_DIR}-{os.getuid()}")


def local_entry(P, cfg, root: Path) -> Path:
    """``cfg`` trained by the local engine's primitive, in this process; its entry."""
    data = store.data_for(P, cfg)
    assert train_unless_busy(cfg, data, root=root, device="cpu", progress=False) == "trained"
    return entry_path(cfg, data.identity, root)


def assert_same_weights(a: Path, b: Path) -> None:
    sa, sb = (torch.load(p, map_location="cpu", weights_only=False) for p in (a, b))
    assert sa["complete"] and sb["complete"]
    assert sa["model"].keys() == sb["model"].keys()
    for k in sa["model"]:
        assert torch.equal(sa["model"][k], sb["model"][k]), f"{a.name}: {k} differs"
    drop = lambda h: [{k: v for k, v in row.items() if k != "seconds"} for row in h]  # noqa: E731
    assert drop(sa["history"]) == drop(sb["history"])


def cache_files(root: Path) -> list[str]:
    """Every file in a cache folder but the entries' lock files."""
    return sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock")) if root.exists() else []


def kill_task_when(label: str, ready, timeout: float = 120.0) -> int:
    """SIGKILL the worker process running the task named ``tvae <label>`` once ``ready()``;
    its pid. Ray names a running task's process ``ray::<task name>``."""
    title = f"ray::tvae {label}".encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            for proc in Path("/proc").iterdir():
                try:
                    if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(title):
                        os.kill(int(proc.name), signal.SIGKILL)
                        return int(proc.name)
                except (FileNotFoundError, ProcessLookupError, PermissionError):
                    continue
        time.sleep(0.02)
    raise AssertionError(f"no running task {label!r} found to kill")


def run_script(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    full = dict(os.environ)
    full.update(PYTHONPATH=str(REPO), TVAE_THREADS="1", OMP_NUM_THREADS="1", TVAE_PROGRESS="0")
    for k in ("RAY_ADDRESS", ATTEMPTS_ENV, "TVAE_TEST_NAN_AT", "MAKEFLAGS"):
        full.pop(k, None)
    full.update(env)
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=full, capture_output=True, text=True,
                          timeout=timeout)


def error_line(r: subprocess.CompletedProcess) -> str:
    """The one line a bad input prints on stderr (``tvae: error: ...``), checked to be alone."""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("tvae: error: "), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0].removeprefix("tvae: error: ")


# -------------------------------------------------------------------------- tests ----
def test_models_trained_on_ray_equal_local_training(cluster, smoke, tmp_path):
    cfgs = [smoke.config(k, 20) for k in ("affine-tvae", "tps-dtvae")]
    lines: list[str] = []
    out = train_on_ray(smoke, cfgs, root=tmp_path / "ray", progress=False, log=lines.append)
    assert [o.state for o in out] == ["trained"] * 2, lines
    assert [attempts(cluster, c) for c in cfgs] == [1, 1]
    for c in cfgs:
        entry = entry_path(c, store.data_for(smoke, c).identity, tmp_path / "ray")
        assert_same_weights(entry, local_entry(smoke, c, tmp_path / "local"))
        assert not scratch(smoke, c).exists()
    assert cache_files(tmp_path / "ray") == cache_files(tmp_path / "local")  # same names, no temp files
    assert sum(ln.startswith(registry.label(c) + " ") and "trained in" in ln
               for c in cfgs for ln in lines) == 2

    lines.clear()  # a second run: everything cached, no task started
    out = train_on_ray(smoke, cfgs, root=tmp_path / "ray", progress=False, log=lines.append)
    assert [o.state for o in out] == ["cached"] * 2
    assert [attempts(cluster, c) for c in cfgs] == [1, 1]
    assert lines == ["[smoke] all 2 models are in the cache; nothing to train"]


def test_killed_worker_is_retried_and_resumes_to_the_same_weights(cluster, smoke, tmp_path):
    cfg = smoke.config("tps-tvae", 2, epochs=8)
    scratch(smoke, cfg).unlink(missing_ok=True)
    out: list = []
    run = threading.Thread(target=lambda: out.extend(
        train_on_ray(smoke, [cfg], root=tmp_path / "ray", progress=False, log=lambda s: None)))
    run.start()
    pid = kill_task_when(registry.label(cfg), scratch(smoke, cfg).exists)  # after its first epoch
    run.join(120)
    assert not run.is_alive()
    (o,) = out
    assert o.state == "trained", o.error
    assert 1 <= o.resumed_from < 8          # the retry went on from the killed run's checkpoint
    lines = (cluster / cfg.key()).read_text().split()
    assert len(lines) == 2 and lines[0] == str(pid) and lines[1] != str(pid)
    assert_same_weights(entry_path(cfg, store.data_for(smoke, cfg).identity, tmp_path / "ray"),
                         local_entry(smoke, cfg, tmp_path / "local"))
    assert not scratch(smoke, cfg).exists()
    assert cache_files(tmp_path / "ray") == cache_files(tmp_path / "local")


def test_failures_are_reported_once_and_the_other_models_go_on(cluster, smoke, tmp_path):
    lost = smoke.config("vae", 2, epochs=8, seed=5)       # its worker is killed, no retries left
    big_batch = smoke.config("vae", 2, batch_size=1000, seed=2)  # ConfigError: 600 training digits
    nan = smoke.config("vae", 2, lr=1e12, seed=3)                # TrainingError: non-finite loss
    good = smoke.config("vae", 2, seed=7)
    scratch(smoke, lost).unlink(missing_ok=True)
    out: list = []
    lines: list[str] = []
    run = threading.Thread(target=lambda: out.extend(train_on_ray(
        smoke, [lost, big_batch, nan, good], root=tmp_path, max_retries=0, progress=False,
        log=lines.append)))
    run.start()
    kill_task_when(registry.label(lost), scratch(smoke, lost).exists)
    run.join(120)
    assert not run.is_alive()
    by = {o.config.key(): o for o in out}
    states = [by[c.key()].state for c in (lost, big_batch, nan, good)]
    assert states == ["failed", "failed", "failed", "trained"]
    assert "worker died 1 time(s)" in by[lost.key()].error
    assert "batch size" in by[big_batch.key()].error and "600" in by[big_batch.key()].error
    assert by[nan.key()].error.startswith("non-finite loss")
    assert [attempts(cluster, c) for c in (lost, big_batch, nan, good)] == [1, 1, 1, 1]
    for c in (lost, big_batch, nan):
        (line,) = [ln for ln in lines if ln.startswith(f"FAILED {registry.label(c)}: ")]
        assert "\n" not in line
    good_entry = entry_path(good, store.data_for(smoke, good).identity, tmp_path)
    assert cache_files(tmp_path) == [good_entry.name]   # nothing half-written for the failures
    assert not any(scratch(smoke, c).exists() for c in (big_batch, nan, good))


def test_a_task_no_node_can_hold_is_refused_naming_the_resource(cluster, smoke, tmp_path):
    cfg = smoke.config("vae", 2, seed=11)
    with pytest.raises(EngineError, match=r"asks for 4 CPUs \(--threads 4\) but the largest node .* has 2"):
        train_on_ray(smoke, [cfg], root=tmp_path, cpus=4, progress=False, log=lambda s: None)
    with pytest.raises(EngineError, match=r"asks for 1 GPU but no node of the connected Ray cluster has one"):
        train_on_ray(smoke, [cfg], root=tmp_path, gpus=1, progress=False, log=lambda s: None)
    assert list(tmp_path.iterdir()) == [] and attempts(cluster, cfg) == 0


def test_store_checkpoint_takes_only_the_complete_checkpoint_of_its_entry(smoke, tmp_path):
    """The driver's side, without Ray: a complete checkpoint of the config and data is stored
    (then 'cached'); one of another epoch count, data or format, or incomplete, is refused and
    nothing is written."""
    from tvae.cache import store_checkpoint
    from tvae.errors import CheckpointError

    cfg = smoke.config("vae", 2, seed=13)
    src = local_entry(smoke, cfg, tmp_path / "local")
    state = torch.load(src, weights_only=False)
    identity = store.data_for(smoke, cfg).identity
    for change in ({"epoch": 1}, {"complete": False}, {"data_identity": "0" * 16}, {"format_version": 99}):
        with pytest.raises(CheckpointError, match=f"does not match its cache entry .*{next(iter(change))}"):
            store_checkpoint(cfg, identity, {**state, **change}, tmp_path / "store")
        assert cache_files(tmp_path / "store") == []
    with pytest.raises(CheckpointError, match="config differ"):
        store_checkpoint(cfg.replace(seed=14), identity, state, tmp_path / "store")
    assert store_checkpoint(cfg, identity, state, tmp_path / "store") == "stored"
    assert store_checkpoint(cfg, identity, state, tmp_path / "store") == "cached"
    assert cache_files(tmp_path / "store") == [src.name]
    assert_same_weights(tmp_path / "store" / src.name, src)


def test_unknown_engine_is_one_line():
    r = run_script(["--profile", "smoke", "--engine", "spark"], {})
    assert r.returncode == 2
    assert error_line(r) == "unknown engine 'spark'; use one of local, ray (e.g. make models ENGINE=ray)"


def test_unreachable_ray_address_fails_fast_and_writes_nothing(tmp_path, mnist_root):
    with socket.socket() as s:        # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    r = run_script(["--profile", "smoke", "--engine", "ray"],
                   {"RAY_ADDRESS": f"127.0.0.1:{port}", "TVAE_CACHE": str(tmp_path / "cache"),
                    "TVAE_DATA": str(mnist_root)})
    assert time.monotonic() - t0 < 30
    assert r.returncode == 2
    assert error_line(r).startswith(f"cannot reach the Ray cluster at 127.0.0.1:{port} (Connection refused)")
    assert list(tmp_path.iterdir()) == []


def test_smoke_profile_through_a_ray_cluster_and_the_default_engine_without_ray(cluster, tmp_path,
                                                                               mnist_root):
    """``scripts/train_models.py``: ``--engine ray`` connected to the running cluster through
    ``RAY_ADDRESS`` (as on a real cluster) trains the whole smoke profile (0 epochs:
    initialisation and mean pose); then, in processes where Ray cannot be imported, ``--engine
    ray`` says how to install it and the default engine fills a copy of that cache from which
    three entries were removed, bit-identically."""
    n = len(registry.needed_models(resolve("smoke")))
    address = ray.get_runtime_context().gcs_address
    r = run_script(["--profile", "smoke", "-p", "epochs", "0", "--engine", "ray"],
                   {"RAY_ADDRESS": address, "TVAE_CACHE": str(tmp_path / "ray"),
                    "TVAE_DATA": str(mnist_root)})
    assert r.returncode == 0, r.stderr
    assert f"[smoke] ray: {n} trained, 0 cached, 0 failed" in r.stdout
    names = cache_files(tmp_path / "ray")
    assert len(names) == n and all(name.endswith(".pt") for name in names)

    block = tmp_path / "noray"
    block.mkdir()
    (block / "sitecustomize.py").write_text(BLOCK_RAY)
    no_ray = {"PYTHONPATH": f"{block}{os.pathsep}{REPO}", "TVAE_DATA": str(mnist_root),
              "TVAE_CACHE": str(tmp_path / "local")}
    r = run_script(["--profile", "smoke", "--engine", "ray"], no_ray)
    assert r.returncode == 2
    assert error_line(r).startswith("the ray engine needs Ray, which is not installed here; install it "
                                    "with `.venv/bin/pip install ray==2.60.0`")
    assert not (tmp_path / "local").exists()
    rot = [x for x in names if torch.load(tmp_path / "ray" / x, weights_only=False)["config"]["dataset"]
           == "rot-mnist"]
    removed = sorted({names[0], names[1], rot[0]})
    assert len(removed) == 3
    (tmp_path / "local").mkdir()
    for name in set(names) - set(removed):
        (tmp_path / "local" / name).write_bytes((tmp_path / "ray" / name).read_bytes())
    r = run_script(["--profile", "smoke", "-p", "epochs", "0", "--workers", "1"], no_ray)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(" trained in ") == 3
    assert cache_files(tmp_path / "local") == names
    for name in removed:
        assert_same_weights(tmp_path / "ray" / name, tmp_path / "local" / name)
