"""The command line: ``python -m tvae train | evaluate | sample | profile``.

    python -m tvae train --model tps-tvae --zdim 8 --epochs 1 --train-size 2000 --out model.pt
    python -m tvae evaluate model.pt --k 100
    python -m tvae sample model.pt --n 64 --out samples.png
    python -m tvae profile quick

Every problem a user can cause ends the program with one line on stderr,
``tvae: error: <what is wrong; what to do>``, no traceback, and exit status 2 for bad flags
or settings (argparse's convention, also :class:`~tvae.errors.ConfigError` and
:class:`~tvae.errors.DeviceError`) or 1 for bad data and checkpoints (the error's
``exit_code``). Everything is validated before any file is created, so a failed command writes
nothing; output files are written atomically. Ctrl-C during training exits with status 130
and says how to resume from the last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import tempfile
from pathlib import Path

from .config import (
    DATASETS,
    INITS,
    LIKELIHOODS,
    MODELS,
    OPTIMIZERS,
    PRIORS,
    SAMPLINGS,
    TPS_STARTS,
    Config,
)
from .errors import ConfigError, TVAEError

PROG = "python -m tvae"
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A command-line syntax error found by argparse (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are raised (and printed by :func:`main` as one line)."""

    def error(self, message: str):  # noqa: D102 - argparse API
        raise UsageError(f"{message}; see `{self.prog} --help`")


def _names(options) -> str:
    return ", ".join(options)


# --------------------------------------------------------------------------- parser ----
def _threads_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=None, metavar="T",
                   help="torch CPU threads (default $TVAE_THREADS, else the cores not already busy "
                        "by the 1-minute load average, at least 1)")


