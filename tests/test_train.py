"""Tests of :mod:`tvae.train`: smoke training, checkpoints, exact resumption (in-process and
after a SIGKILL of a training subprocess), the NaN fault hook, refused checkpoints, bad batch
sizes and determinism. Everything runs on the CPU with one torch thread (see conftest)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tvae import CheckpointError, Config, ConfigError, TrainingError
from tvae.data import load_dataset
from tvae.evaluate import codes
from tvae.train import FORMAT_VERSION, load_model, mean_pose, read_checkpoint, save_checkpoint, train

REPO = Path(__file__).resolve().parent.parent
TERMS = ("bce", "kl_z", "kl_u", "elbo")


def small(model: str = "affine-tvae", **kw) -> Config:
    """A small but real config: the paper's structure with narrow layers."""
    base = dict(model=model, zdim=4, hidden=(64, 64), loc_hidden=(32,), train_size=300, epochs=2,
                batch_size=50, optimizer="adam", seed=0)
    base.update(kw)
    return Config(**base)


def without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"tensor {k} differs"


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------------- smoke ----
def test_smoke_training_writes_a_complete_checkpoint(tmp_path, mnist_root):
    """Two epochs on 300 real digits through the public path (data loaded from the config)."""
    cfg = small("tps-tvae", epochs=2, batch_size=100)
    out = tmp_path / "run" / "model.pt"
    seen = []
    res = train(cfg, data_dir=mnist_root, out=out, progress=False,
                on_epoch=lambda e, row: seen.append((e, dict(row))))
    assert res.path == out and res.config == cfg
    assert [e for e, _ in seen] == [1, 2]
    assert len(res.history) == 2
    for i, row in enumerate(res.history, start=1):
        assert row["epoch"] == i and row["seconds"] > 0
        for split in ("train", "test"):
            vals = [row[f"{split}_{t}"] for t in TERMS]
            assert all(math.isfinite(v) for v in vals)
            # the per-sample ELBO is a float32 sum of the three float32 terms: equal to the sum
            # of their (float64) means up to two float32 roundings of 2^-24 each (all terms >= 0)
            assert row[f"{split}_elbo"] == pytest.approx(
                -(row[f"{split}_bce"] + row[f"{split}_kl_z"] + row[f"{split}_kl_u"]), rel=2 ** -23)
        assert row["train_kl_u"] == 0.0                                       # flat prior
    assert res.history[1]["train_elbo"] > res.history[0]["train_elbo"]        # it learns
    assert files_in(out.parent) == ["model.pt"]                               # no temp files left

    state = read_checkpoint(out)
    assert state["format_version"] == FORMAT_VERSION
    assert state["config"] == cfg.to_dict()
    assert state["epoch"] == 2 and state["complete"] is True
    assert state["history"] == res.history
    data = load_dataset("mnist", mnist_root, train_size=300, seed=0)
    assert state["data_identity"] == data.identity
    assert state["optimizer"]["state"], "optimizer state (Adam moments) must be saved"
    assert set(state["rng"]) == {"perm", "noise", "torch"}
    assert all(isinstance(v, torch.Tensor) for v in state["rng"].values())

    model, state2 = load_model(out)
    assert not model.training
    assert_same_state(model.state_dict(), res.model.state_dict())
    # the stored mean pose is the training set's mean posterior pose
    assert torch.allclose(model.u_mean, mean_pose(model, data.x_train), atol=1e-6)
    assert not torch.allclose(model.u_mean, model.warp.identity())


def test_zero_epochs_writes_the_initial_model(tmp_path, mnist300_short):
    out = tmp_path / "m.pt"
    res = train(small(epochs=0), mnist300_short, out=out, progress=False)
    state = read_checkpoint(out)
    assert res.history == [] and state["epoch"] == 0 and state["complete"] is True


# -------------------------------------------------------------- exact resumption ----
_RUNS: dict[tuple, object] = {}


def straight(cfg: Config, data) -> object:
    """An uninterrupted in-process run of ``cfg`` (memoised: several tests compare with it)."""
    key = (cfg.key(), data.identity)
    if key not in _RUNS:
        _RUNS[key] = train(cfg, data, progress=False)
    return _RUNS[key]


@pytest.mark.parametrize("model,prior,optimizer", [("affine-tvae", "mean-diag", "adadelta"),
                                                    ("tps-dtvae", "flat", "adam")])
