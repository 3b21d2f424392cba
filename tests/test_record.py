"""The book's record (scripts/record.py; `make record`, `make read`), on the smoke profile.

A smoke record is made in the test session from the smoke build that ``make test`` has just
finished (the stage beside ``$TVAE_BOOK_HTML``, see conftest.py), into a temporary folder:

- its run id is the one in ``results/smoke/RUN.json`` and is recomputed here, independently,
  from the record's pages and the CSVs: the pages and the CSVs come from one run;
- numbers the record's chapters print are found in the CSVs those chapters write, and numbers
  of a shifted copy of the CSVs are not (so the check can fail);
- both checks also run on every committed record (``record/<name>/`` against the committed
  ``results/<name>/``: the paper record once it is made);
- the record refuses a changed CSV, an unfinished build and a size over the limit, writing
  nothing;
- ``make read`` builds the HTML from a copy of the record marked with an older MODEL_VERSION,
  training and executing nothing (an empty model cache stays empty, no chapter runs), prints
  one stale line, puts the stale note and the run's facts on the landing page, and its
  explorer works from the file system, offline.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

import record as R  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PROFILE = "smoke"
RESULTS = REPO / "results" / PROFILE


@pytest.fixture(scope="module")
def build(book_html) -> Path:
    """The smoke build folder (``_build/smoke``) of the book under test."""
    build = book_html.parent
    assert (build / "stage" / "book").is_dir(), f"no stage beside {book_html}"
    return build


@pytest.fixture(scope="module")
def smoke_record(build, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("record") / PROFILE
    R.make_record(PROFILE, [], build, out=out)
    return out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------- the run id ----
COMMITTED = sorted(p.parent for p in (REPO / "record").glob("*/RECORD.json"))
"""Records committed in the repository (record/paper once the paper run has made it)."""


def _records(smoke_record) -> list[tuple[Path, Path]]:
    """(record, its results folder): the smoke record made here and every committed one."""
    out = [(smoke_record, RESULTS)]
    for rec in COMMITTED:
        name = json.loads((rec / "RECORD.json").read_text())["results_name"]
        out.append((rec, REPO / "results" / name))
    return out


def test_run_id_ties_pages_to_csvs(smoke_record):
    for record, results in _records(smoke_record):
        _check_run_id(record, results)
    meta = json.loads((smoke_record / "RECORD.json").read_text())
    assert meta["profile"] == PROFILE and meta["model_version"] == R.model_version()
    assert meta["seeds"]["seed"] == 0


def _check_run_id(record: Path, results: Path) -> None:
    meta = json.loads((record / "RECORD.json").read_text())
    run = json.loads((results / "RUN.json").read_text())
    assert meta["run_id"] == run["run_id"], f"{record}: not the run of {results}"
    name = meta["results_name"]
    assert meta["run_id"].startswith(f"{name}-")
    # Recomputed here: SHA-256 of "name sha\n" lines over the CSVs, the record's chapters and
    # its explorer files, sorted by name.
    files = {f"results/{p.name}": _sha(p) for p in results.glob("*.csv")}
    for p in (record / "book").rglob("*"):
        if p.is_file() and (p.suffix == ".ipynb" or "explorer_static" in p.parts):
            files[p.relative_to(record).as_posix()] = _sha(p)
    digest = hashlib.sha256("".join(f"{k} {files[k]}\n" for k in sorted(files)).encode())
    assert meta["run_id"] == f"{name}-{digest.hexdigest()[:12]}", f"{record}: files changed"
    assert files == meta["run_files"]
    # What the record says about the run.
    assert isinstance(meta["model_version"], int) and meta["seeds"]
    assert meta["machine"]["cpu"] and meta["machine"]["cores"] >= 1
    assert meta["wall_time"]["chapters_s"] > 0
    assert set(meta["wall_time"]["per_chapter_s"]) == set(meta["chapters"])
    assert re.fullmatch(r"[0-9a-f]{40}", meta["commit"] or ""), meta["commit"]
    # Every file the record holds is listed with its checksum, and the size is their sum.
    held = {p.relative_to(record).as_posix(): p for p in record.rglob("*")
            if p.is_file() and p.name != "RECORD.json"}
    assert set(held) == set(meta["record_files"])
    assert all(_sha(p) == meta["record_files"][k] for k, p in held.items())
    assert meta["size_bytes"] == sum(p.stat().st_size for p in held.values())
    assert meta["size_bytes"] <= R.MAX_BYTES
    for needed in ("vendor/mathjax/tex-mml-chtml.js", "vendor/widgets_js/embed-amd.js",
                   "book/explorer_static/explorer.js", "book/explorer_static/manifest.js"):
        assert needed in held, f"{needed} is not in the record"


# -------------------------------------------------- numbers shown vs CSVs ----
NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*\.\d+")


def _shown_numbers(nb_path: Path) -> set[str]:
    """Decimal numbers in a chapter's text and HTML outputs, commas dropped."""
    nb = json.loads(nb_path.read_text())
    texts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            for mime in ("text/plain", "text/html", "text/markdown"):
                if mime in data:
                    texts.append("".join(data[mime]))
            if out.get("output_type") == "stream":
                texts.append("".join(out.get("text", "")))
    return {m.replace(",", "").lstrip("+") for m in NUMBER.findall("\n".join(texts))}