def choose_threads(requested: int | None = None) -> int:
    """Set and return torch's CPU thread count: ``requested``, else ``$TVAE_THREADS``, else
    ``cores - round(load average)`` clamped to ``1..cores``.

    The load-aware default matters on shared machines: with every core already busy, a
    second torch thread makes an epoch 10-20 x slower (benchmarks/README.md).
    """
    from .train import configure_threads

    if requested is not None:
        if requested < 1:
            raise ConfigError(f"--threads must be >= 1, got {requested}")
        return configure_threads(requested)
    if os.environ.get("TVAE_THREADS"):
        return configure_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = round(os.getloadavg()[0])
    except OSError:  # not available on this platform
        busy = 0
    return configure_threads(max(1, min(cores, cores - busy)))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m tvae`` (sub-commands train, evaluate, sample, profile)."""
    p = _Parser(prog=PROG, description="Transformer VAEs (Vivé 2017): train, evaluate, sample.",
                epilog="Run `python -m tvae COMMAND --help` for the flags of a command. Data come "
                       "from --data-dir, else $TVAE_DATA, else ./data (MNIST/raw/ IDX files).")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a model and write its checkpoint",
                       description="Train a model and write its checkpoint after every epoch "
                                   "(atomically); print a one-line summary at the end.")
    t.add_argument("--model", required=True, metavar="KIND",
                   help=f"model kind, one of {_names(MODELS)} (tps-dtvae is ours, not the paper's)")
    t.add_argument("--zdim", required=True, type=int, metavar="N",
                   help="dimension of the shape code z (>= 1)")
    t.add_argument("--prior", default="flat", metavar="P",
                   help=f"pose prior, one of {_names(PRIORS)} (default flat; pose models only; "
                        "reparam5-diag for affine models only)")
    t.add_argument("--rank", type=int, default=None, metavar="R",
                   help="rank of the lowrank prior, 1..dim u (6 affine, 2*grid^2 TPS); "
                        "only with --prior lowrank")
    t.add_argument("--epochs", type=int, default=50, metavar="N",
                   help="training epochs (default 50, the paper's)")
    t.add_argument("--batch-size", type=int, default=100, metavar="B", help="minibatch size (default 100)")
    t.add_argument("--train-size", type=int, default=None, metavar="N",
                   help="train on a seeded class-stratified subset of N digits (default: all 60,000; "
                        "1,500 for rot-mnist)")
    t.add_argument("--dataset", default="mnist", metavar="NAME",
                   help=f"dataset, one of {_names(DATASETS)} (default mnist)")
    t.add_argument("--data-dir", default=None, metavar="D",
                   help="data root holding MNIST/raw/ (default $TVAE_DATA, else ./data)")
    t.add_argument("--device", default=None, metavar="D",
                   help="cpu, cuda, cuda:N, mps or auto (default auto: CUDA, else MPS, else the CPU)")
    t.add_argument("--seed", type=int, default=0, metavar="S",
                   help="seed of the weights, batches, noise and data subset (default 0)")
    t.add_argument("--optimizer", default="adadelta", metavar="OPT",
                   help=f"one of {_names(OPTIMIZERS)} (default adadelta, the paper's)")
    t.add_argument("--lr", type=float, default=None, metavar="LR",
                   help="learning rate (default 1.0 for adadelta, 1e-3 for adam)")
    t.add_argument("--likelihood", default="bernoulli", metavar="L",
                   help=f"one of {_names(LIKELIHOODS)} (default bernoulli, the paper's)")
    t.add_argument("--grid", type=int, default=3, metavar="S", help="TPS control grid size S x S (default 3)")
    t.add_argument("--tps-start", default=None, metavar="START",
                   help=f"initial TPS warp of the flat prior, one of {_names(TPS_STARTS)} "
                        "(default: double for tps-tvae, the original code's 2x zoom-out; "
                        "identity for the others)")
    t.add_argument("--hidden", default="256,256", metavar="SIZES",
                   help="hidden layer sizes of the encoder and decoder networks, comma-separated "
                        "(default 256,256, the paper's 2 x 256)")
    t.add_argument("--loc-hidden", default="128", metavar="SIZES",
                   help="hidden layer sizes of the DTVAE's localisation net, comma-separated "
                        "(default 128)")
    t.add_argument("--init", default="glorot", metavar="INIT",
                   help=f"weight initialisation, one of {_names(INITS)} (default glorot, the "
                        "original code's Lasagne default; torch: PyTorch's nn.Linear default)")
    t.add_argument("--sampling", default="lasagne", metavar="S",
                   help=f"warp sampling convention, one of {_names(SAMPLINGS)} (default lasagne: "
                        "align_corners=True, border padding, the original's; torch: "
                        "align_corners=False, zero padding)")
    t.add_argument("--out", default=None, metavar="PATH",
                   help="checkpoint file (default <model>-z<N>.pt in the current directory)")
    t.add_argument("--resume", action="store_true",
                   help="continue from --out if it exists (same settings; --epochs may grow)")
    t.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out instead of refusing (starts from scratch)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar or per-epoch lines")
    _threads_flag(t)

    e = sub.add_parser("evaluate", help="print test ELBO terms and log-likelihood as JSON",
                       description="Print one JSON object: mean per-sample test ELBO terms (nats: "
                                   "test_bce, test_kl_z, test_kl_u, test_elbo) and the importance-"
                                   "sampled test_log_likelihood with k samples, over the first "
                                   "n_test test digits.")
    e.add_argument("checkpoint", metavar="CKPT", help="checkpoint written by `python -m tvae train`")
    e.add_argument("--k", type=int, default=100, metavar="K",
                   help="importance samples per digit for the log-likelihood (default 100)")
    e.add_argument("--n-test", type=int, default=None, metavar="N",
                   help="use the first N test digits (default all 10,000; fewer is faster)")
    e.add_argument("--data-dir", default=None, metavar="D",
                   help="data root holding MNIST/raw/ (default $TVAE_DATA, else ./data, else the "
                        "root the checkpoint was trained from)")
    e.add_argument("--device", default=None, metavar="D",
                   help="cpu, cuda, cuda:N, mps or auto (default auto)")
    e.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the posterior draws (default 0)")
    _threads_flag(e)

    s = sub.add_parser("sample", help="write a grid of generated digits as a PNG",
                       description="Draw z from its prior and the pose as --pose says; write the "
                                   "digits as a grid PNG (8 x 8 for --n 64).")
    s.add_argument("checkpoint", metavar="CKPT", help="checkpoint written by `python -m tvae train`")
    s.add_argument("--n", type=int, default=64, metavar="N", help="number of digits (default 64)")
    s.add_argument("--out", required=True, metavar="FILE.png", help="PNG file to write")
    s.add_argument("--pose", default="mean", choices=("mean", "identity", "prior"),
                   help="pose of pose models: the training-set mean (default), the identity warp, "
                        "or drawn from the pose prior (Gaussian priors only)")
    s.add_argument("--upright", action="store_true", help="show y' before the warp (pose models)")
    s.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the draws (default 0)")
    s.add_argument("--device", default=None, metavar="D",
                   help="cpu, cuda, cuda:N, mps or auto (default auto)")
    _threads_flag(s)

    pr = sub.add_parser("profile", help="show the settings of a book profile (smoke, quick, paper)",
                        description="Print the settings of one of the book's run profiles as JSON "
                                    "(the values a chapter gets from tvae.resolve).")
    pr.add_argument("name", metavar="NAME", help="smoke, quick or paper")
    pr.add_argument("--epochs", type=int, default=None, metavar="N", help="override the profile's epochs")
    pr.add_argument("--seed", type=int, default=None, metavar="S", help="override the profile's seed")
    pr.add_argument("--seeds", type=int, default=None, metavar="N",
                    help="override the profile's seed count (seeds per verdict model, >= 1)")
    return p


# ----------------------------------------------------------------------- validation ----
def _check_writable(path: Path, flag: str) -> None:
    """Raise :class:`ConfigError` unless ``path`` can be created (its nearest existing ancestor
    is a writable directory) and is not a directory."""
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a directory; pass a file name")
    parent = path.parent.resolve() if str(path.parent) else Path.cwd()
    ancestor = parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write {path}: {ancestor} is not a writable directory; "
                          f"choose another {flag}")


def _positive(value: int | None, flag: str) -> None:
    if value is not None and value <= 0:
        raise ConfigError(f"{flag} must be a positive integer, got {value}; pass {flag} 1 or more")


def load_data(name: str, data_dir: str | None, **kw):
    """:func:`tvae.data.load_dataset`, except that when it fails the empty folders that a
    failed download attempt left under the data root are removed again (nothing written)."""
    from .data import FOLDERS, data_root, load_dataset

    root = data_root(data_dir)
    folder = root / FOLDERS["mnist" if name == "rot-mnist" else name]
    fresh = [p for p in (root, folder, folder / "raw") if not p.exists()]
    try:
        return load_dataset(name, data_dir, **kw)
    except TVAEError:
        for p in reversed(fresh):  # deepest first; rmdir only removes empty folders
            try:
                p.rmdir()
            except OSError:
                pass
        raise


def evaluation_data_dir(data_dir: str | None, state: dict) -> str | None:
    """The data root for evaluating a checkpoint: ``--data-dir``, else ``$TVAE_DATA``, else the
    root the checkpoint was trained from (recorded by :func:`tvae.train.train`) when it still
    exists and ``./data`` does not, else ``None`` (the default ``./data``)."""
    if data_dir is not None or os.environ.get("TVAE_DATA"):
        return data_dir
    recorded = state.get("data_root")
    if recorded and Path(recorded).is_dir() and not Path("data").exists():
        return recorded
    return None


def config_from_args(a: argparse.Namespace) -> Config:
    """The :class:`Config` of ``train``'s flags (validated: :class:`ConfigError` if bad)."""
    return Config(model=a.model, zdim=a.zdim, prior=a.prior, rank=a.rank, likelihood=a.likelihood,
                  tps_start=a.tps_start, grid=a.grid, dataset=a.dataset, train_size=a.train_size,
                  epochs=a.epochs, batch_size=a.batch_size, optimizer=a.optimizer, lr=a.lr,
                  seed=a.seed, hidden=tuple(a.hidden.split(",")),
                  loc_hidden=tuple(a.loc_hidden.split(",")), init=a.init, sampling=a.sampling)