def test_resume_gives_identical_weights(tmp_path, mnist300_short, model, prior, optimizer):
    cfg3 = small(model, prior=prior, optimizer=optimizer, epochs=3)
    ref = straight(cfg3, mnist300_short)
    out = tmp_path / "m.pt"
    first = train(cfg3.replace(epochs=1), mnist300_short, out=out, progress=False)
    assert len(first.history) == 1
    resumed = train(cfg3, mnist300_short, out=out, resume=True, progress=False)
    assert_same_state(resumed.model.state_dict(), ref.model.state_dict())
    assert without_seconds(resumed.history) == without_seconds(ref.history)
    assert read_checkpoint(out)["epoch"] == 3
    # resuming a finished run trains nothing more and changes nothing
    again = train(cfg3, mnist300_short, out=out, resume=True, progress=False)
    assert_same_state(again.model.state_dict(), ref.model.state_dict())


CHILD = r"""
import dataclasses, json, sys, time
import tvae.models
from tvae import Config
from tvae.data import load_dataset
from tvae.train import train

cfg = Config.from_dict(json.loads(sys.argv[1]))
root, out = sys.argv[2], sys.argv[3]
# Announce every batch and slow it a little so the parent can kill us mid-epoch; the
# computation is unchanged.
_forward = tvae.models.VAE.forward
def forward(self, *args):
    print("batch", flush=True)
    time.sleep(0.01)
    return _forward(self, *args)
tvae.models.VAE.forward = forward
data = load_dataset("mnist", root, train_size=cfg.train_size, seed=cfg.seed)
data = dataclasses.replace(data, x_test=data.x_test[:500], y_test=data.y_test[:500],
                           identity=data.identity + "-t500")
train(cfg, data, out=out, progress=False, on_epoch=lambda e, row: print("epoch", e, flush=True))
print("finished", flush=True)
"""


def _read_line(proc: subprocess.Popen, deadline: float) -> str:
    """Next stdout line of ``proc``, failing the test at ``deadline`` (no hang)."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            proc.kill()
            pytest.fail("training subprocess did not report in time")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            return proc.stdout.readline()


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path, mnist_root):
    cfg = small("tps-tvae", train_size=2000, epochs=3, batch_size=50)      # 40 batches an epoch
    ckdir = tmp_path / "ck"
    out = ckdir / "model.pt"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", TVAE_THREADS="1")
    env.pop("TVAE_TEST_NAN_AT", None)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(cfg.to_dict()), str(mnist_root),
                             str(out)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    deadline = time.monotonic() + 120
    try:
        while True:                                     # wait for the first checkpoint
            line = _read_line(proc, deadline)
            assert line, f"child ended early: {proc.stderr.read()}"
            if line.strip() == "epoch 1":
                break
        assert out.is_file()
        batches = 0
        while batches < 5:                              # five batches into epoch 2
            line = _read_line(proc, deadline)
            assert line and line.strip() == "batch", line
            batches += 1
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    # the file on disk is a whole checkpoint of epoch 1, and nothing else lies beside it
    assert files_in(ckdir) == ["model.pt"]
    state = read_checkpoint(out)
    assert state["epoch"] == 1 and state["complete"] is False and len(state["history"]) == 1
    assert state["config"] == cfg.to_dict()
    assert all(torch.isfinite(v).all() for v in state["model"].values())

    data = load_dataset("mnist", mnist_root, train_size=2000, seed=0)
    data = dataclasses.replace(data, x_test=data.x_test[:500], y_test=data.y_test[:500],
                               identity=data.identity + "-t500")
    resumed = train(cfg, data, out=out, resume=True, progress=False)
    ref = train(cfg, data, out=tmp_path / "ref.pt", progress=False)
    assert_same_state(resumed.model.state_dict(), ref.model.state_dict())
    assert_same_state(read_checkpoint(out)["model"], read_checkpoint(tmp_path / "ref.pt")["model"])
    assert without_seconds(resumed.history) == without_seconds(ref.history)
    assert files_in(ckdir) == ["model.pt"]


def _write_checkpoints_forever(path: str, written) -> None:
    """Child of the kill test: rewrite an 8 MB checkpoint in a loop, counting the writes."""
    blob = torch.randn(2_000_000, generator=torch.Generator().manual_seed(0))
    i = 0
    while True:
        i += 1
        save_checkpoint(path, {"format_version": FORMAT_VERSION, "epoch": i, "blob": blob})
        written.value = i


def test_sigkill_during_checkpoint_writes_never_leaves_a_partial_checkpoint(tmp_path):
    """Kill a process that does nothing but rewrite a large checkpoint, at arbitrary moments
    (so mostly in the middle of a write): the checkpoint path always holds a whole, readable
    checkpoint. Only a hidden ``.<name>.<pid>.tmp`` of the killed writer may remain beside
    it, which no reader takes for a checkpoint."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")               # torch is already imported: no start-up cost
    path = tmp_path / "model.pt"
    blob = torch.randn(2_000_000, generator=torch.Generator().manual_seed(0))
    delays = [0.0, 0.003, 0.011, 0.023, 0.037]
    for delay in delays:
        written = ctx.Value("i", 0)
        proc = ctx.Process(target=_write_checkpoints_forever, args=(str(path), written), daemon=True)
        proc.start()
        deadline = time.monotonic() + 60
        while written.value < 2 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert written.value >= 2, "the writer did not start"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(timeout=30)
        assert proc.exitcode == -signal.SIGKILL
        state = read_checkpoint(path)
        assert state["epoch"] >= written.value >= 2
        assert torch.equal(state["blob"], blob)
        for name in files_in(tmp_path):
            assert name == "model.pt" or name == f".model.pt.{proc.pid}.tmp", name
        for stray in tmp_path.glob(".model.pt.*.tmp"):
            stray.unlink()


