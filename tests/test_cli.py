"""Tests of the command line ``tvae`` (train, evaluate, sample, profile), run as ``python -m tvae``.

Tiny settings throughout (200 training digits, 1 epoch); the expensive run (training the
model that evaluate and sample read) happens once per module. The bad-input cases are in
``test_errors.py``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tvae import Config, cli
from tvae.evaluate import elbo_terms, log_likelihood
from tvae.train import FORMAT_VERSION, load_model, read_checkpoint

REPO = Path(__file__).resolve().parent.parent
TINY = ["--train-size", "200", "--epochs", "1"]


def env(mnist_root: Path) -> dict[str, str]:
    e = dict(os.environ)
    e.update(TVAE_DATA=str(mnist_root), OMP_NUM_THREADS="1", TVAE_THREADS="1", PYTHONPATH=str(REPO),
             MPLBACKEND="Agg")
    e.pop("TVAE_TEST_NAN_AT", None)
    return e


def tvae_cmd(args: list[str], cwd: Path, mnist_root: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tvae", *args], cwd=cwd, env=env(mnist_root),
                          capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture
def data_env(mnist_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """In-process runs of :func:`tvae.cli.main`: real MNIST via TVAE_DATA, cwd a fresh folder."""
    monkeypatch.setenv("TVAE_DATA", str(mnist_root))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def trained(mnist_root: Path, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """An affine TVAE with the mean-diag pose prior, trained by the command line."""
    folder = tmp_path_factory.mktemp("cli")
    r = tvae_cmd(["train", "--model", "affine-tvae", "--zdim", "2", "--prior", "mean-diag", *TINY,
                  "--out", "m.pt", "--no-progress"], folder, mnist_root)
    return folder / "m.pt", r


# ------------------------------------------------------------------------- help ----
def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_help_documents_every_flag(capsys: pytest.CaptureFixture) -> None:
    subs = _subparsers(cli.build_parser())
    assert set(subs) == {"train", "evaluate", "sample", "profile"}
    for name, sub in subs.items():
        assert cli.main([name, "--help"]) == 0
        text = capsys.readouterr().out
        for action in sub._actions:
            assert action.help and len(action.help) > 10, (name, action.dest)
            for opt in action.option_strings:
                assert opt in text, (name, opt)
    flags = {o for a in subs["train"]._actions for o in a.option_strings}
    assert flags >= {"--model", "--zdim", "--prior", "--rank", "--epochs", "--batch-size", "--train-size",
                     "--dataset", "--data-dir", "--device", "--seed", "--optimizer", "--lr", "--likelihood",
                     "--grid", "--tps-start", "--out", "--resume", "--no-progress", "--hidden",
                     "--loc-hidden", "--init", "--sampling"}
    assert {o for a in subs["profile"]._actions for o in a.option_strings} >= {"--seeds"}


def test_train_flags_reach_the_config() -> None:
    """``--hidden``, ``--loc-hidden``, ``--init``, ``--sampling`` and the default ``--tps-start``
    give the Config they say; without them the CLI's config is ``Config``'s defaults."""
    parse = cli.build_parser().parse_args
    c = cli.config_from_args(parse(["train", "--model", "tps-tvae", "--zdim", "8", "--hidden", "512",
                                    "--loc-hidden", "64,32", "--init", "torch", "--sampling", "torch"]))
    assert (c.hidden, c.loc_hidden, c.init, c.sampling) == ((512,), (64, 32), "torch", "torch")
    assert c.tps_start == "double"
    for model in ("vae", "tps-tvae", "affine-dtvae"):
        d = cli.config_from_args(parse(["train", "--model", model, "--zdim", "8"]))
        assert d == Config(model=model, zdim=8) and d.key() == Config(model=model, zdim=8).key()


def test_python_m_tvae_help_runs(tmp_path: Path, mnist_root: Path) -> None:
    r = tvae_cmd(["--help"], tmp_path, mnist_root)
    assert r.returncode == 0 and "train" in r.stdout and "evaluate" in r.stdout and "sample" in r.stdout


# ------------------------------------------------------------------------ train ----
def test_train_writes_checkpoint_and_one_line_summary(trained) -> None:
    path, r = trained
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 and "test BCE" in lines[0] and "test ELBO" in lines[0]
    state = read_checkpoint(path)
    assert state["format_version"] == FORMAT_VERSION and state["complete"] and state["epoch"] == 1
    assert state["config"]["model"] == "affine-tvae" and state["config"]["prior"] == "mean-diag"
    assert state["config"]["train_size"] == 200 and state["config"]["zdim"] == 2
    last = state["history"][-1]
    assert f"test BCE {last['test_bce']:.2f} nats" in lines[0]
    assert f"test ELBO {last['test_elbo']:.2f} nats" in lines[0]
    assert r.stderr == ""  # --no-progress: nothing on stderr
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.pt"]  # no temporary files left


def test_train_default_out_and_refuses_to_overwrite(data_env: Path, capsys) -> None:
    args = ["train", "--model", "vae", "--zdim", "2", *TINY, "--no-progress"]
    assert cli.main(args) == 0
    out = data_env / "vae-z2.pt"
    assert out.is_file()
    before = out.read_bytes()
    capsys.readouterr()
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume" in err and "--overwrite" in err
    assert out.read_bytes() == before
    assert cli.main([*args, "--overwrite", "--seed", "1"]) == 0
    assert read_checkpoint(out)["config"]["seed"] == 1


def test_resume_extends_training(data_env: Path, capsys) -> None:
    base = ["train", "--model", "vae", "--zdim", "2", "--train-size", "200", "--out", "r.pt", "--no-progress"]
    assert cli.main([*base, "--epochs", "1"]) == 0
    first = read_checkpoint("r.pt")["history"]
    assert cli.main([*base, "--epochs", "2", "--resume"]) == 0
    state = read_checkpoint("r.pt")
    assert state["epoch"] == 2 and len(state["history"]) == 2
    assert state["history"][0] == first[0]  # the first epoch is kept, not retrained
    assert "2 epochs" in capsys.readouterr().out.splitlines()[-1]


def test_progress_lines_go_to_stderr(data_env: Path, capsys) -> None:
    assert cli.main(["train", "--model", "vae", "--zdim", "2", *TINY, "--out", "p.pt"]) == 0
    cap = capsys.readouterr()
    assert "epoch 1/1: train ELBO" in cap.err
    assert len(cap.out.strip().splitlines()) == 1


def test_ctrl_c_reports_checkpoint_and_resume_command(tmp_path: Path, mnist_root: Path) -> None:
    args = ["train", "--model", "vae", "--zdim", "2", "--train-size", "6000", "--epochs", "5", "--out",
            "c.pt", "--no-progress"]
    # SIGINT back to its default in the child: a test run started as a background job inherits
    # SIGINT ignored, and Python then never raises KeyboardInterrupt (the run would just finish)
    proc = subprocess.Popen([sys.executable, "-m", "tvae", *args], cwd=tmp_path, env=env(mnist_root),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    ckpt = tmp_path / "c.pt"
    deadline = time.monotonic() + 120
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    epoch = read_checkpoint(ckpt)["epoch"]
    assert 1 <= epoch < 5
    assert f"epoch {epoch} of 5" in err and "c.pt" in err
    resume = err.split("resume with: ", 1)[1].strip()
    assert resume.endswith("--resume") and resume.startswith("tvae train")  # the installed command
    assert not list(tmp_path.glob(".*.tmp"))  # no half-written checkpoint left behind
    # the printed command finishes the run from the checkpoint
    r = subprocess.run([sys.executable, "-m", *resume.split()], cwd=tmp_path, env=env(mnist_root),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    state = read_checkpoint(ckpt)
    assert state["epoch"] == 5 and len(state["history"]) == 5 and state["complete"]


# ---------------------------------------------------------------------- argparse ----
def test_bad_flag_one_line_exit_2(data_env: Path, capsys) -> None:
    assert cli.main(["train", "--model", "vae"]) == 2
    err = capsys.readouterr().err
    assert err == ("tvae: error: the following arguments are required: --zdim; "
                   "see `tvae train --help`\n")
    assert cli.main(["train", "--model", "vae", "--zdim", "eight"]) == 2
    assert "invalid int value: 'eight'" in capsys.readouterr().err
    assert cli.main(["fit"]) == 2
    assert "invalid choice: 'fit'" in capsys.readouterr().err
    assert list(data_env.iterdir()) == []


def test_bad_flag_subprocess_no_usage_block(tmp_path: Path, mnist_root: Path) -> None:
    r = tvae_cmd(["train", "--model", "vae", "--zdim", "2", "--bogus"], tmp_path, mnist_root)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "tvae: error: unrecognized arguments: --bogus; see `tvae --help`"]
    assert list(tmp_path.iterdir()) == []


def test_out_checks_before_training(data_env: Path, capsys) -> None:
    (data_env / "adir").mkdir()
    assert cli.main(["train", "--model", "vae", "--zdim", "2", *TINY, "--out", "adir"]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert cli.main(["train", "--model", "vae", "--zdim", "2", *TINY, "--resume", "--overwrite"]) == 2
    assert "contradict" in capsys.readouterr().err
    assert sorted(p.name for p in data_env.iterdir()) == ["adir"]


# --------------------------------------------------------------------- evaluate ----
def test_evaluate_prints_one_json_object(trained, mnist_root: Path, tmp_path: Path) -> None:
    path, _ = trained
    r = tvae_cmd(["evaluate", str(path), "--k", "3", "--n-test", "100", "--seed", "4"], tmp_path, mnist_root)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(r.stdout.strip().splitlines()) == 1
    assert out["k"] == 3 and out["n_test"] == 100 and out["model"] == "affine-tvae" and out["zdim"] == 2
    assert out["data_identity_matches"] is True and out["epochs_trained"] == 1
    for key in ("test_bce", "test_kl_z", "test_kl_u", "test_elbo", "test_log_likelihood"):
        assert np.isfinite(out[key])
    assert out["test_elbo"] == pytest.approx(-(out["test_bce"] + out["test_kl_z"] + out["test_kl_u"]))
    assert out["test_kl_u"] > 0  # the mean-diag prior has a pose KL
    # the same numbers as the Python API computes (CPU, one thread: deterministic)
    from tvae.data import load_dataset

    model, _ = load_model(path)
    x = load_dataset("mnist", mnist_root).x_test[:100]
    terms = elbo_terms(model, x, seed=4)
    assert out["test_bce"] == pytest.approx(terms["bce"], rel=1e-6)
    assert out["test_elbo"] == pytest.approx(terms["elbo"], rel=1e-6)
    assert out["test_log_likelihood"] == pytest.approx(float(log_likelihood(model, x, k=3, seed=4).mean()),
                                                       rel=1e-6)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_rejects_bad_k(trained, data_env: Path, capsys) -> None:
    assert cli.main(["evaluate", str(trained[0]), "--k", "0"]) == 2
    err = capsys.readouterr().err
    assert err == "tvae: error: --k must be a positive integer, got 0; pass --k 1 or more\n"


# ----------------------------------------------------------------------- sample ----
def test_sample_writes_the_grid_png(trained, mnist_root: Path, tmp_path: Path) -> None:
    import matplotlib.image

    path, _ = trained
    r = tvae_cmd(["sample", str(path), "--n", "64", "--out", "s.png", "--pose", "prior", "--seed", "1"],
                 tmp_path, mnist_root)
    assert r.returncode == 0, r.stderr
    png = matplotlib.image.imread(tmp_path / "s.png")
    assert png.shape[:2] == (8 * 29 - 1, 8 * 29 - 1)
    model, _ = load_model(path)
    x = model.sample(64, torch.Generator().manual_seed(1), pose="prior").numpy()
    expected = cli.sample_grid(x)
    assert np.abs(png[..., 0] - expected).max() <= 2.5 / 255  # 256-entry colormap, then 8 bits
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.png"]


def test_sample_pose_prior_needs_a_gaussian_prior(data_env: Path, capsys) -> None:
    assert cli.main(["train", "--model", "affine-tvae", "--zdim", "2", *TINY, "--out", "f.pt",
                     "--no-progress"]) == 0
    capsys.readouterr()
    assert cli.main(["sample", "f.pt", "--out", "x.png", "--pose", "prior"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "flat prior" in err and "--pose mean" in err
    assert cli.main(["sample", "f.pt", "--out", "x.jpg"]) == 2
    assert ".png" in capsys.readouterr().err
    assert sorted(p.name for p in data_env.iterdir()) == ["f.pt"]
    assert cli.main(["sample", "f.pt", "--out", "sub/up.png", "--upright", "--n", "10"]) == 0
    assert (data_env / "sub" / "up.png").is_file()


def test_sample_grid_layout() -> None:
    x = np.zeros((5, 784), dtype=np.float32)
    x[4] = 1.0
    g = cli.sample_grid(x)
    assert g.shape == (2 * 29 - 1, 3 * 29 - 1)  # ceil(sqrt(5)) = 3 columns, 2 rows
    assert g[29:57, 29:57].min() == 1.0 and g[0:28, 0:28].max() == 0.0  # digit 4 at row 1, col 1
    assert g[28, :].min() == 1.0  # white separator


def test_defaults_come_from_config_and_choices_are_listed(capsys) -> None:
    from tvae.config import Config

    a = cli.build_parser().parse_args(["train", "--model", "vae", "--zdim", "3"])
    cfg = cli.config_from_args(a)
    assert cfg == Config(model="vae", zdim=3)   # every other field is Config's own default
    assert cli.main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    for names in ("vae,affine-tvae,tps-tvae,affine-dtvae,tps-dtvae", "flat,identity-diag,mean-diag",
                  "mnist,fashion-mnist,rot-mnist", "adadelta,adam", "bernoulli,continuous-bernoulli",
                  "identity,double"):
        assert "{" + names in text, names
    flat = " ".join(text.split())   # argparse wraps the help lines
    assert "default 50, the paper's" in flat and "1 for adadelta, 0.001 for adam" in flat
    assert cli.main(["profile", "--help"]) == 0
    assert "{smoke,quick,paper}" in capsys.readouterr().out
    # a bad name is reported by Config, with Python's own message (one wording, see test_errors)
    assert cli.main(["train", "--model", "tvae", "--zdim", "3"]) == 2
    assert capsys.readouterr().err == ("tvae: error: unknown model 'tvae'; choose one of vae, affine-tvae, "
                                       "tps-tvae, affine-dtvae, tps-dtvae (--model)\n")
    assert cli.main(["sample", "m.pt", "--out", "x.png", "--pose", "sideways"]) == 2
    assert "invalid choice: 'sideways'" in capsys.readouterr().err


def test_version(capsys) -> None:
    import tvae

    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"tvae {tvae.__version__}\n"


def test_quiet_prints_nothing_but_the_result(data_env: Path, capsys) -> None:
    assert cli.main(["train", "--model", "vae", "--zdim", "2", *TINY, "--out", "q.pt", "-q"]) == 0
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert cli.main(["sample", "q.pt", "--out", "q.png", "--n", "4", "--quiet"]) == 0
    out = capsys.readouterr()
    assert out.out == "" and out.err == "" and (data_env / "q.png").is_file()
    assert cli.main(["sample", "q.pt", "--out", "r.png", "--n", "4"]) == 0
    assert capsys.readouterr().out.startswith("wrote 4 samples")


# ---------------------------------------------------------------------- profile ----
def test_profile_prints_settings(data_env: Path, capsys) -> None:
    assert cli.main(["profile", "quick", "--epochs", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == "quick" and out["epochs"] == 3 and out["train_size"] == 6000
    assert out["n_seeds"] == 1 and out["seed_list"] == [0]
    assert cli.main(["profile", "paper", "--seeds", "2", "--seed", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_seeds"] == 2 and out["seed_list"] == [4, 5]


# ---------------------------------------------------------------- numerical fault ----
def test_nan_loss_one_line_and_checkpoint_kept(data_env: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("TVAE_TEST_NAN_AT", "2:1")  # the trainer's test hook: NaN at epoch 2, batch 1
    args = ["train", "--model", "vae", "--zdim", "2", "--train-size", "200", "--epochs", "3", "--out", "n.pt",
            "--no-progress"]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tvae: error: non-finite loss")
    assert "epoch 2, batch 1" in err and "n.pt" in err
    state = read_checkpoint("n.pt")
    assert state["epoch"] == 1 and not state["complete"]


# ----------------------------------------------------------------------- threads ----
def test_choose_threads(monkeypatch) -> None:
    cores = len(os.sched_getaffinity(0))
    try:
        assert cli.choose_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("TVAE_THREADS", "1")
        assert cli.choose_threads() == 1
        monkeypatch.delenv("TVAE_THREADS")
        monkeypatch.setattr(os, "getloadavg", lambda: (cores + 5.0, 0.0, 0.0))  # every core busy
        assert cli.choose_threads() == 1
        monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.0, 0.0))  # idle
        assert cli.choose_threads() == cores == torch.get_num_threads()
        with pytest.raises(cli.ConfigError, match="--threads"):
            cli.choose_threads(0)
    finally:
        torch.set_num_threads(1)


def test_evaluate_finds_the_data_the_checkpoint_was_trained_on(mnist_root: Path, tmp_path: Path) -> None:
    """Train with --data-dir, then evaluate with neither --data-dir nor TVAE_DATA and no ./data:
    the data root recorded in the checkpoint is used; an explicit --data-dir still wins."""
    e = env(mnist_root)
    e.pop("TVAE_DATA")
    run = functools.partial(subprocess.run, cwd=tmp_path, env=e, capture_output=True, text=True,
                            timeout=300)
    r = run([sys.executable, "-m", "tvae", "train", "--model", "vae", "--zdim", "2", *TINY,
             "--data-dir", str(mnist_root), "--out", "m.pt", "--no-progress"])
    assert r.returncode == 0, r.stderr
    assert read_checkpoint(tmp_path / "m.pt")["data_root"] == str(mnist_root.resolve())
    r = run([sys.executable, "-m", "tvae", "evaluate", "m.pt", "--k", "2", "--n-test", "50"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["data_identity_matches"] is True
    assert not (tmp_path / "data").exists()
    r = run([sys.executable, "-m", "tvae", "evaluate", "m.pt", "--data-dir", "elsewhere"])
    assert r.returncode == 1 and "MNIST not found under elsewhere/MNIST/raw" in r.stderr