def default_out(config: Config) -> Path:
    """``<model>-z<N>.pt`` in the current directory."""
    return Path(f"{config.model}-z{config.zdim}.pt")


# ------------------------------------------------------------------------- commands ----
def cmd_train(a: argparse.Namespace, argv: list[str]) -> int:
    from .train import read_checkpoint, select_device, train

    config = config_from_args(a)
    dev = select_device(a.device)
    out = Path(a.out) if a.out is not None else default_out(config)
    _check_writable(out, "--out")
    if a.resume and a.overwrite:
        raise ConfigError("--resume and --overwrite contradict each other; pass one of them")
    if out.exists() and not (a.resume or a.overwrite):
        raise ConfigError(f"{out} already exists; pass --resume to continue it, --overwrite to "
                          "start again, or choose another --out")
    if a.resume and out.exists():
        read_checkpoint(out, "cpu")  # unreadable or wrong version: fail before loading data
    threads = choose_threads(a.threads)
    data = load_data(config.dataset, a.data_dir, device=dev, train_size=config.train_size,
                     seed=config.seed)

    def on_epoch(epoch: int, row: dict) -> None:
        if not a.no_progress:
            print(f"epoch {epoch}/{config.epochs}: train ELBO {row['train_elbo']:.2f}, test ELBO "
                  f"{row['test_elbo']:.2f} nats ({row['seconds']:.1f} s)", file=sys.stderr, flush=True)

    try:
        result = train(config, data, out=out, resume=a.resume, device=dev,
                       progress=not a.no_progress, on_epoch=on_epoch)
    except KeyboardInterrupt:
        resume_cmd = shlex.join([*PROG.split(), *argv] + ([] if a.resume else ["--resume"]))
        try:
            epoch = read_checkpoint(out, "cpu")["epoch"] if out.exists() else 0
        except TVAEError:
            epoch = 0
        where = (f"the last checkpoint (epoch {epoch} of {config.epochs}) is {out}; resume with: "
                 f"{resume_cmd}" if epoch else
                 f"no epoch was completed, so no checkpoint was written; start again with: "
                 f"{shlex.join([*PROG.split(), *argv])}")
        print(f"tvae: interrupted; {where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.history:
        last = result.history[-1]
        print(f"{config.label()}: {config.epochs} epochs, test BCE {last['test_bce']:.2f} nats, "
              f"test ELBO {last['test_elbo']:.2f} nats; checkpoint {out} ({dev}, {threads} thread(s))")
    else:
        print(f"{config.label()}: 0 epochs (untrained model); checkpoint {out}")
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    import torch

    from .evaluate import elbo_terms, log_likelihood
    from .train import load_model, select_device

    _positive(a.k, "--k")
    _positive(a.n_test, "--n-test")
    dev = select_device(a.device)
    choose_threads(a.threads)
    model, state = load_model(a.checkpoint, dev)
    config = model.config
    data = load_data(config.dataset, evaluation_data_dir(a.data_dir, state), device=dev,
                     train_size=config.train_size, seed=config.seed)
    x = data.x_test[: a.n_test] if a.n_test else data.x_test
    terms = elbo_terms(model, x, seed=a.seed)
    with torch.no_grad():
        ll = log_likelihood(model, x, k=a.k, seed=a.seed)
    out = {f"test_{k}": float(v) for k, v in terms.items()}
    out.update(test_log_likelihood=float(ll.mean()), k=a.k, n_test=len(x), model=config.model,
               zdim=config.zdim, prior=config.prior if model.has_pose else None,
               dataset=config.dataset, epochs_trained=int(state["epoch"]),
               data_identity_matches=state.get("data_identity") == data.identity,
               checkpoint=str(a.checkpoint), units="nats per digit")
    print(json.dumps(out))
    return 0


def sample_grid(images, ncol: int | None = None):
    """Flat digits ``(n, 784)`` in ``[0, 1]`` -> one grey image ``(rows*29-1, cols*29-1)``
    (numpy float32) with 1-pixel white separators; ``ncol`` defaults to ceil(sqrt(n))."""
    import numpy as np

    x = np.asarray(images, dtype=np.float32).reshape(-1, 28, 28)
    n = len(x)
    ncol = ncol or math.ceil(math.sqrt(n))
    nrow = math.ceil(n / ncol)
    grid = np.ones((nrow * 29 - 1, ncol * 29 - 1), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, ncol)
        grid[r * 29:r * 29 + 28, c * 29:c * 29 + 28] = x[i]
    return grid


def cmd_sample(a: argparse.Namespace) -> int:
    import matplotlib.image
    import torch

    from .train import load_model, select_device

    if not 1 <= a.n <= 10_000:
        raise ConfigError(f"--n must be between 1 and 10000, got {a.n}")
    out = Path(a.out)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out {out} must end in .png")
    _check_writable(out, "--out")
    dev = select_device(a.device)
    choose_threads(a.threads)
    model, _ = load_model(a.checkpoint, dev)
    if a.pose == "prior" and not (model.has_pose and model.pose.stochastic):
        what = ("the plain VAE has no pose" if not model.has_pose
                else "the flat prior has no pose distribution")
        raise ConfigError(f"--pose prior: {what}; use --pose mean or --pose identity")
    gen = torch.Generator(device=dev).manual_seed(a.seed)
    x = model.sample(a.n, gen, pose=a.pose, upright=a.upright).cpu().numpy()
    grid = sample_grid(x)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".png")
    os.close(fd)
    try:
        matplotlib.image.imsave(tmp, grid, cmap="gray", vmin=0.0, vmax=1.0)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the image is an ordinary output
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    print(f"wrote {a.n} samples of {model.config.label()} to {out}")
    return 0


def cmd_profile(a: argparse.Namespace) -> int:
    import dataclasses

    from .profiles import resolve

    p = resolve(a.name, epochs=a.epochs, seed=a.seed, seeds=a.seeds)
    print(json.dumps({**dataclasses.asdict(p), "seed_list": list(p.seed_list)}))
    return 0


# ----------------------------------------------------------------------------- main ----
def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        a = build_parser().parse_args(argv)
        if a.command == "train":
            return cmd_train(a, argv)
        if a.command == "evaluate":
            return cmd_evaluate(a)
        if a.command == "sample":
            return cmd_sample(a)
        return cmd_profile(a)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    except UsageError as exc:
        print(f"tvae: error: {exc}", file=sys.stderr)
        return 2
    except TVAEError as exc:
        print(f"tvae: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("tvae: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # disk full, permission denied while writing: not a tvae bug
        print(f"tvae: error: {exc}", file=sys.stderr)
        return 1


__all__ = ["main", "build_parser", "choose_threads", "config_from_args", "default_out", "load_data",
           "sample_grid"]