def test_save_checkpoint_is_atomic_and_cleans_up(tmp_path, monkeypatch):
    """A failure while writing leaves the previous checkpoint untouched and no temp file."""
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"format_version": FORMAT_VERSION, "epoch": 1})

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"format_version": FORMAT_VERSION, "epoch": 2})
    monkeypatch.undo()
    assert files_in(tmp_path) == ["c.pt"]
    assert read_checkpoint(path)["epoch"] == 1


# ---------------------------------------------------------------------- NaN hook ----
@pytest.mark.parametrize("via", ["argument", "environment"])
def test_nan_stops_training_and_keeps_last_good_checkpoint(tmp_path, mnist300_short, monkeypatch, via):
    cfg = small("vae", epochs=3)
    out = tmp_path / "m.pt"
    kw = {}
    if via == "argument":
        kw["nan_at"] = (2, 3)
    else:
        monkeypatch.setenv("TVAE_TEST_NAN_AT", "2:3")
    with pytest.raises(TrainingError) as err:
        train(cfg, mnist300_short, out=out, progress=False, **kw)
    msg = str(err.value)
    assert "epoch 2, batch 3" in msg and "epoch 1" in msg and str(out) in msg
    assert "\n" not in msg
    assert files_in(tmp_path) == ["m.pt"]
    state = read_checkpoint(out)
    assert state["epoch"] == 1 and state["complete"] is False and len(state["history"]) == 1
    # intact: exactly the state after one clean epoch
    monkeypatch.delenv("TVAE_TEST_NAN_AT", raising=False)
    clean = train(cfg.replace(epochs=1), mnist300_short, out=tmp_path / "clean" / "m.pt", progress=False)
    assert_same_state(state["model"], clean.model.state_dict())
    # and the run resumes from it to the same end as an uninterrupted run
    resumed = train(cfg, mnist300_short, out=out, resume=True, progress=False)
    assert_same_state(resumed.model.state_dict(), straight(cfg, mnist300_short).model.state_dict())


def test_nan_in_first_epoch_writes_nothing(tmp_path, mnist300_short):
    out = tmp_path / "m.pt"
    with pytest.raises(TrainingError, match=r"epoch 1, batch 1 .*no checkpoint was written"):
        train(small("vae"), mnist300_short, out=out, progress=False, nan_at=(1, 1))
    assert not out.exists() and files_in(tmp_path) == []


# ------------------------------------------------------------- refused checkpoints ----
@pytest.fixture
def one_epoch_checkpoint(tmp_path, mnist300_short) -> Path:
    out = tmp_path / "m.pt"
    train(small("vae", epochs=1), mnist300_short, out=out, progress=False)
    return out


@pytest.mark.parametrize("change,field", [({"zdim": 5}, "zdim"), ({"lr": 0.01}, "lr"),
                                          ({"optimizer": "adadelta"}, "optimizer"),
                                          ({"hidden": (64, 32)}, "hidden")])
def test_resume_with_another_config_is_refused(one_epoch_checkpoint, mnist300_short, change, field):
    before = one_epoch_checkpoint.read_bytes()
    with pytest.raises(CheckpointError, match=rf"another config \({field} "):
        train(small("vae", epochs=2, **change), mnist300_short, out=one_epoch_checkpoint,
              resume=True, progress=False)
    assert one_epoch_checkpoint.read_bytes() == before


