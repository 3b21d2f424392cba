"""The book's record: a finished build's executed chapters, kept in git, readable without running.

    python scripts/record.py finish --profile P [-p NAME VALUE ...] --build _build/P
    python scripts/record.py make   --profile P [-p NAME VALUE ...] --build _build/P [--out DIR]
    python scripts/record.py stage  RECORD STAGE

``finish`` (the last step of ``make html``) ties a build's numbers to its pages: it names the
*run* by a content hash, the **run id** (:func:`run_id`: the profile's results name and the
first 12 hex digits of a SHA-256 over the SHA-256 of every CSV in ``results/<name>/``, every
executed chapter and every file of the explorer's static folder), and writes it with the
commit, the date, the machine, the seeds and the timings into ``results/<name>/RUN.json``
(the CSVs' companion) and ``_build/P/build.json``. RUN.json is left as it is when the run id
has not changed (a no-op rebuild keeps the run's own date and wall time).

``make`` (``make record``) copies the finished build into ``record/<name>/``: the executed
chapters with their outputs (figures are embedded in them), the explorer's exported weights
and scripts, the widget JavaScript and MathJax the pages load (so the record builds and reads
offline) and ``RECORD.json`` (RUN.json's fields plus what was copied). It refuses, with one
line and writing nothing, when the build is unfinished, when the stage or the CSVs changed
after ``finish`` (their run id no longer matches RUN.json's), or when the record would exceed
:data:`MAX_BYTES`.

``stage`` (``make read``) makes a Jupyter Book source tree from a record, like
``scripts/stage_book.py`` does from a build: the record's chapters, the current book's text
files, config and toc, and a note on the landing page stating the run that produced the
record; when the record's MODEL_VERSION is older than the code's it prints one line and the
note says the record is stale and how to refresh it. Nothing is executed or trained.

Errors are one line on stderr and exit status 1 (:class:`RecordError`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import run_chapter  # noqa: E402
import stage_book  # noqa: E402

RECORD_FORMAT = 1
"""Version of RECORD.json's layout (bump when a field changes meaning)."""
MAX_BYTES = 25_000_000
"""Largest record allowed (25 MB, decimal): it is committed, so every clone carries it."""
RUN_FILE = "RUN.json"
"""The CSVs' companion in ``results/<name>/``: the run id and how the run was made."""
RECORD_FILE = "RECORD.json"
BUILD_START = "build-start"
"""Written by the Makefile when a build starts (seconds since the epoch)."""
VENDOR = {"widgets_js": stage_book.WIDGET_FILES, "mathjax": stage_book.MATHJAX_FILES}
"""Fetched JavaScript the pages load (folder under ``_build/`` -> files that must be there)."""
NOTE_START, NOTE_END = "<!-- record-note -->", "<!-- /record-note -->"


class RecordError(Exception):
    """A record cannot be made or read; the message says why and what to run."""


# ---------------------------------------------------------------- helpers ----
def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def chapters() -> list[str]:
    """The book's chapter files, found like the Makefile finds them."""
    return sorted(p.name for p in (ROOT / "book").glob("[0-9][0-9]_*.ipynb"))


def model_version() -> int:
    from tvae.train import MODEL_VERSION

    return MODEL_VERSION


def resolve_profile(profile: str, params: list[tuple[str, str]]):
    """The :class:`tvae.profiles.Profile` of a build's ``--profile`` and ``-p`` parameters."""
    from tvae.profiles import resolve

    kw = {k: run_chapter.parse_value(v) for k, v in params if k in
          ("seed", "seeds", "epochs", "device", "data_dir", "train_size")}
    return resolve(profile, **kw)


def run_files(results: Path, stage: Path) -> dict[str, str]:
    """What a run id covers: relative name -> SHA-256, for the results' CSVs (``results/...``),
    the executed chapters and the explorer's static files (``book/...``)."""
    files = {}
    for p in sorted(results.glob("*.csv")):
        files[f"results/{p.name}"] = sha256(p)
    book = stage / "book"
    for p in sorted(book.glob("[0-9][0-9]_*.ipynb")):
        files[f"book/{p.name}"] = sha256(p)
    static = book / "explorer_static"
    if static.is_dir():
        for p in sorted(static.rglob("*")):
            if p.is_file():
                files[f"book/{p.relative_to(book).as_posix()}"] = sha256(p)
    return files


def run_id(results_name: str, files: dict[str, str]) -> str:
    """``<results name>-<12 hex digits>``: the same CSVs and pages give the same id."""
    h = hashlib.sha256("".join(f"{k} {v}\n" for k, v in sorted(files.items())).encode())
    return f"{results_name}-{h.hexdigest()[:12]}"


