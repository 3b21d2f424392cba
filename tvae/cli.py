"""The command line: ``tvae train | evaluate | sample | profile`` (also ``python -m tvae``).

    tvae train --model tps-tvae --zdim 8 --epochs 1 --train-size 2000 --out model.pt
    tvae evaluate model.pt --k 100
    tvae sample model.pt --n 64 --out samples.png
    tvae profile quick

Defaults are those of :class:`tvae.config.Config` (the paper's settings), read from it; every
flag that takes one of a fixed set of names lists them (``choices``). ``-q`` silences
everything but errors and the command's own output (``evaluate``'s and ``profile``'s JSON).

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
import dataclasses
import json
import math
import os
import shlex
import sys
from pathlib import Path

import torch

from . import __version__
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
    default_tps_start,
)
from .data import load_dataset
from .errors import ConfigError, TVAEError
from .io import atomic_path, read_checkpoint
from .profiles import PROFILES, resolve
from .rawdata import FOLDERS, data_root
from .runtime import choose_threads, select_device
from .train import load_model, train

PROG = "tvae"
"""The installed command (``[project.scripts]`` in pyproject.toml), named in every message."""

EXIT_INTERRUPTED = 130

DEFAULTS = Config()
"""Where the flags of ``train`` take their defaults: the Config's own (the paper's settings)."""

_CHECKED_ELSEWHERE = {f.name for f in dataclasses.fields(Config)} | {"name"}
"""Destinations whose ``choices`` Config (or :func:`tvae.resolve`, for ``profile NAME``)
validates itself, with its own message."""


class UsageError(Exception):
    """A command-line syntax error found by argparse (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are raised (and printed by :func:`main` as one line)."""

    def error(self, message: str):  # noqa: D102 - argparse API
        raise UsageError(f"{message}; see `{self.prog} --help`")

    def _check_value(self, action, value):  # argparse's hook for `choices`
        # Choices of a Config field (and the profile name) are listed by argparse but checked by
        # Config (tvae.resolve), so that the command line and Python report a bad name with one
        # message (tests/test_errors.py).
        if action.dest not in _CHECKED_ELSEWHERE:
            super()._check_value(action, value)


# --------------------------------------------------------------------------- parser ----
def _common_flags(p: argparse.ArgumentParser, quiet: bool = True) -> None:
    p.add_argument("--threads", type=int, default=None, metavar="T",
                   help="torch CPU threads (default $TVAE_THREADS, else the cores not already busy "
                        "by the 1-minute load average, at least 1)")
    if quiet:
        p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def _train_parser(sub) -> None:
    """``tvae train``: the Config's fields as flags, their defaults read from it."""
    d = DEFAULTS
    t = sub.add_parser("train", help="train a model and write its checkpoint",
                       description="Train a model and write its checkpoint after every epoch "
                                   "(atomically); print a one-line summary at the end.")
    t.add_argument("--model", required=True, choices=MODELS,
                   help="model kind (tps-dtvae is ours, not the paper's)")
    t.add_argument("--zdim", required=True, type=int, metavar="N",
                   help="dimension of the shape code z (>= 1)")
    t.add_argument("--prior", default=d.prior, choices=PRIORS,
                   help=f"pose prior (default {d.prior}; pose models only; reparam5-diag for affine "
                        "models only)")
    t.add_argument("--rank", type=int, default=d.rank, metavar="R",
                   help="rank of the lowrank prior, 1..dim u (6 affine, 2*grid^2 TPS); "
                        "only with --prior lowrank")
    t.add_argument("--epochs", type=int, default=d.epochs, metavar="N",
                   help=f"training epochs (default {d.epochs}, the paper's)")
    t.add_argument("--batch-size", type=int, default=d.batch_size, metavar="B",
                   help=f"minibatch size (default {d.batch_size})")
    t.add_argument("--train-size", type=int, default=d.train_size, metavar="N",
                   help="train on a seeded class-stratified subset of N digits (default: all 60,000; "
                        "1,500 for rot-mnist)")
    t.add_argument("--dataset", default=d.dataset, choices=DATASETS,
                   help=f"dataset (default {d.dataset})")
    t.add_argument("--data-dir", default=None, metavar="D",
                   help="data root holding MNIST/raw/ (default $TVAE_DATA, else ./data)")
    t.add_argument("--device", default=None, metavar="D",
                   help="cpu, cuda, cuda:N, mps or auto (default auto: CUDA, else MPS, else the CPU)")
    t.add_argument("--seed", type=int, default=d.seed, metavar="S",
                   help=f"seed of the weights, batches, noise and data subset (default {d.seed})")
    t.add_argument("--optimizer", default=d.optimizer, choices=OPTIMIZERS,
                   help=f"optimiser (default {d.optimizer}, the paper's)")
    t.add_argument("--lr", type=float, default=d.lr, metavar="LR",
                   help="learning rate (default: " + ", ".join(
                       f"{d.replace(optimizer=o).learning_rate:g} for {o}" for o in OPTIMIZERS) + ")")
    t.add_argument("--likelihood", default=d.likelihood, choices=LIKELIHOODS,
                   help=f"pixel likelihood (default {d.likelihood}, the paper's)")
    t.add_argument("--grid", type=int, default=d.grid, metavar="S",
                   help=f"TPS control grid size S x S (default {d.grid})")
    t.add_argument("--tps-start", default=None, choices=TPS_STARTS,
                   help="initial TPS warp of the flat prior (default: "
                        f"{default_tps_start('tps-tvae')} for tps-tvae, the original code's 2x "
                        f"zoom-out; {default_tps_start('tps-dtvae')} for the others)")
    t.add_argument("--hidden", default=",".join(map(str, d.hidden)), metavar="SIZES",
                   help="hidden layer sizes of the encoder and decoder networks, comma-separated "
                        f"(default {','.join(map(str, d.hidden))}, the paper's 2 x 256)")
    t.add_argument("--loc-hidden", default=",".join(map(str, d.loc_hidden)), metavar="SIZES",
                   help="hidden layer sizes of the DTVAE's localisation net, comma-separated "
                        f"(default {','.join(map(str, d.loc_hidden))})")
    t.add_argument("--init", default=d.init, choices=INITS,
                   help=f"weight initialisation (default {d.init}, the original code's Lasagne "
                        "default; torch: PyTorch's nn.Linear default)")
    t.add_argument("--sampling", default=d.sampling, choices=SAMPLINGS,
                   help=f"warp sampling convention (default {d.sampling}: align_corners=True, "
                        "border padding, the original's; torch: align_corners=False, zero padding)")
    t.add_argument("--out", default=None, metavar="PATH",
                   help="checkpoint file (default <model>-z<N>.pt in the current directory)")
    t.add_argument("--resume", action="store_true",
                   help="continue from --out if it exists (same settings; --epochs may grow)")
    t.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out instead of refusing (starts from scratch)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar or per-epoch lines")
    _common_flags(t)


def _evaluate_parser(sub) -> None:
    """``tvae evaluate``."""
    e = sub.add_parser("evaluate", help="print test ELBO terms and log-likelihood as JSON",
                       description="Print one JSON object: mean per-sample test ELBO terms (nats: "
                                   "test_bce, test_kl_z, test_kl_u, test_elbo) and the importance-"
                                   "sampled test_log_likelihood with k samples, over the first "
                                   "n_test test digits.")
    e.add_argument("checkpoint", metavar="CKPT", help=f"checkpoint written by `{PROG} train`")
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
    _common_flags(e, quiet=False)


def _sample_parser(sub) -> None:
    """``tvae sample``."""
    s = sub.add_parser("sample", help="write a grid of generated digits as a PNG",
                       description="Draw z from its prior and the pose as --pose says; write the "
                                   "digits as a grid PNG (8 x 8 for --n 64).")
    s.add_argument("checkpoint", metavar="CKPT", help=f"checkpoint written by `{PROG} train`")
    s.add_argument("--n", type=int, default=64, metavar="N", help="number of digits (default 64)")
    s.add_argument("--out", required=True, metavar="FILE.png", help="PNG file to write")
    s.add_argument("--pose", default="mean", choices=("mean", "identity", "prior"),
                   help="pose of pose models: the training-set mean (default), the identity warp, "
                        "or drawn from the pose prior (Gaussian priors only)")
    s.add_argument("--upright", action="store_true", help="show y' before the warp (pose models)")
    s.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the draws (default 0)")
    s.add_argument("--device", default=None, metavar="D",
                   help="cpu, cuda, cuda:N, mps or auto (default auto)")
    _common_flags(s)


def _profile_parser(sub) -> None:
    """``tvae profile``."""
    pr = sub.add_parser("profile", help="show the settings of a book profile (smoke, quick, paper)",
                        description="Print the settings of one of the book's run profiles as JSON "
                                    "(the values a chapter gets from tvae.resolve).")
    pr.add_argument("name", choices=PROFILES, help="the profile")
    pr.add_argument("--epochs", type=int, default=None, metavar="N", help="override the profile's epochs")
    pr.add_argument("--seed", type=int, default=None, metavar="S", help="override the profile's seed")
    pr.add_argument("--seeds", type=int, default=None, metavar="N",
                    help="override the profile's seed count (seeds per verdict model, >= 1)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tvae`` (sub-commands train, evaluate, sample, profile)."""
    p = _Parser(prog=PROG, description="Transformer VAEs (Vivé 2017): train, evaluate, sample.",
                epilog=f"Run `{PROG} COMMAND --help` for the flags of a command. Data come "
                       "from --data-dir, else $TVAE_DATA, else ./data (MNIST/raw/ IDX files).")
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    for add in (_train_parser, _evaluate_parser, _sample_parser, _profile_parser):
        add(sub)
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

    quiet = a.no_progress or a.quiet

    def on_epoch(epoch: int, row: dict) -> None:
        if not quiet:
            print(f"epoch {epoch}/{config.epochs}: train ELBO {row['train_elbo']:.2f}, test ELBO "
                  f"{row['test_elbo']:.2f} nats ({row['seconds']:.1f} s)", file=sys.stderr, flush=True)

    try:
        result = train(config, data, out=out, resume=a.resume, device=dev,
                       progress=not quiet, on_epoch=on_epoch)
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
        print(f"{PROG}: interrupted; {where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if a.quiet:
        pass
    elif result.history:
        last = result.history[-1]
        print(f"{config.label()}: {config.epochs} epochs, test BCE {last['test_bce']:.2f} nats, "
              f"test ELBO {last['test_elbo']:.2f} nats; checkpoint {out} ({dev}, {threads} thread(s))")
    else:
        print(f"{config.label()}: 0 epochs (untrained model); checkpoint {out}")
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    # Here, not at the top: tvae.evaluate loads scikit-learn (about 1.5 s), which only this
    # command needs; `tvae train` and `tvae --help` start without it.
    from .evaluate import elbo_terms, log_likelihood

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
    (numpy float32) with 1-pixel white separators (:func:`tvae.figures.mosaic`); ``ncol``
    defaults to ceil(sqrt(n))."""
    from .figures import mosaic  # here, not at the top: matplotlib, for this command only

    n = len(images)
    return mosaic(images, ncol or math.ceil(math.sqrt(n)), pad=1, pad_value=1.0)


def cmd_sample(a: argparse.Namespace) -> int:
    import matplotlib.image  # here, not at the top: matplotlib, for this command only

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
    with atomic_path(out) as tmp:
        matplotlib.image.imsave(tmp, grid, cmap="gray", vmin=0.0, vmax=1.0, format="png")
    if not a.quiet:
        print(f"wrote {a.n} samples of {model.config.label()} to {out}")
    return 0


def cmd_profile(a: argparse.Namespace) -> int:
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