def _csv_values(path: Path, shift: float = 0.0) -> list[float]:
    """The CSV's non-integer numbers with |v| >= 1 (those a chapter would print rounded)."""
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            for v in row.values():
                try:
                    x = float(v)
                except (TypeError, ValueError):
                    continue
                if abs(x) >= 1 and x != int(x) and x == x:
                    out.append(x + shift)
    return out


def _match_rate(values: list[float], shown: set[str]) -> float:
    def seen(x):
        return any(f"{x:.{d}f}".lstrip("+") in shown for d in (1, 2, 3))

    return sum(seen(x) for x in values) / len(values)


def _writers(csv_name: str, record: Path) -> list[Path]:
    """The record's chapters whose text or code names the CSV file (the chapter writing it,
    and those reading it)."""
    out = []
    for nb in sorted((record / "book").glob("[0-9][0-9]_*.ipynb")):
        src = "".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"])
        if csv_name in src:
            out.append(nb)
    return out


def test_numbers_shown_come_from_the_csvs(smoke_record):
    """For Table 1 (chapter 08, table1.csv) every accuracy of the CSV is printed by the chapter,
    and for every CSV a chapter names, a good share of its values are printed; values shifted
    by 0.37 are (almost) never printed, so a match is not chance. Checked on the smoke record
    made here and on every committed record."""
    for record, results in _records(smoke_record):
        _check_numbers(record, results)


def _check_numbers(record: Path, results: Path) -> None:
    table1 = results / "table1.csv"
    shown08 = _shown_numbers(record / "book" / "08_table1.ipynb")
    with open(table1, newline="") as f:
        rows = list(csv.DictReader(f))
    tests = [float(r["test"]) for r in rows if r.get("test")]
    assert tests, "table1.csv has no test accuracies"
    missing = [x for x in tests if not any(f"{x:.{d}f}" in shown08 for d in (1, 2, 3))]
    assert not missing, f"test accuracies of table1.csv not shown by chapter 08: {missing}"

    checked = 0
    for path in sorted(results.glob("*.csv")):
        if path.name in PLOTTED_ONLY:
            continue
        # The chapters naming the CSV; all chapters when none does (the control below keeps
        # the check meaningful on the larger set of printed numbers).
        writers = _writers(path.name, record) or sorted((record / "book").glob("[0-9][0-9]_*.ipynb"))
        values = _csv_values(path)
        if not values:
            continue
        shown = set().union(*(_shown_numbers(nb) for nb in writers))
        rate, control = _match_rate(values, shown), _match_rate(_csv_values(path, 0.37), shown)
        assert rate > control + 0.2, (f"{path.name}: {rate:.0%} of its values shown by "
                                      f"{[nb.stem for nb in writers]}, {control:.0%} when shifted")
        checked += 1
    assert checked >= 5, f"only {checked} CSVs with printable values in {results}"
    _check_histories(results)