def git_commit() -> dict:
    def git(*args):
        r = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def machine(device: str | None) -> dict:
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except Exception:  # no torch, or a broken driver: no GPU to report
        gpu = None
    return {"cpu": cpu or platform.processor() or platform.machine(),
            "cores": _cores(), "gpu": gpu, "device": device or ("cuda" if gpu else "cpu"),
            "os": platform.platform(), "python": platform.python_version()}


def seeds(profile) -> dict:
    """Every seed setting of the profile (fields whose name contains ``seed``)."""
    import dataclasses

    return {f.name: getattr(profile, f.name) for f in dataclasses.fields(profile)
            if "seed" in f.name}


def chapter_times(stage: Path) -> dict[str, float]:
    """Execution seconds of each executed chapter (papermill's own ``duration``)."""
    out = {}
    for p in sorted((stage / "book").glob("[0-9][0-9]_*.ipynb")):
        meta = json.loads(p.read_text()).get("metadata", {}).get("papermill", {})
        if meta.get("duration") is not None:
            out[p.stem] = round(float(meta["duration"]), 1)
    return out


def training_seconds(results: Path) -> float | None:
    """Sum of the models' training times in ``training.csv`` (``train_seconds``), if any."""
    import csv

    path = results / "training.csv"
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    vals = [float(r["train_seconds"]) for r in rows if r.get("train_seconds")]
    return round(sum(vals), 1) if vals else None


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds:,.0f} s ({seconds / 3600:.1f} h)" if seconds >= 3600 else \
        f"{seconds:,.0f} s ({seconds / 60:.1f} min)"


