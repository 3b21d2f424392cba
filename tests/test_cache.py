"""Tests of :mod:`tvae.cache`: concurrent requests train once, corrupt entries are reported and
retrained, interrupted entries are resumed, and a cached model is the trained model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import tvae.cache
from tvae import Config, TrainingError
from tvae.cache import entry_path, get_model, is_cached
from tvae.train import MODEL_VERSION, read_checkpoint, train

REPO = Path(__file__).resolve().parent.parent


def tiny(**kw) -> Config:
    base = dict(model="vae", zdim=3, hidden=(32, 32), train_size=300, epochs=2, batch_size=100,
                optimizer="adam", seed=0)
    base.update(kw)
    return Config(**base)


def digest(state: dict) -> str:
    import hashlib

    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.fixture
def count_training(monkeypatch) -> list:
    """Wrap the trainer the cache calls; returns the list of calls (one entry per training)."""
    calls: list = []
    real = tvae.cache.train

    def counting(config, *args, **kwargs):
        calls.append((config.key(), kwargs.get("resume")))
        return real(config, *args, **kwargs)

    monkeypatch.setattr(tvae.cache, "train", counting)
    return calls


# ------------------------------------------------------------------ concurrency ----
CHILD = r"""
import hashlib, json, os, sys, time
import tvae.cache
from tvae import Config
from tvae.cache import get_model

cfg = Config.from_dict(json.loads(sys.argv[1]))
data_dir, cache, marker, go = sys.argv[2:6]
real = tvae.cache.train
def counting(*args, **kwargs):
    # one line per training, appended atomically; then hold the lock a little longer so the
    # other process surely arrives while this one trains
    with open(marker, "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(1.0)
    return real(*args, **kwargs)
tvae.cache.train = counting
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.005)
t0 = time.time()
model, state = get_model(cfg, data_dir=data_dir, root=cache, progress=False)
t1 = time.time()
h = hashlib.sha256()
for k, v in sorted(model.state_dict().items()):
    h.update(k.encode()); h.update(v.contiguous().numpy().tobytes())
print(json.dumps({"pid": os.getpid(), "start": t0, "end": t1, "digest": h.hexdigest(),
                  "epoch": state["epoch"], "complete": state["complete"]}), flush=True)
