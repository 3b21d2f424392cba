"""Draw README's figure (docs/overview.png) from the paper profile's cached models.

Uses only models already in the model cache (it trains nothing): the first 12 test digits,
their reconstructions by each available paper-profile model at dim z 20, and the upright y'
of the transformer models.  Run: ``.venv/bin/python scripts/readme_figure.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import tvae  # noqa: E402
from tvae import figures  # noqa: E402
from tvae.book import registry, store  # noqa: E402
from tvae.cache import entry_path, is_cached  # noqa: E402
from tvae.evaluate import reconstruct  # noqa: E402
from tvae.train import load_model  # noqa: E402


def main(out: str = "docs/overview.png", n: int = 12) -> int:
    P = tvae.resolve("paper")
    data = store.data(P)
    x = data.x_test[:n]
    recs, ups = {}, {}
    main = [c for c in registry.main_models(P) if c.model in registry.PAPER_KINDS]
    for label, cfg in registry.named(main).items():  # the book's display names
        if not is_cached(cfg, data.identity):
            continue
        model, _ = load_model(entry_path(cfg, data.identity))
        r = reconstruct(model, x)
        recs[label] = r["x_rec"]
        if model.has_pose:
            ups[label] = r["y_rec"]
    if not recs:
        print("no paper-profile model in the cache; run `make book` first", file=sys.stderr)
        return 1
    fig = figures.reconstruction_rows(x, recs, ups, ncol=n)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    print(f"wrote {out} ({', '.join(recs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
