"""The built book, checked in a real browser (headless Debian Chromium driven by Playwright).

- Every chapter page of the built smoke book shows at least one figure (an ``img`` that
  decoded, or a ``canvas``), no error output, no traceback, and raises no JavaScript error,
  with the network cut off: the book must be self-contained.
- The landing page's equations are typeset by the book's own MathJax, offline.
- The ipywidgets JavaScript is served by the book itself (``book/widgets_js``) and renders a
  saved widget state offline, from ``file://`` and from ``python -m http.server``; checked on a
  one-page book built here with the same config and scripts as the real one, so it holds
  whichever chapters use widgets.
- The build helpers: the ``-j`` parsing that sets ``TVAE_THREADS``, and the staging.

The book under test is ``$TVAE_BOOK_HTML`` (``make test`` builds the smoke book first and sets
it); when unset, the fixture runs ``make smoke`` itself.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

import run_chapter  # noqa: E402
import stage_book  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The chapters, found like the Makefile finds them.
CHAPTERS = sorted(p.stem for p in (REPO / "book").glob("[0-9][0-9]_*.ipynb"))
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


# ------------------------------------------------------------------- fixtures ----
# book_html (the built smoke book) is in conftest.py: tests/test_record.py uses its stage too.


@pytest.fixture(scope="module")
def browser():
    # Module scope: Playwright's sync API allows one instance per thread at a time, and other
    # test modules (the explorer's browser test) start their own.
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture
def serve():
    """``serve(folder)`` -> base URL of a local http.server for that folder."""
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(_Quiet, directory=str(folder))
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


class Page:
    """A browser page that blocks and records every request leaving the machine and records
    JavaScript errors."""

    def __init__(self, browser, local_prefixes=("file://",)):
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.page = self.context.new_page()
        self.external: list[str] = []
        self.js_errors: list[str] = []
        self.local = tuple(local_prefixes) + ("data:", "blob:", "about:")

        def route(r):
            url = r.request.url
            if url.startswith(self.local):
                r.continue_()
            else:
                self.external.append(url)
                r.abort()

        self.page.route("**/*", route)
        self.page.on("pageerror", lambda e: self.js_errors.append(str(e)))

    def open(self, url: str) -> None:
        self.page.goto(url, wait_until="load")
        self.page.wait_for_load_state("networkidle")
        # MathJax typesets after the load event; wait until it is done (if the page has it).
        self.page.evaluate(
            "() => window.MathJax && MathJax.startup && MathJax.startup.promise && "
            "MathJax.startup.promise.then(() => true)"
        )

    def close(self) -> None:
        self.context.close()


# ------------------------------------------------------------- chapter pages ----
def test_chapters_found():
    """Guards against a vacuous pass: the book has chapters and the toc lists them all."""
    assert CHAPTERS, "no book/[0-9][0-9]_*.ipynb found"
    toc = (REPO / "_toc.yml").read_text()
    missing = [c for c in CHAPTERS if f"book/{c}" not in toc]
    assert not missing, f"chapters not in _toc.yml: {missing}"


FIGURES_JS = """() => {
    const main = document.querySelector('main') || document.body;
    const imgs = [...main.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth > 0);
    const broken = [...main.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth == 0)
        .map(i => i.getAttribute('src'));
    return {images: imgs.length, canvases: main.querySelectorAll('canvas').length, broken,
            math: main.querySelectorAll('.math').length,
            typeset: main.querySelectorAll('mjx-container').length};
}"""

ERRORS_JS = """() => {
    const main = document.querySelector('main') || document.body;
    const texts = sel => [...main.querySelectorAll(sel)].map(e => e.innerText);
    return {blocks: texts('.output.error, .output.traceback'),
            stderr: texts('.output.stderr'),
            text: main.innerText};
}"""


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page(book_html, browser, chapter):
    page_file = book_html / "book" / f"{chapter}.html"
    assert page_file.is_file(), f"{chapter} was not rendered"
    p = Page(browser)
    try:
        p.open(page_file.as_uri())
        figs = p.page.evaluate(FIGURES_JS)
        found = p.page.evaluate(ERRORS_JS)
        shot = book_html.parent / "screenshots" / f"{chapter}.png"
        shot.parent.mkdir(exist_ok=True)
        p.page.screenshot(path=str(shot), full_page=False)
    finally:
        p.close()
    assert not figs["broken"], f"{chapter}: images that did not load: {figs['broken']}"
    assert figs["images"] + figs["canvases"] > 0, f"{chapter}: no figure on the page"
    if figs["math"]:
        assert figs["typeset"] > 0, f"{chapter}: MathJax did not typeset the page's math"
    assert not found["blocks"], f"{chapter}: error output: {found['blocks'][0][:2000]}"
    bad_stderr = [t for t in found["stderr"] if "Traceback" in t or "Error" in t]
    assert not bad_stderr, f"{chapter}: error on stderr: {bad_stderr[0][:2000]}"
    assert "Traceback" not in found["text"], f"{chapter}: a traceback is shown"
    assert not p.js_errors, f"{chapter}: JavaScript errors: {p.js_errors}"
    assert not p.external, f"{chapter}: requests leaving the machine: {p.external}"


FIT_JS = """() => {
    const article = document.querySelector('article.bd-article');
    const cs = getComputedStyle(article);
    const column = article.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    const lines = el => {  // text lines an element's content takes
        const r = document.createRange();
        r.selectNodeContents(el);
        return new Set([...r.getClientRects()].filter(x => x.width > 0)
                       .map(x => Math.round(x.top))).size;
    };
    const tables = [...article.querySelectorAll('div.cell_output table')].map(t => {
        const cell = t.closest('div.cell');
        const output = t.closest('div.cell_output');
        let scrolls = false;  // any box between the table and its cell scrolling sideways
        for (let e = t.parentElement; e && e !== cell; e = e.parentElement) {
            if (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible') {
                scrolls = true;
            }
        }
        const label = [...t.querySelectorAll('tbody th')].find(th => th.innerText.trim().length > 8);
        return {width: t.getBoundingClientRect().width, cell: output.getBoundingClientRect().width,
                right: cell.getBoundingClientRect().right, scrolls,
                wide: cell.classList.contains('tvae-wide'),
                label: label ? label.innerText.trim() : null, labelLines: label ? lines(label) : 0};
    });
    const code = [...article.querySelectorAll('div.cell_input pre, div.cell_output pre')]
        .filter(p => p.scrollWidth > p.clientWidth + 1).map(p => p.innerText.slice(0, 80));
    return {column, viewport: window.innerWidth, tables, code};
}"""


def _fit(browser, page_file: Path, width: int) -> dict:
    p = Page(browser)
    try:
        p.page.set_viewport_size({"width": width, "height": 900})
        p.open(page_file.as_uri())
        return p.page.evaluate(FIT_JS)
    finally:
        p.close()


def test_table1_fits_the_content_column(book_html, browser):
    """Chapter 08 in a 1300-pixel window: every output table (Table 1 side by side with the
    paper's) is no wider than the content column itself (not widened over the sidebar) and
    does not scroll sideways; a row label such as "Raw MNIST (784)" stays on one line; no
    code block scrolls sideways."""
    fit = _fit(browser, book_html / "book" / "08_table1.html", 1300)
    assert fit["tables"], "chapter 08 shows no output table"
    for t in fit["tables"]:
        assert t["width"] <= fit["column"] + 1, f"table {t['width']:.0f} px > column {fit['column']:.0f} px"
        assert not t["wide"] and not t["scrolls"], t
        if t["label"]:
            assert t["labelLines"] == 1, f"row label {t['label']!r} wraps over {t['labelLines']} lines"
    assert not fit["code"], f"code scrolls sideways: {fit['code']}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_tables_and_code_fit_the_page(book_html, browser, chapter):
    """Every chapter in a 1300-pixel window: each output table fits its cell (a cell whose table
    is wider than the column is widened over the right sidebar, never past the window), nothing
    scrolls sideways, row labels stay on one line."""
    fit = _fit(browser, book_html / "book" / f"{chapter}.html", 1300)
    for t in fit["tables"]:
        assert t["width"] <= t["cell"] + 1, f"{chapter}: table {t['width']:.0f} px > cell {t['cell']:.0f} px"
        assert t["right"] <= fit["viewport"], f"{chapter}: a widened cell leaves the window"
        assert not t["scrolls"], f"{chapter}: a table scrolls sideways"
        if t["label"]:
            assert t["labelLines"] == 1, f"{chapter}: row label {t['label']!r} wraps"
    assert not fit["code"], f"{chapter}: code scrolls sideways: {fit['code']}"


def test_parameters_shown_once(book_html):
    """Each executed chapter shows one parameters cell, holding the run's values (profile smoke);
    papermill's injected cell is there but tagged remove-cell, and the rendered page shows the
    profile assignment once."""
    import re

    import nbformat

    stage = book_html.parent / "stage" / "book"
    for chapter in CHAPTERS:
        nb = nbformat.read(stage / f"{chapter}.ipynb", as_version=4)

        def tagged(tag, nb=nb):
            return [c for c in nb.cells if tag in c.metadata.get("tags", [])]

        shown = [c for c in tagged("parameters") + tagged("injected-parameters")
                 if "remove-cell" not in c.metadata.get("tags", [])]
        assert len(shown) == 1, f"{chapter}: {len(shown)} parameters cells shown"
        assert re.search(r'^profile = "smoke"', shown[0].source, re.M), shown[0].source
        assert len(tagged("injected-parameters")) == 1
        html = (book_html / "book" / f"{chapter}.html").read_text()
        text = re.sub(r"<[^>]+>", "", html)
        assert len(re.findall(r"^profile\s*=", text, re.M)) == 1, f"{chapter}: profile shown twice"


def test_landing_page_math_offline(book_html, browser):
    html = (book_html / "book" / "index.html").read_text()
    assert 'src="../_static/../book/mathjax/tex-mml-chtml.js' in html, "MathJax is not local"
    p = Page(browser)
    try:
        p.open((book_html / "book" / "index.html").as_uri())
        found = p.page.evaluate(FIGURES_JS)
    finally:
        p.close()
    assert found["math"] > 0 and found["typeset"] >= found["math"], found
    assert not p.js_errors, p.js_errors
    assert not p.external, f"requests leaving the machine: {p.external}"


def test_widget_js_is_local_in_book(book_html):
    """Every page with a saved widget state loads the widget JavaScript from the book."""
    pages = [p for p in (book_html / "book").glob("*.html") if WIDGET_STATE in p.read_text()]
    for page in pages:
        html = page.read_text()
        assert "cdn.jsdelivr.net" not in html and "cdnjs.cloudflare.com" not in html, page
        assert 'src="../_static/../book/widgets_js/embed-amd.js' in html, page
    if pages:
        assert (book_html / "book" / "widgets_js" / "embed-amd.js").is_file()


# ------------------------------------------------- widget rendering, offline ----
WIDGET_NB_CODE = """\
import ipywidgets as w
from IPython.display import display
display(w.VBox([w.IntSlider(value=7, min=0, max=10, description="z_1"),
                w.Button(description="reset", icon="refresh")]))
"""


@pytest.fixture(scope="module")
def widget_book(tmp_path_factory) -> Path:
    """A one-page book with a saved ipywidgets state, executed and built with the project's
    own runner, stage script, config and fetched widget JavaScript. Returns its HTML root."""
    import nbformat

    src = tmp_path_factory.mktemp("widget_src")
    (src / "book").mkdir()
    (src / "scripts").mkdir()
    for f in ("run_chapter.py", "stage_book.py", "book_assets.py", stage_book.SHIM):
        shutil.copy(REPO / "scripts" / f, src / "scripts" / f)
    shutil.copy(REPO / "_config.yml", src / "_config.yml")
    (src / "_toc.yml").write_text("format: jb-book\nroot: book/index\nchapters:\n"
                                  "  - file: book/01_widgets\n")
    (src / "book" / "index.md").write_text("# Widget test\n")
    (src / "book" / "references.bib").write_text((REPO / "book" / "references.bib").read_text())
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "paper"')
    params.metadata["tags"] = ["parameters"]
    # Equations on the same page: the widgets must cope with MathJax 3 (mathjax_v2_shim.js).
    nb.cells = [nbformat.v4.new_markdown_cell("# Widgets\n\nA pose $u = W u' + b$."), params,
                nbformat.v4.new_code_cell(WIDGET_NB_CODE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, src / "book" / "01_widgets.ipynb")

    widgets_js, mathjax = REPO / "_build" / "widgets_js", REPO / "_build" / "mathjax"
    subprocess.run([str(REPO / "scripts" / "fetch_widget_js.sh"), str(widgets_js)], check=True)
    subprocess.run([str(REPO / "scripts" / "fetch_mathjax.sh"), str(mathjax)], check=True)
    stage = src / "_build" / "stage"
    py = sys.executable
    subprocess.run([py, "scripts/run_chapter.py", "book/01_widgets.ipynb",
                    str(stage / "book" / "01_widgets.ipynb"), "--profile", "smoke"],
                   cwd=src, check=True)
    executed = json.loads((stage / "book" / "01_widgets.ipynb").read_text())
    assert WIDGET_STATE in executed["metadata"].get("widgets", {}), "widget state not saved"
    subprocess.run([py, "scripts/stage_book.py", str(stage), "--widgets-js", str(widgets_js),
                    "--mathjax", str(mathjax)], cwd=src, check=True)
    jb = Path(sys.executable).parent / "jupyter-book"
    subprocess.run([str(jb), "build", "-W", "-n", "--keep-going", "-q", str(stage)],
                   cwd=src, check=True)
    return stage / "_build" / "html"


@pytest.mark.parametrize("via", ["file", "http"])
def test_widget_state_renders_offline(widget_book, browser, serve, via):
    html = (widget_book / "book" / "01_widgets.html").read_text()
    assert "cdn.jsdelivr.net" not in html
    if via == "file":
        url, local = (widget_book / "book" / "01_widgets.html").as_uri(), ("file://",)
    else:
        base = serve(widget_book)
        url, local = f"{base}/book/01_widgets.html", (base,)
    p = Page(browser, local)
    try:
        p.open(url)
        slider = p.page.wait_for_selector(".widget-slider", timeout=20_000)
        assert slider.is_visible()
        readout = p.page.inner_text(".widget-readout")
        assert readout.strip() == "7"
        assert p.page.inner_text(".widget-button").strip() == "reset"
        typeset = p.page.evaluate("() => document.querySelectorAll('mjx-container').length")
        assert typeset > 0, "MathJax did not typeset the page"
    finally:
        p.close()
    assert not p.js_errors, p.js_errors
    assert not p.external, f"requests leaving the machine: {p.external}"


# ---------------------------------------------------------- build helpers ----
@pytest.mark.parametrize(
    "makeflags, jobs",
    [("", None), ("s", None), (" -j2 --jobserver-auth=3,4", 2), ("ks -j3 --jobserver-auth=3,4", 3),
     (" -j", 0), ("s -j4 --jobserver-auth=3,4 -- PROFILE=smoke", 4), ("s -- X=-j9", None)],
)
def test_make_jobs(makeflags, jobs):
    assert run_chapter.make_jobs(makeflags) == jobs


def test_thread_budget():
    assert run_chapter.thread_budget("", 2) is None
    assert run_chapter.thread_budget(" -j1", 2) is None
    assert run_chapter.thread_budget(" -j2 --jobserver-auth=3,4", 2) == 1
    assert run_chapter.thread_budget(" -j2 --jobserver-auth=3,4", 8) == 4
    assert run_chapter.thread_budget(" -j4", 2) == 1
    assert run_chapter.thread_budget(" -j", 16) == 1


def test_stage_without_widget_js_falls_back_to_cdn(tmp_path, monkeypatch):
    import yaml

    root = tmp_path / "repo"
    (root / "book").mkdir(parents=True)
    (root / "scripts").mkdir()
    for f in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO / f, root / f)
    for f in ("book_assets.py", stage_book.SHIM):
        shutil.copy(REPO / "scripts" / f, root / "scripts" / f)
    (root / "book" / "index.md").write_text("# x\n")
    (root / "book" / "figures").mkdir()
    (root / "book" / "figures" / "a.png").write_bytes(b"png")
    monkeypatch.setattr(stage_book, "ROOT", root)
    stage = tmp_path / "stage"
    # a stale executed chapter and a stale asset, to be pruned
    (stage / "book" / "figures").mkdir(parents=True)
    (stage / "book" / "99_gone.ipynb").write_text("{}")
    (stage / "book" / "figures" / "old.png").write_bytes(b"x")

    stage_book.stage(stage, widgets_js=tmp_path / "missing")
    cfg = yaml.safe_load((stage / "_config.yml").read_text())
    assert "nb_ipywidgets_js" not in cfg["sphinx"]["config"]
    assert (stage / "book" / "figures" / "a.png").read_bytes() == b"png"
    assert not (stage / "book" / "figures" / "old.png").exists()
    assert not (stage / "book" / "99_gone.ipynb").exists()
    assert (stage / "scripts" / "book_assets.py").is_file()

    assert "mathjax_path" not in cfg["sphinx"]["config"]

    js, mj = tmp_path / "js", tmp_path / "mj"
    for folder, files in ((js, stage_book.WIDGET_FILES), (mj, stage_book.MATHJAX_FILES)):
        folder.mkdir()
        for f in files:
            (folder / f).write_text("x")
    stage_book.stage(stage, widgets_js=js, mathjax=mj)
    assert (stage / "_config.yml").read_text() == (REPO / "_config.yml").read_text()
    assert (stage / "book" / "widgets_js" / "embed-amd.js").is_file()
    assert (stage / "book" / "widgets_js" / stage_book.SHIM).is_file()
    assert (stage / "book" / "mathjax" / "tex-mml-chtml.js").is_file()


def test_merge_parameters_keeps_one_cell_with_the_run_values():
    import nbformat

    defaults = ('profile = "paper"  # smoke | quick | paper\nseed = 0\n'
                'epochs = None\nstatic_dir = None')
    injected = '# Parameters\nprofile = "smoke"\nepochs = 3\nextra = {"a": 1,\n         "b": 2}\n'
    merged = run_chapter.merge_parameters(defaults, injected)
    assert merged.splitlines() == [
        "# Parameters of this run (papermill set: profile, epochs, extra)",
        'profile = "smoke"  # smoke | quick | paper', "seed = 0", "epochs = 3",
        "static_dir = None", 'extra = {"a": 1,', '         "b": 2}']
    ns: dict = {}
    exec(merged, ns)
    assert (ns["profile"], ns["seed"], ns["epochs"], ns["extra"]) == ("smoke", 0, 3, {"a": 1, "b": 2})

    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(defaults, metadata={"tags": ["parameters"]})
    i = nbformat.v4.new_code_cell(injected, metadata={"tags": ["injected-parameters"]})
    nb.cells = [nbformat.v4.new_markdown_cell("# x"), p, i, nbformat.v4.new_code_cell("1")]
    assert run_chapter.show_parameters_once(nb) == "merged"
    assert nb.cells[1].source == merged and "remove-cell" not in nb.cells[1].metadata["tags"]
    assert nb.cells[2].metadata["tags"] == ["injected-parameters", "remove-cell"]
    # A defaults cell that is not Python: papermill's cell is the one shown.
    p.source, i.metadata["tags"] = "profile = = 1", ["injected-parameters"]
    assert run_chapter.show_parameters_once(nb) == "kept-injected"
    assert "remove-cell" in p.metadata["tags"] and i.metadata["tags"] == ["injected-parameters"]
    assert run_chapter.show_parameters_once(nbformat.v4.new_notebook()) == "unchanged"
