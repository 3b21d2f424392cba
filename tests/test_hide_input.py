"""Collapsed code in the rendered chapters (issue 15): a cell that only formats a table or draws
a figure carries jupyter-book's ``hide-input`` tag, and a collapsed cell hides no result.

Jupyter Book 1.x (myst-nb 1.x) renders a code cell tagged ``hide-input`` with its source folded
under a "Show code cell source" toggle and its output shown; the computing cells stay open.

**The rule.** A code cell is *format-only* when each of its statements is an expression (or a
``for`` loop over such statements) made of: names, constants, subscripts, attributes,
f-strings, literals, comprehensions, and calls of display and format helpers only:
``display``/``Markdown``/``HTML``, ``plt.show``, any plotting function of ``tvae.figures``
(imported as ``tf``), the pandas ``Styler`` chain (``.style.format``...), ``.round``, and the
book modules' table views and captions (functions named ``*_view`` or ``*_caption``, which only
reshape numbers already computed). Such a cell must be tagged ``hide-input``. A cell that calls
anything else (a computation, a sentence of findings) is not format-only and may stay open.

**The converse.** A cell tagged ``hide-input`` must not load a model or data (``store.*``),
nor write a file (``write_csv``, ``.to_csv``, ``write_static``): collapsed code never hides
where a number comes from.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((REPO / "book").glob("[0-9][0-9]_*.ipynb"))

DISPLAY_FUNCTIONS = {"display", "Markdown", "HTML"}
"""Functions that only show what they are given."""

FIGURE_MODULES = {"tf"}
"""``tvae.figures`` as the chapters import it: every function there draws a figure."""

FORMAT_METHODS = {"show", "style", "format", "set_properties", "hide", "map", "round", "set_caption",
                  "format_index", "items", "values", "keys"}
"""Methods that show, style or iterate over a computed table (``plt.show``, ``Styler``...)."""

FORMAT_SUFFIXES = ("_view", "_caption")
"""Book-module functions that only reshape computed numbers for display."""

HIDDEN_FORBIDDEN = {"write_csv", "to_csv", "write_static"}
"""Calls a collapsed cell must not make (besides any ``store.*``): they write results."""


def _format_call(node: ast.Call) -> bool:
    f = node.func
    if isinstance(f, ast.Name):
        return f.id in DISPLAY_FUNCTIONS
    if isinstance(f, ast.Attribute):
        if isinstance(f.value, ast.Name) and f.value.id in FIGURE_MODULES:
            return True
        return f.attr in FORMAT_METHODS or f.attr.endswith(FORMAT_SUFFIXES)
    return False


def format_only_expr(node: ast.AST) -> bool:
    """Whether an expression only shows or formats (see the module docstring)."""
    if isinstance(node, ast.Call):
        f = node.func
        receiver_ok = not isinstance(f, ast.Attribute) or format_only_expr(f.value)
        return (_format_call(node) and receiver_ok and all(format_only_expr(a) for a in node.args)
                and all(format_only_expr(k.value) for k in node.keywords))
    if isinstance(node, ast.Lambda):
        return False
    return all(format_only_expr(child) for child in ast.iter_child_nodes(node))


def format_only(source: str) -> bool:
    """Whether a cell's code only shows tables and figures (see the module docstring)."""
    def stmt_ok(s: ast.stmt) -> bool:
        if isinstance(s, ast.Expr):
            return format_only_expr(s.value)
        if isinstance(s, ast.For):
            return format_only_expr(s.iter) and all(stmt_ok(b) for b in s.body) and not s.orelse
        return False

    body = ast.parse(source).body
    return bool(body) and all(stmt_ok(s) for s in body)


def hidden_problems(source: str) -> list[str]:
    """What a collapsed cell must not do, found in its code (an empty list when nothing)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            if owner == "store" or name in HIDDEN_FORBIDDEN:
                out.append(f"line {node.lineno}: {owner + '.' if owner else ''}{name}()")
    return out


def _code_cells(path: Path):
    nb = nbformat.read(path, as_version=4)
    for i, c in enumerate(nb.cells):
        tags = c.metadata.get("tags", [])
        if c.cell_type == "code" and "parameters" not in tags:
            yield i, c.source, tags


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_format_only_cells_are_collapsed(path):
    untagged = [i for i, src, tags in _code_cells(path) if format_only(src) and "hide-input" not in tags]
    assert not untagged, (f"{path.name}: cells {untagged} only format a table or a figure; "
                          "tag them hide-input")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_collapsed_cells_hide_no_result(path):
    problems = [f"cell {i}, {p}" for i, src, tags in _code_cells(path) if "hide-input" in tags
                for p in hidden_problems(src)]
    assert not problems, f"{path.name}: collapsed cells that load or write: " + "; ".join(problems)


def test_the_chapters_collapse_something():
    """The tag is used where the issue asks for it (chapters 01-03, 05, 06, 08, 13, 14)."""
    for stem in ("01", "02", "03", "05", "06", "08", "13", "14"):
        path = next(p for p in CHAPTERS if p.name.startswith(stem))
        assert any("hide-input" in tags for _, _, tags in _code_cells(path)), path.name


def test_the_rule_on_examples():
    assert format_only("tf.plot_recon_vs_dim(s, col)\nplt.show()")
    assert format_only('ld.runs_view(df).style.format(precision=2, na_rep="")')
    assert format_only('display(Markdown(ld.seed_mean_caption(s, col)))\nld.seed_mean_view(s, col)')
    assert format_only("for title, rows in examples.items():\n    tf.image_rows(rows, title=title)\n"
                       "    plt.show()")
    assert format_only('display(Markdown(f"**{names[col]}** ({n} seed(s))"))')
    # a computation, a sentence of findings, an assignment: not format-only
    assert not format_only("df = ld.recon_vs_dim(P)")
    assert not format_only("ld.recon_vs_dim(P)")
    assert not format_only("display(Markdown(bullets(ld.recon_findings(s, col))))")
    assert not format_only("x = 1\ntf.plot(x)")
    assert not format_only("tf.plot(model.encode(x))")
    assert not format_only("df.style.map(lambda v: colour.get(v, ''))")
    assert hidden_problems("m = store.model(P, cfg)\nwrite_csv(df, p)") == [
        "line 1: store.model()", "line 2: write_csv()"]
    assert hidden_problems("tf.plot_table1(df)\nplt.show()") == []