PLOTTED_ONLY = {"histories.csv"}
"""CSVs whose values the chapters plot rather than print (every model's per-epoch history):
checked against a printed CSV instead (:func:`_check_histories`)."""


def _check_histories(results: Path) -> None:
    """``histories.csv``'s last epoch of each model is the run that ``training.csv`` (whose
    numbers chapter 04 prints) reports: same models, same final test ELBO."""
    path = results / "histories.csv"
    if not path.exists():         # a record made before chapter 04 wrote it
        return
    with open(path, newline="") as f:
        last: dict[str, dict] = {}
        for r in csv.DictReader(f):
            last[r["label"]] = r                      # rows are in epoch order per model
    with open(results / "training.csv", newline="") as f:
        runs = {r["label"]: r for r in csv.DictReader(f)}
    assert set(last) == set(runs), "histories.csv and training.csv name different models"
    for label, r in runs.items():
        assert int(last[label]["epoch"]) == int(r["epochs"]), label
        assert float(last[label]["test_elbo"]) == pytest.approx(float(r["test_elbo"]), rel=1e-9), label


# -------------------------------------------------------- refusals ----
def test_record_refuses_changed_csv_and_writes_nothing(build, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results / PROFILE)
    csv_path = results / PROFILE / "table1.csv"
    csv_path.write_text(csv_path.read_text().replace("1", "2", 1))
    out = tmp_path / "rec"
    with pytest.raises(R.RecordError, match="changed after the build finished"):
        R.make_record(PROFILE, [], build, out=out, results_root=results)
    assert not out.exists()


def test_record_refuses_unfinished_build_and_oversize(build, tmp_path):
    with pytest.raises(R.RecordError, match="lacks .*make PROFILE=smoke html"):
        R.make_record(PROFILE, [], tmp_path / "no-build", out=tmp_path / "rec")
    with pytest.raises(R.RecordError, match=r"over the 0 MB limit.*nothing written") as err:
        R.make_record(PROFILE, [], build, out=tmp_path / "rec", max_bytes=1000)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "rec").exists()
    # The CLI: one line on stderr, exit status 1.
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "record.py"), "stage",
                        str(tmp_path / "none"), str(tmp_path / "stage")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "make record" in r.stderr


# ------------------------------------------------------------ make read ----
def test_stage_of_a_current_record_has_no_stale_note(smoke_record, tmp_path):
    done = R.stage_record(smoke_record, tmp_path / "stage")
    assert done["stale"] is None and done["missing"] == []
    index = (tmp_path / "stage" / "book" / "index.md").read_text()
    meta = json.loads((smoke_record / "RECORD.json").read_text())
    assert meta["run_id"] in index and "stale" not in index
    assert "make read" in index and meta["commit"][:12] in index
    staged = sorted(p.name for p in (tmp_path / "stage" / "book").glob("*.ipynb"))
    assert staged == R.chapters()
    for nb in staged:
        assert _sha(tmp_path / "stage" / "book" / nb) == meta["record_files"][f"book/{nb}"]


