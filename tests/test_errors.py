"""The bad-input table (issue 5): every case from the command line and from Python.

Each :class:`Case` is run twice, in two fresh directories prepared the same way:

* from the command line, in a subprocess (``python -m tvae ...``, or papermill for the
  notebook parameters): a non-zero exit status, exactly one line on stderr
  (``tvae: error: <message>``), no traceback, and no file created or changed in the directory;
* from Python: the :class:`~tvae.errors.TVAEError` subclass named by the case, whose message
  equals the command line's.

The table of ``book/appendix_errors.md`` (between the ``% cases:start`` and ``% cases:end``
lines) is generated from these runs and checked against them, so the documentation cannot
drift from the code. Regenerate it after changing a message with

    TVAE_DATA=/path/to/data .venv/bin/python tests/test_errors.py --write

Paths in messages are shown relative to the case's directory.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

import tvae
import tvae.data
import tvae.engines
import tvae.train
from tvae.errors import CheckpointError, ConfigError, DataError, DeviceError, EngineError, TVAEError

REPO = Path(__file__).resolve().parent.parent
APPENDIX = REPO / "book" / "appendix_errors.md"
START, END = "% cases:start", "% cases:end"
OFFLINE_ENV = {k: "http://127.0.0.1:9" for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}
"""Proxies on a closed local port: any download attempt fails at once (simulates no network)."""
TINY = ["--train-size", "200", "--epochs", "1"]
LABELS = "t10k-labels-idx1-ubyte"


# ------------------------------------------------------------------------ helpers ----
def data_dir_copy(case: Path, edit: Callable[[bytearray], bytearray]) -> None:
    """``case/data/MNIST``: the real MNIST (symlinks) with the test-label file copied and
    passed through ``edit``; the real ``SHA256SUMS`` beside it."""
    src = Path(os.environ["TVAE_DATA"]) / "MNIST"
    raw = case / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    shutil.copy(src / "SHA256SUMS", raw.parent / "SHA256SUMS")
    for f in (src / "raw").iterdir():
        if f.name == LABELS:
            (raw / f.name).write_bytes(bytes(edit(bytearray(f.read_bytes()))))
        else:
            (raw / f.name).symlink_to(f.resolve())


def truncate(b: bytearray) -> bytearray:
    return b[:-100]


def bad_magic(b: bytearray) -> bytearray:
    b[0:4] = (1234).to_bytes(4, "big")
    return b


def other_label(b: bytearray) -> bytearray:
    b[8 + 17] = (b[8 + 17] + 1) % 10  # still a valid IDX file with labels 0-9: only the hash differs
    return b


def tiny_checkpoint(shared: Path) -> Path:
    """A real checkpoint: a plain VAE, dim z 2, one epoch on 200 digits (trained once)."""
    path = shared / "tiny.pt"
    if not path.exists():
        tvae.train.train(tvae.Config(model="vae", zdim=2, train_size=200, epochs=1), out=path,
                         progress=False)
    return path


def copy_tiny(name: str) -> Callable[[Path, Path], None]:
    def setup(case: Path, shared: Path) -> None:
        shutil.copy(tiny_checkpoint(shared), case / name)
    return setup


def future_version(case: Path, shared: Path) -> None:
    state = torch.load(tiny_checkpoint(shared), weights_only=False)
    state["format_version"] = 99
    torch.save(state, case / "future.pt")


def truncated_checkpoint(case: Path, shared: Path) -> None:
    blob = tiny_checkpoint(shared).read_bytes()
    (case / "broken.pt").write_bytes(blob[: len(blob) // 2])


def empty_dir(case: Path, shared: Path) -> None:
    (case / "empty").mkdir()


PARAM_NOTEBOOK = """\
import nbformat
nb = nbformat.v4.new_notebook()
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nb.metadata["language_info"] = {"name": "python"}
p = nbformat.v4.new_code_cell(
    'profile = "paper"\\nseed = 0\\nepochs = None\\ndevice = None\\ndata_dir = None')
p.metadata["tags"] = ["parameters"]
nb.cells = [p, nbformat.v4.new_code_cell(
    "import tvae\\nP = tvae.resolve(profile, epochs=epochs, seed=seed, device=device, data_dir=data_dir)")]