def test_resume_with_fewer_epochs_than_trained_is_refused(tmp_path, mnist300_short):
    """A checkpoint that already holds 2 epochs cannot be "resumed" to 1: that would return a
    model trained twice as long as its config says (see patches/resume-fewer-epochs.diff)."""
    out = tmp_path / "m.pt"
    train(small("vae", epochs=2), mnist300_short, out=out, progress=False)
    before = out.read_bytes()
    with pytest.raises(CheckpointError, match="already trained 2 epochs"):
        train(small("vae", epochs=1), mnist300_short, out=out, resume=True, progress=False)
    assert out.read_bytes() == before


def test_resume_on_other_data_is_refused(one_epoch_checkpoint, mnist300_short):
    other = dataclasses.replace(mnist300_short, identity=mnist300_short.identity + "x")
    with pytest.raises(CheckpointError, match="other data"):
        train(small("vae", epochs=2), other, out=one_epoch_checkpoint, resume=True, progress=False)


def test_unknown_format_version_is_refused(one_epoch_checkpoint, mnist300_short):
    state = torch.load(one_epoch_checkpoint, weights_only=False)
    state["format_version"] = 999
    torch.save(state, one_epoch_checkpoint)
    for call in (lambda: read_checkpoint(one_epoch_checkpoint),
                 lambda: load_model(one_epoch_checkpoint),
                 lambda: train(small("vae", epochs=2), mnist300_short, out=one_epoch_checkpoint,
                               resume=True, progress=False)):
        with pytest.raises(CheckpointError, match="format version 999"):
            call()


def test_truncated_or_foreign_checkpoints_are_refused(one_epoch_checkpoint, tmp_path):
    blob = one_epoch_checkpoint.read_bytes()
    for n in (len(blob) // 2, 100, 0):
        one_epoch_checkpoint.write_bytes(blob[:n])
        with pytest.raises(CheckpointError, match="corrupt or truncated"):
            read_checkpoint(one_epoch_checkpoint)
        with pytest.raises(CheckpointError):
            load_model(one_epoch_checkpoint)
    foreign = tmp_path / "foreign.pt"
    torch.save([1, 2, 3], foreign)
    with pytest.raises(CheckpointError, match="not a tvae checkpoint"):
        read_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "missing.pt")


def test_batch_size_larger_than_dataset_is_a_config_error(tmp_path, mnist300_short):
    out = tmp_path / "m.pt"
    with pytest.raises(ConfigError, match=r"batch size 301 is larger than the dataset \(300"):
        train(small("vae", batch_size=301), mnist300_short, out=out, progress=False)
    assert files_in(tmp_path) == []
    train(small("vae", batch_size=300, epochs=1), mnist300_short, progress=False)   # equal is fine


# ------------------------------------------------------------------ determinism ----
def test_same_seed_same_results_different_seed_different(mnist300_short):
    cfg = small("affine-tvae", prior="mean-diag", optimizer="adadelta", epochs=3)
    a = straight(cfg, mnist300_short)
    b = train(cfg, mnist300_short, progress=False)
    assert without_seconds(a.history) == without_seconds(b.history)
    x = mnist300_short.x_test
    ca, cb = codes(a.model, x, with_pose=True), codes(b.model, x, with_pose=True)
    assert np.array_equal(ca, cb)
    other = train(cfg.replace(seed=1), mnist300_short, progress=False)
    assert without_seconds(other.history) != without_seconds(a.history)
    assert all(r1["test_elbo"] != r2["test_elbo"] for r1, r2 in zip(other.history, a.history, strict=True))
    co = codes(other.model, x, with_pose=True)
    assert co.shape == ca.shape and not np.allclose(co, ca)


def test_non_finite_gradient_stops_before_the_weights_change(tmp_path, mnist300_short, monkeypatch):
    """A finite loss with an infinite gradient (forced by a hook in the second epoch) must not
    reach the optimiser: training stops naming epoch and batch, and the checkpoint on disk is
    the clean epoch-1 one, with finite weights."""
    import tvae.train as tt

    build = tt.build_model
    calls = {"n": 0}

    def poisoned(config):
        model = build(config)

        def hook(grad):
            calls["n"] += 1
            return grad * float("inf") if calls["n"] > 3 else grad   # epoch 1 has 3 batches
        model.decoder[-1].weight.register_hook(hook)
        return model

    monkeypatch.setattr(tt, "build_model", poisoned)
    cfg = Config(model="vae", zdim=3, epochs=3, batch_size=100, seed=0)
    out = tmp_path / "m.pt"
    with pytest.raises(TrainingError, match=r"non-finite gradient at epoch 2, batch 1"):
        train(cfg, mnist300_short, out=out, progress=False)
    state = read_checkpoint(out)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