@pytest.fixture(scope="module")
def read_book(smoke_record, tmp_path_factory):
    """``make read`` of a copy of the smoke record marked as made by an older MODEL_VERSION,
    with an empty model cache. Returns (html root, make's stdout, seconds, cache folder)."""
    tmp = tmp_path_factory.mktemp("read")
    stale = tmp / "record-old"
    shutil.copytree(smoke_record, stale)
    meta = json.loads((stale / "RECORD.json").read_text())
    meta["model_version"] = R.model_version() - 1
    (stale / "RECORD.json").write_text(json.dumps(meta))
    cache = tmp / "cache"
    cache.mkdir()
    env = dict(os.environ, TVAE_CACHE=str(cache))
    for k in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS"):
        env.pop(k, None)
    # Offline for real where the machine allows it (root: a new network namespace with no
    # interface but loopback); the pages' own requests are checked offline in the browser below.
    offline = ["unshare", "-n"] if shutil.which("unshare") and subprocess.run(
        ["unshare", "-n", "true"], capture_output=True).returncode == 0 else []
    t0 = time.monotonic()
    r = subprocess.run([*offline, "make", "-C", str(REPO), "--no-print-directory", "read",
                        f"RECORD={stale}", f"READ_DIR={tmp / 'out'}"],
                       capture_output=True, text=True, env=env, timeout=900)
    seconds = time.monotonic() - t0
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    print(f"make read of the smoke record: {seconds:.0f} s{' (offline)' if offline else ''}")
    return tmp / "out" / "html", r.stdout + r.stderr, seconds, cache


def test_make_read_trains_and_executes_nothing(read_book):
    html, log, seconds, cache = read_book
    assert not any(cache.iterdir()), "make read wrote to the model cache"
    assert "run_chapter" not in log and "train_models" not in log and "papermill" not in log
    stale = [line for line in log.splitlines() if "MODEL_VERSION" in line]
    assert len(stale) == 1, stale
    assert stale[0].startswith("make read: record ") and "make record" in stale[0]
    for chapter in R.chapters():
        assert (html / "book" / chapter.replace(".ipynb", ".html")).is_file()


def test_read_book_landing_page_and_explorer(read_book):
    from playwright.sync_api import sync_playwright

    html, _, _, _ = read_book
    index = (html / "book" / "index.html").read_text()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", index))
    assert "This record is stale." in text
    assert "make book" in text and "make record" in text
    assert re.search(rf"run {PROFILE}-[0-9a-f]{{12}}", text)
    assert "profile smoke" in text and "machine:" in text and "wall time:" in text

    external, errors = [], []
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = b.new_page(viewport={"width": 1300, "height": 900})

        def route(r):
            if r.request.url.startswith(("file://", "data:", "blob:", "about:")):
                r.continue_()
            else:
                external.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((html / "book" / "13_explorer.html").as_uri())
        page.wait_for_function("window.tvaeExplorer && window.tvaeExplorer.instances.length > 0 "
                               "&& window.tvaeExplorer.timings.length > 0", timeout=20000)
        canvas = ("() => { const c = document.querySelectorAll('.tvae-explorer canvas'); "
                  "return c[c.length - 1].toDataURL(); }")
        before = page.evaluate(canvas)
        page.locator(".tvae-explorer input[type=range]").nth(0).focus()
        page.keyboard.press("End")
        after = page.evaluate(canvas)
        b.close()
    assert after != before, "moving a slider did not redraw the explorer"
    assert not errors, errors
    assert not external, f"requests leaving the machine: {external}"


def test_stage_of_a_record_missing_a_chapter(smoke_record, tmp_path):
    """A chapter added after the record was made: left out of the staged toc (so the build
    stays -W clean), named in one line and in the landing page's stale note."""
    import yaml

    partial = tmp_path / "record"
    shutil.copytree(smoke_record, partial)
    (partial / "book" / "12_rotated_mnist.ipynb").unlink()
    done = R.stage_record(partial, tmp_path / "stage")
    assert done["missing"] == ["12_rotated_mnist"] and done["stale"] is None
    toc = yaml.safe_load((tmp_path / "stage" / "_toc.yml").read_text())
    files = [c["file"] for c in toc["chapters"]]
    assert "book/12_rotated_mnist" not in files and "book/13_explorer" in files
    index = (tmp_path / "stage" / "book" / "index.md").read_text()
    assert "This record is stale." in index and "12_rotated_mnist" in index