nbformat.write(nb, "chapter.ipynb")
"""


def chapter_notebook(case: Path, shared: Path) -> None:
    """``chapter.ipynb``: the book's convention (a ``parameters`` cell, then ``tvae.resolve``)."""
    subprocess.run([sys.executable, "-c", PARAM_NOTEBOOK], cwd=case, check=True)


# -------------------------------------------------------------------------- cases ----
@dataclass
class Case:
    """One bad input: the command line (``argv``, run in the case's directory), the same
    mistake made from Python (``python()``, run there too) and the error it must raise."""

    what: str
    argv: list[str]
    python: Callable[[], object]
    error: type[TVAEError]
    setup: Callable[[Path, Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    shown: str | None = None      # the command as the appendix shows it (default: argv)
    papermill: bool = False       # run argv with papermill instead of python -m tvae
    needs_no_cuda: bool = False
    script: bool = False          # run argv with scripts/train_models.py instead of python -m tvae

    def command(self) -> str:
        if self.shown:
            return self.shown
        if self.script:
            return "python scripts/train_models.py " + shlex.join(self.argv)
        return "tvae " + shlex.join(self.argv)   # the installed command (run here as python -m tvae)


def _train(**kw) -> Callable[[], object]:
    return lambda: tvae.train.train(tvae.Config(**kw), progress=False)


CASES: dict[str, Case] = {
    "unknown-model": Case(
        "Unknown model name", ["train", "--model", "tvae", "--zdim", "8"],
        lambda: tvae.Config(model="tvae", zdim=8), ConfigError),
    "unknown-prior": Case(
        "Unknown pose prior", ["train", "--model", "tps-tvae", "--zdim", "8", "--prior", "gaussian"],
        lambda: tvae.Config(model="tps-tvae", zdim=8, prior="gaussian"), ConfigError),
    "unknown-dataset": Case(
        "Unknown dataset", ["train", "--model", "vae", "--zdim", "8", "--dataset", "cifar10"],
        lambda: tvae.Config(model="vae", zdim=8, dataset="cifar10"), ConfigError),
    "zdim": Case(
        "dim z <= 0", ["train", "--model", "vae", "--zdim", "0"],
        lambda: tvae.Config(model="vae", zdim=0), ConfigError),
    "rank": Case(
        "Rank outside 1..dim u", ["train", "--model", "affine-tvae", "--zdim", "8", "--prior", "lowrank",
                                  "--rank", "7"],
        lambda: tvae.Config(model="affine-tvae", zdim=8, prior="lowrank", rank=7), ConfigError),
    "tps-start": Case(
        "Unknown TPS start", ["train", "--model", "tps-tvae", "--zdim", "8", "--tps-start", "half"],
        lambda: tvae.Config(model="tps-tvae", zdim=8, tps_start="half"), ConfigError),
    "init": Case(
        "Unknown initialisation", ["train", "--model", "vae", "--zdim", "8", "--init", "xavier"],
        lambda: tvae.Config(model="vae", zdim=8, init="xavier"), ConfigError),
    "sampling": Case(
        "Unknown warp sampling", ["train", "--model", "affine-tvae", "--zdim", "8", "--sampling", "nearest"],
        lambda: tvae.Config(model="affine-tvae", zdim=8, sampling="nearest"), ConfigError),
    "hidden": Case(
        "Hidden sizes not positive integers", ["train", "--model", "vae", "--zdim", "8", "--hidden", "256,0"],
        lambda: tvae.Config(model="vae", zdim=8, hidden=(256, 0)), ConfigError),
    "epochs": Case(
        "Negative number of epochs", ["train", "--model", "vae", "--zdim", "8", "--epochs", "-1"],
        lambda: tvae.Config(model="vae", zdim=8, epochs=-1), ConfigError),
    "batch-size": Case(
        "Batch larger than the dataset",
        ["train", "--model", "vae", "--zdim", "2", *TINY, "--batch-size", "500"],
        _train(model="vae", zdim=2, train_size=200, epochs=1, batch_size=500), ConfigError),
    "offline": Case(
        "Data directory missing, no network",
        ["train", "--model", "vae", "--zdim", "2", "--data-dir", "empty"],
        lambda: tvae.data.load_dataset("mnist", "empty"), DataError, setup=empty_dir, env=OFFLINE_ENV,
        shown="tvae train --model vae --zdim 2 --data-dir empty   # offline, empty/ is empty"),
    "truncated-idx": Case(
        "Truncated IDX file", ["train", "--model", "vae", "--zdim", "2", "--data-dir", "data", *TINY],
        lambda: tvae.data.load_dataset("mnist", "data"), DataError,
        setup=lambda case, shared: data_dir_copy(case, truncate)),
    "corrupt-idx": Case(
        "Corrupt IDX file (bad header)",
        ["train", "--model", "vae", "--zdim", "2", "--data-dir", "data", *TINY],
        lambda: tvae.data.load_dataset("mnist", "data"), DataError,
        setup=lambda case, shared: data_dir_copy(case, bad_magic)),
    "checksum": Case(
        "Checksum mismatch (SHA256SUMS)",
        ["train", "--model", "vae", "--zdim", "2", "--data-dir", "data", *TINY],
        lambda: tvae.data.load_dataset("mnist", "data"), DataError,
        setup=lambda case, shared: data_dir_copy(case, other_label)),
    "resume-other-config": Case(
        "Resuming a checkpoint of another config",
        ["train", "--model", "vae", "--zdim", "3", *TINY, "--out", "model.pt", "--resume"],
        lambda: tvae.train.train(tvae.Config(model="vae", zdim=3, train_size=200, epochs=1),
                                 out="model.pt", resume=True, progress=False),
        CheckpointError, setup=copy_tiny("model.pt")),
    "format-version": Case(
        "Checkpoint of an unknown format version", ["evaluate", "future.pt"],
        lambda: tvae.train.load_model("future.pt"), CheckpointError, setup=future_version),
    "truncated-checkpoint": Case(
        "Truncated checkpoint", ["evaluate", "broken.pt"],
        lambda: tvae.train.load_model("broken.pt"), CheckpointError, setup=truncated_checkpoint),
    "missing-checkpoint": Case(
        "Checkpoint not found", ["sample", "missing.pt", "--out", "samples.png"],
        lambda: tvae.train.load_model("missing.pt"), CheckpointError),
    "unknown-profile": Case(
        "Unknown book profile", ["profile", "fast"],
        lambda: tvae.resolve("fast"), ConfigError),
    "seed-count": Case(
        "Seed count below 1", ["profile", "paper", "--seeds", "0"],
        lambda: tvae.resolve("paper", seeds=0), ConfigError),
    "parameter-type": Case(
        "Notebook parameter of the wrong type",
        ["chapter.ipynb", "out.ipynb", "-p", "profile", "quick", "-p", "epochs", "five", "-k", "python3"],
        lambda: tvae.resolve("quick", epochs="five"), ConfigError, setup=chapter_notebook, papermill=True,
        shown="make quick EPOCHS=five   "
              "# or: papermill CHAPTER.ipynb OUT.ipynb -p profile quick -p epochs five"),
    "no-cuda": Case(
        "CUDA requested, none present", ["train", "--model", "vae", "--zdim", "2", "--device", "cuda"],
        lambda: tvae.train.select_device("cuda"), DeviceError, needs_no_cuda=True),
    "unknown-engine": Case(
        "Unknown training engine", ["--profile", "smoke", "--engine", "spark"],
        lambda: tvae.engines.check_engine("spark"), EngineError, script=True, env={"TVAE_CACHE": "cache"},
        shown="make models ENGINE=spark   # or: python scripts/train_models.py --engine spark ..."),
    "ray-unreachable": Case(
        "Ray cluster unreachable", ["--profile", "smoke", "--engine", "ray"],
        lambda: tvae.engines.train_on_ray("smoke"), EngineError, script=True,
        env={"RAY_ADDRESS": "127.0.0.1:9", "TVAE_CACHE": "cache"},
        shown="RAY_ADDRESS=127.0.0.1:9 make models ENGINE=ray   # nothing listens on port 9"),
}


# ------------------------------------------------------------------------- runner ----
def snapshot(folder: Path, dirs: bool = True) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder`` (symlinks by their target name),
    and ``'dir'`` for every folder when ``dirs``."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(folder))] = "-> " + os.readlink(p)
        elif p.is_file():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
        elif dirs:
            out[str(p.relative_to(folder))] = "dir"
    return out


def normalise(text: str, folder: Path) -> str:
    """Paths inside ``folder`` shown relative to it."""
    return text.replace(str(folder.resolve()) + os.sep, "").replace(str(folder) + os.sep, "")


@dataclass
class CliRun:
    rc: int
    stdout: str
    stderr: str
    message: str              # the stderr line without 'tvae: error: ', paths relative
    before: dict[str, str]
    after: dict[str, str]


def subprocess_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", TVAE_THREADS="1", PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    env.pop("TVAE_TEST_NAN_AT", None)
    env.update(extra)
    return env


def run_cli(case: Case, folder: Path) -> CliRun:
    before = snapshot(folder)
    if case.papermill:
        cmd = [sys.executable, "-m", "papermill", *case.argv, "--cwd", str(folder)]
    elif case.script:
        cmd = [sys.executable, str(REPO / "scripts" / "train_models.py"), *case.argv]
    else:
        cmd = [sys.executable, "-m", "tvae", *case.argv]
    r = subprocess.run(cmd, cwd=folder, env=subprocess_env(case.env), capture_output=True, text=True,
                       timeout=300)
    after = snapshot(folder)
    if case.papermill:  # papermill writes its output notebook whatever happens; the message is
        after.pop("out.ipynb", None)  # the exception line of the failing cell
        lines = [ln for ln in r.stderr.splitlines() if ln.startswith(f"{case.error.__name__}: ")]
        message = lines[-1].split(": ", 1)[1] if lines else ""
    else:
        message = r.stderr.strip().removeprefix("tvae: error: ")
    return CliRun(r.returncode, r.stdout, r.stderr, normalise(message, folder), before, after)


def prepare(base: Path, names: list[str]) -> dict[str, Path]:
    """Fresh ``base/cli/<name>`` and ``base/py/<name>`` directories, set up; shared assets in
    ``base/shared``. Returns the CLI directories."""
    shared = base / "shared"
    shared.mkdir(parents=True, exist_ok=True)
    dirs = {}
    for kind in ("cli", "py"):
        for name in names:
            d = base / kind / name
            d.mkdir(parents=True)
            if CASES[name].setup:
                CASES[name].setup(d, shared)
            if kind == "cli":
                dirs[name] = d
    return dirs


def run_all_cli(base: Path, names: list[str]) -> dict[str, CliRun]:
    dirs = prepare(base, names)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {n: pool.submit(run_cli, CASES[n], dirs[n]) for n in names}
        return {n: f.result() for n, f in futures.items()}


def python_error(case: Case, folder: Path) -> TVAEError:
    """The error ``case.python()`` raises when run in ``folder`` with the case's environment."""
    saved_cwd, saved_env = Path.cwd(), dict(os.environ)
    os.chdir(folder)
    os.environ.update(case.env)
    try:
        case.python()
    except TVAEError as exc:
        return exc
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    raise AssertionError(f"{case.what}: no TVAEError raised from Python")


# ----------------------------------------------------------------------- appendix ----
def table(runs: dict[str, CliRun]) -> str:
    """The appendix's markdown table of the cases (messages as the code prints them)."""
    rows = ["| Case | Example | Error (exit status) | Message |", "|---|---|---|---|"]
    for name, case in CASES.items():
        if name not in runs:
            continue
        r = runs[name]
        exit_ = "papermill fails" if case.papermill else f"exit {r.rc}"
        rows.append(f"| {case.what} | {code(case.command())} | `{case.error.__name__}` ({exit_}) "
                    f"| {code(r.message)} |")
    return "\n".join(rows)


def code(text: str) -> str:
    """``text`` as a markdown code span (double backticks: messages may hold single ones)."""
    assert "|" not in text and "``" not in text, text
    return f"`` {text} ``"


def appendix_rows(path: Path = APPENDIX) -> dict[str, tuple[str, str]]:
    """Case description -> (command, message) as written in the appendix's table."""
    text = path.read_text()
    body = text.split(START, 1)[1].split(END, 1)[0]
    rows = {}
    for line in body.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        rows[cells[0]] = (cells[1], cells[3])
    return rows


def write_appendix(runs: dict[str, CliRun], path: Path = APPENDIX) -> None:
    text = path.read_text()
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(f"{head}{START}\n{table(runs)}\n{END}{tail}")


# -------------------------------------------------------------------------- tests ----
def _active() -> list[str]:
    return [n for n, c in CASES.items() if not (c.needs_no_cuda and torch.cuda.is_available())]


@pytest.fixture(scope="module")
def env_data(mnist_root: Path):
    old = os.environ.get("TVAE_DATA")
    os.environ["TVAE_DATA"] = str(mnist_root)
    yield mnist_root
    if old is None:
        os.environ.pop("TVAE_DATA")
    else:
        os.environ["TVAE_DATA"] = old


@pytest.fixture(scope="module")
def base(tmp_path_factory, env_data) -> Path:
    return tmp_path_factory.mktemp("errors")


@pytest.fixture(scope="module")
def runs(base: Path) -> dict[str, CliRun]:
    return run_all_cli(base, _active())


def test_at_least_twelve_cases() -> None:
    assert len(CASES) >= 12
    assert {c.error for c in CASES.values()} >= {ConfigError, DataError, CheckpointError, DeviceError}


@pytest.mark.parametrize("name", list(CASES))
def test_cli(name: str, runs: dict[str, CliRun]) -> None:
    if name not in runs:
        pytest.skip("CUDA is available here")
    case, r = CASES[name], runs[name]
    assert r.rc != 0, r.stdout
    assert "Traceback" not in r.stderr or case.papermill
    assert r.after == r.before, "files or folders were written or changed"
    assert r.message, r.stderr
    if not case.papermill:
        assert r.rc == case.error.exit_code
        assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("tvae: error: "), r.stderr
        assert r.stdout == ""
    # the message names a fix: a flag, a variable or an action to take
    assert any(w in r.message for w in ("--", "TVAE_DATA", "delete", "retrain", "use ", "pass ",
                                        "choose", "-p ")), r.message


@pytest.mark.parametrize("name", list(CASES))
def test_python_same_error_and_message(name: str, runs: dict[str, CliRun], base: Path) -> None:
    if name not in runs:
        pytest.skip("CUDA is available here")
    case = CASES[name]
    folder = base / "py" / name
    before = snapshot(folder, dirs=False)
    exc = python_error(case, folder)
    assert type(exc) is case.error
    assert normalise(str(exc), folder) == runs[name].message
    assert "\n" not in str(exc)
    assert snapshot(folder, dirs=False) == before  # (a failed download may leave empty folders)


def test_resume_other_config_leaves_checkpoint_intact(runs: dict[str, CliRun]) -> None:
    r = runs["resume-other-config"]
    assert r.after["model.pt"] == r.before["model.pt"]
    assert "zdim 2 vs 3" in r.message


def test_offline_fails_fast(base: Path) -> None:
    """The missing-data error comes at once when offline (no retry loop)."""
    import time

    folder = base / "offline-timing"
    folder.mkdir()
    (folder / "empty").mkdir()
    t0 = time.monotonic()
    exc = python_error(CASES["offline"], folder)
    assert time.monotonic() - t0 < 5.0
    assert isinstance(exc, DataError) and "TVAE_DATA" in str(exc)


def test_appendix_matches_the_code(runs: dict[str, CliRun]) -> None:
    rows = appendix_rows()
    assert set(rows) == {c.what for c in CASES.values()}, "appendix and CASES list different cases"
    for name, r in runs.items():
        case = CASES[name]
        command, message = rows[case.what]
        assert message == code(r.message), (
            f"appendix message of {case.what!r} is stale; regenerate: python tests/test_errors.py --write")
        assert command == code(case.command())


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Regenerate (--write) or print the appendix's table.")
    ap.add_argument("--write", action="store_true", help=f"rewrite the table in {APPENDIX}")
    args = ap.parse_args()
    os.environ.setdefault("TVAE_DATA", str(REPO.parent / "shared" / "data"))
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        result = run_all_cli(Path(tmp), _active())
    if args.write:
        write_appendix(result)
        print(f"wrote {len(result)} cases to {APPENDIX}")
    else:
        print(table(result))