# ----------------------------------------------------------------- finish ----
def finish(profile_name: str, params: list[tuple[str, str]], build: Path,
           results_root: Path | None = None) -> dict:
    """Write ``results/<name>/RUN.json`` and ``<build>/build.json`` for a finished build."""
    end = time.time()
    profile = resolve_profile(profile_name, params)
    results = (results_root or ROOT / "results") / profile.results_name
    stage = build / "stage"
    start_file = build / BUILD_START
    start = float(start_file.read_text().strip()) if start_file.is_file() else None
    wall = round(end - start, 1) if start is not None else None
    files = run_files(results, stage)
    rid = run_id(profile.results_name, files)
    build_info = {"run_id": rid, "profile": profile_name, "results_name": profile.results_name,
                  "started": (dt.datetime.fromtimestamp(start, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                              if start else None),
                  "finished": _now(), "wall_s": wall}
    _write_json(build / "build.json", build_info)
    run_path = results / RUN_FILE
    if run_path.is_file():
        old = json.loads(run_path.read_text())
        if old.get("run_id") == rid:
            return old
    run = {
        "run_id": rid,
        "profile": profile_name,
        "results_name": profile.results_name,
        "parameters": {k: run_chapter.parse_value(v) for k, v in params},
        "finished": build_info["finished"],
        **git_commit(),
        "model_version": model_version(),
        "seeds": seeds(profile),
        "machine": machine(profile.device),
        "wall_time": {
            "build_s": wall,
            "build_note": "wall time of the make invocation that finished this run (chapters "
                          "and models already done by earlier invocations are not in it)",
            "chapters_s": round(sum(chapter_times(stage).values()), 1),
            "per_chapter_s": chapter_times(stage),
            "training_s": training_seconds(results),
            "training_note": "sum of the models' train_seconds in training.csv (workers run "
                             "in parallel; cached models count their original training)",
        },
        "files": files,
    }
    _write_json(run_path, run)
    return run


# ------------------------------------------------------------------- make ----
def _vendor_dirs() -> dict[str, Path]:
    return {name: ROOT / "_build" / name for name in VENDOR}


def record_plan(profile_name: str, params: list[tuple[str, str]], build: Path,
                results_root: Path | None = None) -> tuple[dict, list[tuple[Path, str]]]:
    """(RUN.json of the build, [(source file, path in the record)]); RecordError when the build
    is not a finished one."""
    profile = resolve_profile(profile_name, params)
    results = (results_root or ROOT / "results") / profile.results_name
    stage = build / "stage"
    book = stage / "book"
    build_cmd = "make book" if profile_name == "paper" else f"make PROFILE={profile_name} html"
    missing = [Path(c).stem for c in chapters() if not (book / c).is_file()]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise RecordError(f"{book} lacks {shown}: run `{build_cmd}` first")
    run_path = results / RUN_FILE
    if not run_path.is_file():
        raise RecordError(f"{run_path} is missing: the build did not finish; run `{build_cmd}` first")
    run = json.loads(run_path.read_text())
    rid = run_id(profile.results_name, run_files(results, stage))
    if run.get("run_id") != rid:
        raise RecordError(f"{stage} or {results} changed after the build finished (run id "
                          f"{rid}, RUN.json says {run.get('run_id')}); run `{build_cmd}` again")
    plan = [(book / c, f"book/{c}") for c in chapters()]
    static = book / "explorer_static"
    if static.is_dir():
        plan += [(p, f"book/{p.relative_to(book).as_posix()}") for p in sorted(static.rglob("*"))
                 if p.is_file()]
    for name, folder in _vendor_dirs().items():
        if not all((folder / f).is_file() for f in VENDOR[name]):
            raise RecordError(f"{folder} is missing: the record serves its JavaScript itself; "
                              f"run `make book-js` (needs npm) first")
        plan += [(p, f"vendor/{name}/{p.relative_to(folder).as_posix()}")
                 for p in sorted(folder.rglob("*")) if p.is_file()]
    return run, plan


def make_record(profile_name: str, params: list[tuple[str, str]], build: Path,
                out: Path | None = None, results_root: Path | None = None,
                max_bytes: int = MAX_BYTES) -> dict:
    """Copy a finished build into ``out`` (default ``record/<results name>``); returns
    RECORD.json's content."""
    run, plan = record_plan(profile_name, params, build, results_root)
    out = out or ROOT / "record" / run["results_name"]
    total = sum(src.stat().st_size for src, _ in plan)
    if total > max_bytes:
        biggest = sorted(plan, key=lambda p: -p[0].stat().st_size)[:3]
        big = ", ".join(f"{rel} {src.stat().st_size / 1e6:.1f} MB" for src, rel in biggest)
        raise RecordError(f"the record would be {total / 1e6:.1f} MB, over the "
                          f"{max_bytes / 1e6:.0f} MB limit (largest: {big}); nothing written")
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for src, rel in plan:
        dest = tmp / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    record = {
        "record_format": RECORD_FORMAT,
        **{k: v for k, v in run.items() if k != "files"},
        "recorded": _now(),
        "size_bytes": total,
        "chapters": [Path(c).stem for c in chapters()],
        "run_files": run["files"],
        "record_files": {rel: sha256(tmp / rel) for _, rel in plan},
    }
    _write_json(tmp / RECORD_FILE, record)
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.replace(old)
    tmp.replace(out)
    shutil.rmtree(old, ignore_errors=True)
    return record


# ------------------------------------------------------------------ stage ----
def read_record(record: Path) -> dict:
    path = record / RECORD_FILE
    if not path.is_file():
        raise RecordError(f"no record at {record} ({RECORD_FILE} missing): run `make book`, "
                          "then `make record`, or name one with `make read RECORD=record/<name>`")
    return json.loads(path.read_text())


def stale_line(meta: dict, code_version: int) -> str | None:
    """One line when the record's MODEL_VERSION differs from the code's, else None."""
    made = meta.get("model_version")
    if made == code_version:
        return None
    return (f"record {meta.get('run_id')}: made with MODEL_VERSION {made}, the code is at "
            f"{code_version}; its pages show the older models' numbers (refresh: `make book`, "
            "then `make record`)")


def landing_note(meta: dict, stale: str | None, missing: list[str]) -> str:
    """The MyST block put at the top of the landing page of a book built from a record."""
    m = meta.get("machine", {})
    w = meta.get("wall_time", {})
    gpu = m.get("gpu") or "none"
    commit = (meta.get("commit") or "unknown")[:12] + (" (with uncommitted changes)"
                                                      if meta.get("dirty") else "")
    seed_text = ", ".join(f"{k} {v}" for k, v in sorted(meta.get("seeds", {}).items())) or "not recorded"
    lines = [NOTE_START, ""]
    if stale or missing:
        lines += ["```{warning}", "**This record is stale.**"]
        if stale:
            lines += [f"It was made with model version {meta.get('model_version')} and the code "
                      f"is at {model_version()}: its pages show the older models' numbers."]
        if missing:
            lines += [f"It has no page for {', '.join(missing)} (chapters added since)."]
        lines += ["Refresh it with `make book`, then `make record`.", "```", ""]
    lines += [
        "```{admonition} This book was built from its record",
        ":class: note",
        f"The pages below were executed by the run **{meta.get('run_id')}** and read back by "
        "`make read`, which executes and trains nothing; their numbers are those of "
        f"`results/{meta.get('results_name')}/` (the same run id is in its `RUN.json`).",
        "",
        f"- profile **{meta.get('profile')}**, seeds: {seed_text}",
        f"- commit `{commit}`, run finished {meta.get('finished')}, "
        f"model version {meta.get('model_version')}",
        f"- machine: {m.get('cpu')} ({m.get('cores')} cores), GPU: {gpu}, device "
        f"{m.get('device')}",
        f"- wall time: build {_fmt_s(w.get('build_s'))}; chapters "
        f"{_fmt_s(w.get('chapters_s'))}; model training (training.csv) "
        f"{_fmt_s(w.get('training_s'))}",
        "```",
        "",
        NOTE_END,
        "",
    ]
    return "\n".join(lines)


def _insert_note(index_md: str, note: str) -> str:
    """``index_md`` with ``note`` after its first heading (before the text if none)."""
    lines = index_md.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("# "):
            return "".join(lines[: i + 1]) + "\n" + note + "".join(lines[i + 1:])
    return note + index_md


def stage_record(record: Path, stage: Path) -> dict:
    """Fill ``stage`` (a Jupyter Book source tree) from ``record``; returns what was done."""
    meta = read_record(record)
    book = stage / "book"
    rec_book = record / "book"
    missing = [Path(c).stem for c in chapters() if not (rec_book / c).is_file()]
    # The record's pages and the explorer's files, then the book's text, config and toc.
    wanted = set()
    for src in sorted(rec_book.rglob("*")):
        if src.is_file():
            rel = src.relative_to(rec_book)
            wanted.add(rel)
            stage_book._copy_if_changed(src, book / rel)
    static = book / "explorer_static"
    if static.is_dir():
        for f in list(static.rglob("*")):
            if f.is_file() and f.relative_to(book) not in wanted:
                f.unlink()
    vendor = {name: record / "vendor" / name for name in VENDOR}
    stage_book.stage(stage, vendor["widgets_js"], vendor["mathjax"])
    if missing:  # chapters newer than the record: left out of the toc (else -W fails)
        import yaml

        def keep(node):
            if isinstance(node, list):
                return [keep(n) for n in node
                        if not (isinstance(n, dict) and Path(n.get("file", "")).name in missing)]
            if isinstance(node, dict):
                return {k: keep(v) for k, v in node.items()}
            return node

        toc = keep(yaml.safe_load((ROOT / "_toc.yml").read_text()))
        stage_book._write_if_changed(stage / "_toc.yml", yaml.safe_dump(toc, sort_keys=False))
    stale = stale_line(meta, model_version())
    note = landing_note(meta, stale, missing)
    index = book / "index.md"
    stage_book._write_if_changed(index, _insert_note((ROOT / "book" / "index.md").read_text(), note))
    return {"meta": meta, "stale": stale, "missing": missing}


# -------------------------------------------------------------------- CLI ----
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("finish", "make"):
        p = sub.add_parser(name)
        p.add_argument("--profile", required=True)
        p.add_argument("-p", "--param", nargs=2, action="append", default=[],
                       metavar=("NAME", "VALUE"))
        p.add_argument("--build", type=Path, required=True)
        if name == "make":
            p.add_argument("--out", type=Path, default=None)
    p = sub.add_parser("stage")
    p.add_argument("record", type=Path)
    p.add_argument("stage", type=Path)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "finish":
            run = finish(args.profile, [tuple(x) for x in args.param], args.build.resolve())
            print(f"run {run['run_id']}: {ROOT / 'results' / run['results_name'] / RUN_FILE}")
        elif args.cmd == "make":
            rec = make_record(args.profile, [tuple(x) for x in args.param], args.build.resolve(),
                              args.out.resolve() if args.out else None)
            out = args.out or Path("record") / rec["results_name"]
            print(f"record {rec['run_id']}: {out} ({rec['size_bytes'] / 1e6:.1f} MB, "
                  f"{len(rec['chapters'])} chapters)")
        else:
            done = stage_record(args.record.resolve(), args.stage.resolve())
            if done["stale"]:
                print(f"make read: {done['stale']}", flush=True)
            if done["missing"]:
                print(f"make read: record {done['meta'].get('run_id')} has no page for "
                      f"{', '.join(done['missing'])}; left out of this book", flush=True)
    except RecordError as exc:
        print(f"record: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TVAE_PROGRESS", "0")
    sys.exit(main())
