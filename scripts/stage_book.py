"""Mirror the book's sources (everything but the notebooks) into a staging tree.

    python scripts/stage_book.py STAGE [--widgets-js DIR] [--mathjax DIR]

The staging tree ``STAGE`` (``_build/<profile>/stage``) mirrors the repository's layout:
``_config.yml``, ``_toc.yml``, ``scripts/book_assets.py`` and ``book/`` with every markdown
file, bibliography and static asset. The executed notebooks are written into ``STAGE/book`` by
``scripts/run_chapter.py``; this script never touches them, except that it deletes executed
notebooks whose source no longer exists (a renamed chapter would otherwise linger in the book).
Files are copied only when changed (so Sphinx rebuilds only what changed) and staged files
whose source was deleted are removed.

``--widgets-js DIR``: the folder filled by ``scripts/fetch_widget_js.sh``. When it holds the
files, it is copied to ``STAGE/book/widgets_js`` (served by the book); otherwise the staged
``_config.yml`` loses ``nb_ipywidgets_js`` so that myst-nb uses its CDN default.
``--mathjax DIR``: likewise for MathJax (``scripts/fetch_mathjax.sh``, ``STAGE/book/mathjax``,
``mathjax_path``; Sphinx's CDN default without it).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
from pathlib import Path

import yaml

from tvae.io import write_text

ROOT = Path(__file__).resolve().parent.parent

# Folders under book/ that the build writes into the stage (never mirrored from, nor pruned).
GENERATED = {"widgets_js", "mathjax", "explorer_static", "_build", ".ipynb_checkpoints",
             "__pycache__"}
WIDGET_FILES = ("require.js", "embed-amd.js", "VERSIONS")
MATHJAX_FILES = ("tex-mml-chtml.js", "VERSIONS")
SHIM = "mathjax_v2_shim.js"  # committed in scripts/, served beside the widget JavaScript


def _write_if_changed(dest: Path, data: str) -> None:
    if dest.is_file() and dest.read_text() == data:
        return
    write_text(dest, data)


def _copy_if_changed(src: Path, dest: Path) -> None:
    if dest.is_file() and filecmp.cmp(src, dest, shallow=False):
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)


def _book_assets(book: Path) -> set[Path]:
    """Relative paths of the non-notebook files under book/ (skipping generated folders)."""
    out = set()
    for p in book.rglob("*"):
        rel = p.relative_to(book)
        if rel.parts[0] in GENERATED or any(part in GENERATED for part in rel.parts):
            continue
        if p.is_file() and p.suffix != ".ipynb":
            out.add(rel)
    return out


def _sync_tree(src: Path, dest: Path, extra: dict[str, Path] | None = None) -> None:
    """Make ``dest`` a copy of ``src`` plus the ``extra`` files (name -> source), copying only
    changed files."""
    wanted = set()
    for name, f in (extra or {}).items():
        wanted.add(Path(name))
        _copy_if_changed(f, dest / name)
    for f in src.rglob("*"):
        if f.is_file():
            rel = f.relative_to(src)
            wanted.add(rel)
            _copy_if_changed(f, dest / rel)
    for f in list(dest.rglob("*")):
        if f.is_file() and f.relative_to(dest) not in wanted:
            f.unlink()


def _local_js(folder: Path | None, files: tuple[str, ...]) -> bool:
    return folder is not None and all((folder / f).is_file() for f in files)


def stage(stage_dir: Path, widgets_js: Path | None, mathjax: Path | None = None) -> None:
    stage_dir.mkdir(parents=True, exist_ok=True)
    src_book, dst_book = ROOT / "book", stage_dir / "book"

    # 1. _config.yml, with the locally served JavaScript or without it (CDN defaults).
    config_text = (ROOT / "_config.yml").read_text()
    config = yaml.safe_load(config_text)
    sphinx_config = config.get("sphinx", {}).get("config", {})
    dropped = []
    for folder, files, key, name in (
        (widgets_js, WIDGET_FILES, "nb_ipywidgets_js", "widgets_js"),
        (mathjax, MATHJAX_FILES, "mathjax_path", "mathjax"),
    ):
        if _local_js(folder, files):
            extra = {SHIM: ROOT / "scripts" / SHIM} if name == "widgets_js" else None
            _sync_tree(folder, dst_book / name, extra)
        else:
            shutil.rmtree(dst_book / name, ignore_errors=True)
            if sphinx_config.pop(key, None) is not None:
                dropped.append(key)
    if dropped:
        print(f"stage_book: no local copy for {', '.join(dropped)}; the book will load it from "
              "the CDN (the Sphinx/myst-nb default)", file=sys.stderr)
        config_text = f"# Staged copy of _config.yml without {', '.join(dropped)} (CDN defaults)\n"
        config_text += yaml.safe_dump(config, sort_keys=False)
    _write_if_changed(stage_dir / "_config.yml", config_text)

    # 2. _toc.yml and the Sphinx extension the config names.
    _copy_if_changed(ROOT / "_toc.yml", stage_dir / "_toc.yml")
    _copy_if_changed(ROOT / "scripts" / "book_assets.py", stage_dir / "scripts" / "book_assets.py")

    # 3. Every non-notebook file under book/, pruning staged files whose source is gone.
    wanted = _book_assets(src_book)
    for rel in sorted(wanted):
        _copy_if_changed(src_book / rel, dst_book / rel)
    if dst_book.is_dir():
        for rel in _book_assets(dst_book) - wanted:
            (dst_book / rel).unlink()
        # 4. Executed notebooks whose source chapter was removed or renamed.
        for nb in dst_book.glob("*.ipynb"):
            if not (src_book / nb.name).is_file():
                print(f"stage_book: removing stale {nb}", file=sys.stderr)
                nb.unlink()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", type=Path)
    ap.add_argument("--widgets-js", type=Path, default=None)
    ap.add_argument("--mathjax", type=Path, default=None)
    args = ap.parse_args(argv)
    stage(
        args.stage.resolve(),
        args.widgets_js.resolve() if args.widgets_js else None,
        args.mathjax.resolve() if args.mathjax else None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
