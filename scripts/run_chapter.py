"""Execute one chapter notebook with papermill.

    python scripts/run_chapter.py SRC OUT --profile smoke [-p NAME VALUE ...] [--static-dir DIR]

- Runs ``SRC`` on the ``python3`` kernel of the interpreter running this script (the
  project's ``.venv``) with the working directory at the repository root, injecting
  ``profile`` and every ``-p NAME VALUE`` (values parsed as Python literals when they are
  one: ``-p epochs 3`` gives an int, ``-p device cpu`` a string).
- ``--static-dir DIR`` passes ``static_dir`` (the explorer chapter writes its weights and
  JavaScript there).
- The notebook must have a cell tagged ``parameters``.
- Shows the parameters once: papermill leaves the notebook's defaults cell (tagged
  ``parameters``) and adds the cell it injected (tagged ``injected-parameters``). The executed
  notebook's defaults cell is rewritten to hold the values that produced the page (each
  injected value replaces the default it overrides; a name without a default is appended), and
  the injected cell gets the ``remove-cell`` tag, so the rendered chapter shows one parameters
  cell. See :func:`show_parameters_once`.
- Writes ``OUT`` atomically: on failure ``OUT`` is left as it was (so ``make`` re-runs the
  chapter next time) and the partly executed notebook is kept as ``NAME.failed.ipynb`` in
  ``--work-dir``.
- Under ``make -jN`` (read from ``$MAKEFLAGS``) exports ``TVAE_THREADS = cores // N`` (at
  least 1; :func:`tvae.runtime.threads_per_job`, the package's one thread policy) to the
  kernel unless ``TVAE_THREADS`` is already set, so that parallel chapters do not
  oversubscribe the cores; without ``-j`` it is left unset.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
import time
from pathlib import Path

import nbformat

from tvae.runtime import THREADS_ENV, cores, threads_per_job

ROOT = Path(__file__).resolve().parent.parent


def make_jobs(makeflags: str) -> int | None:
    """The ``-j`` level in a ``$MAKEFLAGS`` value: N for ``-jN``/``--jobs=N``, 0 for an
    unlimited ``-j``, None when make runs serially."""
    # MAKEFLAGS looks like "w -j2 --jobserver-auth=3,4 -- VAR=x"; single-letter flags may be
    # bundled in the first word ("ks"), so only the dash-prefixed words matter here.
    words = makeflags.split(" -- ")[0].split()
    jobs = None
    for w in words:
        m = re.fullmatch(r"-j(\d*)|--jobs(?:=(\d+))?", w)
        if m:
            n = m.group(1) or m.group(2)
            jobs = int(n) if n else 0
    return jobs


def thread_budget(makeflags: str, ncores: int) -> int | None:
    """Torch threads per chapter under parallel make (None: serial make, leave unset)."""
    jobs = make_jobs(makeflags)
    if jobs is None or jobs == 1:
        return None
    if jobs == 0:  # unlimited -j: every chapter may run at once
        return 1
    return threads_per_job(jobs, ncores)


def parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def has_parameters_cell(path: Path) -> bool:
    nb = nbformat.read(path, as_version=4)
    return any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells)


MERGED_NOTE = "# Parameters of this run (papermill set: {names})"
"""First line of the merged parameters cell: says which values papermill injected, so a reader
can tell the run's values from the notebook's defaults."""


def _offset(lines: list[str], lineno: int, col: int) -> int:
    """Character offset in ``"".join(lines)`` of an ast position (1-based line, UTF-8 byte
    column)."""
    line = lines[lineno - 1]
    return sum(len(x) for x in lines[: lineno - 1]) + len(line.encode()[:col].decode())


def _assignments(src: str) -> dict[str, ast.expr]:
    """Top-level ``name = value`` statements of ``src``: name -> value node (last one wins)."""
    out = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = node.value
    return out


def merge_parameters(defaults: str, injected: str) -> str:
    """The defaults cell's source with each value papermill injected in place of its default.

    ``defaults`` and ``injected`` are the sources of the ``parameters`` and
    ``injected-parameters`` cells. Comments and layout of the defaults are kept; an injected
    name the defaults do not assign is appended at the end. Raises SyntaxError when either
    source is not Python.
    """
    new_values = {name: ast.get_source_segment(injected, node)
                  for name, node in _assignments(injected).items()}
    old = _assignments(defaults)
    lines = defaults.splitlines(keepends=True)
    edits = []
    for name, node in old.items():
        if name in new_values:
            start = _offset(lines, node.lineno, node.col_offset)
            end = _offset(lines, node.end_lineno, node.end_col_offset)
            edits.append((start, end, new_values[name]))
    out = defaults
    for start, end, text in sorted(edits, reverse=True):
        out = out[:start] + text + out[end:]
    extra = [f"{name} = {value}" for name, value in new_values.items() if name not in old]
    if extra:
        out = out.rstrip("\n") + "\n" + "\n".join(extra)
    header = MERGED_NOTE.format(names=", ".join(new_values) or "nothing")
    return header + "\n" + out


def show_parameters_once(nb) -> str:
    """Leave one visible parameters cell in the executed notebook ``nb`` (in place).

    Returns what was done: ``"merged"`` (defaults cell rewritten with the injected values,
    injected cell tagged ``remove-cell``), ``"kept-injected"`` (a source that does not parse:
    the defaults cell is tagged ``remove-cell`` and papermill's cell stays) or ``"unchanged"``
    (no injected cell)."""
    def tagged(tag):
        return next((c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])), None)

    defaults, injected = tagged("parameters"), tagged("injected-parameters")
    if injected is None or defaults is None:
        return "unchanged"
    try:
        merged = merge_parameters(defaults.source, injected.source)
        hide, status = injected, "merged"
        defaults.source = merged
    except SyntaxError:
        hide, status = defaults, "kept-injected"
    tags = hide.metadata.setdefault("tags", [])
    if "remove-cell" not in tags:
        tags.append("remove-cell")
    return status


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Execute one chapter notebook with papermill.")
    ap.add_argument("src", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--profile", required=True)
    ap.add_argument("-p", "--param", nargs=2, action="append", default=[],
                    metavar=("NAME", "VALUE"))
    ap.add_argument("--static-dir", type=Path, default=None)
    ap.add_argument("--kernel", default="python3")
    ap.add_argument("--cwd", type=Path, default=ROOT,
                    help="working directory of the kernel (default: the repository root)")
    ap.add_argument("--work-dir", type=Path, default=None,
                    help="where the running and failed notebooks go (default: OUT's folder/.runs)")
    args = ap.parse_args(argv)

    src, out = args.src.resolve(), args.out.resolve()
    name = src.stem
    if not has_parameters_cell(src):
        print(f"run_chapter: {src} has no cell tagged 'parameters'", file=sys.stderr)
        return 2

    params = {"profile": args.profile}
    for key, value in args.param:
        params[key] = parse_value(value)
    cwd = args.cwd.resolve()
    if args.static_dir is not None:
        static = args.static_dir.resolve()
        static.mkdir(parents=True, exist_ok=True)
        # Relative to the kernel's cwd when inside it: the path is shown in the book.
        params["static_dir"] = str(static.relative_to(cwd) if static.is_relative_to(cwd) else static)

    # The kernel: ipykernel of this interpreter. A kernelspec installed with --sys-prefix
    # lives in <venv>/share/jupyter; put it first on the search path so that a `python3`
    # kernelspec in the user's home cannot point the chapters at another Python.
    venv_share = Path(sys.prefix) / "share" / "jupyter"
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        p for p in (str(venv_share), os.environ.get("JUPYTER_PATH", "")) if p
    )
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    threads = None
    # Training bars would end up as stray lines in the rendered pages; papermill's own cell
    # progress bar still shows on the terminal.
    os.environ.setdefault("TVAE_PROGRESS", "0")
    if not os.environ.get(THREADS_ENV):
        threads = thread_budget(os.environ.get("MAKEFLAGS", ""), cores())
        if threads is not None:
            os.environ[THREADS_ENV] = str(threads)
    # Figures must come out as inline outputs whatever backend the caller's environment names.
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

    import papermill as pm  # after the environment above is set: its kernel manager reads it

    out.parent.mkdir(parents=True, exist_ok=True)
    work = (args.work_dir or out.parent / ".runs").resolve()
    work.mkdir(parents=True, exist_ok=True)
    tmp = work / f"{out.stem}.running.ipynb"
    failed = work / f"{out.stem}.failed.ipynb"
    shown = " ".join(f"{k}={v!r}" for k, v in params.items())
    thr = os.environ.get(THREADS_ENV, "default")
    print(f"[{args.profile}] {name}: running ({shown}; TVAE_THREADS={thr})", flush=True)
    t0 = time.monotonic()
    try:
        pm.execute_notebook(
            str(src),
            str(tmp),
            parameters=params,
            kernel_name=args.kernel,
            cwd=str(cwd),
            progress_bar=False,
            log_output=False,
            report_mode=False,
        )
        import nbformat

        nb = nbformat.read(tmp, as_version=4)
        show_parameters_once(nb)
        nbformat.write(nb, tmp)
    except Exception as exc:  # papermill raises PapermillExecutionError with the traceback
        if tmp.exists():
            tmp.replace(failed)
        dt = time.monotonic() - t0
        print(f"[{args.profile}] {name}: FAILED after {dt:.1f} s; partial notebook: {failed}\n"
              f"{exc}", file=sys.stderr, flush=True)
        return 1
    # Not tvae.io.atomic_path: papermill writes the notebook as it runs, to a file that is
    # kept (as NAME.failed.ipynb) when a cell fails; renamed over OUT only on success (same
    # file system: _build/<profile>/).
    os.replace(tmp, out)
    failed.unlink(missing_ok=True)
    print(f"[{args.profile}] {name}: done in {time.monotonic() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