"""


def test_two_processes_train_a_cache_entry_once(tmp_path, mnist_root):
    cfg = tiny()
    cache, marker, go = tmp_path / "cache", tmp_path / "trainings.txt", tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", TVAE_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(cfg.to_dict()), str(mnist_root),
                               str(cache), str(marker), str(go)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        go.touch()                                              # release both at once
        outs = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]

    trainings = marker.read_text().split()
    assert len(trainings) == 1, f"trained {len(trainings)} times"
    assert int(trainings[0]) in {r["pid"] for r in results}
    # they really overlapped: the second asked while the first was training
    first, second = sorted(results, key=lambda r: r["end"])
    assert second["start"] < first["end"]
    # both loaded the same complete model, which is the one in the cache
    assert results[0]["digest"] == results[1]["digest"]
    assert all(r["complete"] and r["epoch"] == cfg.epochs for r in results)
    from tvae.data import load_dataset

    data = load_dataset("mnist", mnist_root, train_size=300, seed=0)
    path = entry_path(cfg, data.identity, cache)
    assert is_cached(cfg, data.identity, cache)
    assert digest(read_checkpoint(path)["model"]) == results[0]["digest"]
    assert sorted(p.name for p in cache.iterdir()) == sorted([path.name, path.name + ".lock"])


# ----------------------------------------------------------------- corrupt entries ----
def test_cache_trains_once_then_loads(tmp_path, mnist300_short, count_training):
    cfg = tiny()
    model, state = get_model(cfg, mnist300_short, root=tmp_path, progress=False)
    assert len(count_training) == 1 and state["complete"] and state["epoch"] == 2
    model2, state2 = get_model(cfg, mnist300_short, root=tmp_path, progress=False)
    assert len(count_training) == 1
    assert digest(model.state_dict()) == digest(model2.state_dict())
    assert state2["history"] == state["history"]
    # another config or another seed is another entry
    get_model(cfg.replace(seed=1), mnist300_short, root=tmp_path, progress=False)
    assert len(count_training) == 2
    assert entry_path(cfg, mnist300_short.identity, tmp_path) != entry_path(
        cfg.replace(seed=1), mnist300_short.identity, tmp_path)


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "not-a-checkpoint"])
def test_corrupt_entry_warns_and_is_retrained(tmp_path, mnist300_short, count_training, damage):
    cfg = tiny()
    model, _ = get_model(cfg, mnist300_short, root=tmp_path, progress=False)
    good = digest(model.state_dict())
    path = entry_path(cfg, mnist300_short.identity, tmp_path)
    blob = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(os.urandom(4096))
    else:
        torch.save({"weights": torch.zeros(3)}, path)
    assert len(count_training) == 1
    with pytest.warns(UserWarning, match=r"model cache entry .* is unusable .*retraining"):
        model2, state2 = get_model(cfg, mnist300_short, root=tmp_path, progress=False)
    assert len(count_training) == 2 and count_training[-1][1] is False   # retrained from scratch
    assert state2["complete"]
    assert digest(model2.state_dict()) == good                         # training is deterministic
    assert read_checkpoint(path)["epoch"] == cfg.epochs


def test_interrupted_entry_is_resumed(tmp_path, mnist300_short, count_training):
    """An entry left incomplete (a killed or failed run) is resumed, not restarted, and ends
    equal to an uninterrupted training."""
    cfg = tiny(epochs=3)
    path = entry_path(cfg, mnist300_short.identity, tmp_path)
    with pytest.raises(TrainingError):
        train(cfg, mnist300_short, out=path, progress=False, nan_at=(2, 1))
    state = read_checkpoint(path)
    assert state["epoch"] == 1 and not state["complete"]
    assert not is_cached(cfg, mnist300_short.identity, tmp_path)
    model, state = get_model(cfg, mnist300_short, root=tmp_path, progress=False)
    assert count_training == [(cfg.key(), True)]
    assert state["complete"] and state["epoch"] == 3 and len(state["history"]) == 3
    ref = train(cfg, mnist300_short, progress=False)
    assert digest(model.state_dict()) == digest(ref.model.state_dict())


def test_cache_dir_from_environment(tmp_path, monkeypatch, mnist300_short):
    monkeypatch.setenv("TVAE_CACHE", str(tmp_path / "envcache"))
    path = entry_path(tiny(), mnist300_short.identity)
    assert path.parent == tmp_path / "envcache"
    assert path.name.startswith("vae-z3-")
    assert path.name.endswith(f"-{mnist300_short.identity}-m{MODEL_VERSION}.pt")


def test_train_unless_busy_skips_an_entry_another_process_holds(tmp_path, mnist300_short,
                                                                count_training):
    """The primitive of scripts/train_models.py: 'busy' (nothing trained) while another holder
    has the entry's lock, 'trained' once it is free, then 'cached'."""
    from filelock import FileLock

    from tvae.cache import train_unless_busy

    cfg = tiny()
    path = entry_path(cfg, mnist300_short.identity, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A lock held through another open file description blocks this process's FileLock too,
    # as a second process would (flock locks belong to the open file, not the process).
    held = FileLock(str(path) + ".lock")
    held.acquire()
    try:
        assert train_unless_busy(cfg, mnist300_short, root=tmp_path, progress=False) == "busy"
        assert count_training == [] and not path.exists()
    finally:
        held.release()
    assert train_unless_busy(cfg, mnist300_short, root=tmp_path, progress=False) == "trained"
    assert len(count_training) == 1 and is_cached(cfg, mnist300_short.identity, tmp_path)
    assert train_unless_busy(cfg, mnist300_short, root=tmp_path, progress=False) == "cached"
    assert len(count_training) == 1
    model, _ = get_model(cfg, mnist300_short, root=tmp_path, progress=False)
    assert digest(model.state_dict()) == digest(train(cfg, mnist300_short, progress=False).model.state_dict())


def test_train_models_status_trains_nothing(tmp_path):
    """`scripts/train_models.py --status` reads the cache only: on an empty cache it counts
    every model of the profile as not done, says it has no estimate, and writes nothing."""
    import subprocess
    import sys

    from tvae.book import registry

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, TVAE_CACHE=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, str(root / "scripts" / "train_models.py"), "--profile",
                          "smoke", "--status"], env=env, capture_output=True, text=True, check=True)
    needed = registry.needed_models("smoke")
    n0 = sum(c.seed == 0 for c in needed)
    assert f"seed 0: 0/{n0} models complete, 0/{sum(c.epochs for c in needed if c.seed == 0)} epochs" \
        in out.stdout
    assert "no estimate" in out.stdout and not (tmp_path / "cache").exists()
