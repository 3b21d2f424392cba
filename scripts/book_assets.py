"""Sphinx extension (loaded through ``_config.yml``): copy asset folders into the HTML output.

Sphinx copies only ``_static`` and ``html_extra_path`` (whose contents land at the output
root), so folders that pages reference by a relative URL are copied here, keeping their path
relative to the source directory:

- ``book/widgets_js/``: the ipywidgets html-manager and RequireJS (scripts/fetch_widget_js.sh);
- ``book/mathjax/``: MathJax 3 (scripts/fetch_mathjax.sh);
- ``book/explorer_static/``: decoder weights and JavaScript written by the explorer chapter.

They are copied when the builder starts, before pages are written, so Sphinx can stamp the
script URLs with a checksum.

It also serves the book's own stylesheet and script (``book/_static/tvae.css``, ``tvae.js``:
the page layout that lets wide tables and code fit the content column) on every page, when the
source tree has them.

It also drops duplicated inline scripts from each page: sphinx-thebe (loaded by Jupyter Book)
registers its ``const THEBE_JS_URL = ...`` snippet twice, and the second copy raises a
JavaScript error ("Identifier 'THEBE_JS_URL' has already been declared") on every page.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ASSET_DIRS = ["book/widgets_js", "book/mathjax", "book/explorer_static"]
BOOK_STATIC = "book/_static"
"""The book's own static folder (relative to the source directory), added to Sphinx's."""
BOOK_CSS, BOOK_JS = "tvae.css", "tvae.js"


def copy_asset_dirs(app) -> None:
    if app.builder.format != "html":
        return
    for rel in app.config.book_asset_dirs:
        src = Path(app.srcdir) / rel
        if src.is_dir():
            dest = Path(app.outdir) / rel
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(src, dest)


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        # filename is None or "" for inline scripts, depending on who added them
        filename = str(getattr(js, "filename", None) or "")
        attrs = getattr(js, "attributes", {}) or {}
        key = (filename, tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    context["script_files"] = kept


def copy_book_static(app) -> None:
    """Copy ``book/_static`` into the output's ``_static`` now: Sphinx copies its static files
    only when some page is rebuilt, so a changed stylesheet alone would otherwise not reach the
    HTML."""
    if app.builder.format != "html":
        return
    static = Path(app.srcdir) / BOOK_STATIC
    if not static.is_dir():
        return
    dest = Path(app.outdir) / "_static"
    for f in static.iterdir():
        if f.is_file():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest / f.name)


def add_book_static(app, config) -> None:
    static = Path(app.srcdir) / BOOK_STATIC
    if not static.is_dir():  # a test book without it: no missing-path warning under -W
        return
    config.html_static_path = [*config.html_static_path, BOOK_STATIC]
    if (static / BOOK_CSS).is_file():
        app.add_css_file(BOOK_CSS)
    if (static / BOOK_JS).is_file():
        app.add_js_file(BOOK_JS)


def setup(app):
    app.add_config_value("book_asset_dirs", ASSET_DIRS, "html")
    app.connect("config-inited", add_book_static)
    app.connect("builder-inited", copy_asset_dirs)
    app.connect("builder-inited", copy_book_static)
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
