"""The 2-d latent map (experiment 8, the paper's figure 8): the test digits placed at their
posterior means by the models with a 2-d code, and how well the classes separate there; the
sentences its section prints.

The paper shows the maps without a verdict. The book's hypothesis: when the transformer takes
over the pose, the two dimensions left to ``z`` go to the digit's identity and shape, so the
classes separate better. "Separate" is measured by the cross-validated accuracy of a
k-nearest-neighbour classifier of the class from the 2-d code. Written to
``results/<profile>/latent_map.csv`` (:data:`MAP_COLUMNS`); accuracies in percent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from ..evaluate import codes
from ..io import write_csv
from ..profiles import Profile
from . import registry, store
from .text import signed

KNN_NEIGHBOURS = 5
"""Neighbours of the classifier: a local vote, so it rewards classes that form clusters
whatever their shape (a linear probe would ask for more, a 1-NN would reward noise)."""

KNN_FOLDS = 5
"""Cross-validation folds (scikit-learn's stratified, unshuffled split of the plotted digits)."""

MAP_COLUMNS = ["model", "dim_z", "n", "knn_accuracy", "knn_sd", "k", "folds", "chance", "seed",
               "profile"]
"""The columns of ``latent_map.csv``: one row per model (display name), ``n`` test digits,
``knn_accuracy`` the mean accuracy over the folds and ``knn_sd`` its SD over the folds (%),
``chance`` the accuracy of always guessing the most frequent class (%)."""


def maps(P: Profile) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``({display name: (N, 2) posterior means of z}, (N,) digit classes)`` of the profile's
    test digits under each model of :func:`tvae.book.registry.latent2d_set`, in its order (kept
    in memory, :func:`tvae.book.store.remember`)."""
    return store.remember(("latent_map", P), lambda: _maps(P))


def _maps(P: Profile) -> tuple[dict[str, np.ndarray], np.ndarray]:
    xt = store.test_x(P)
    labels = store.data(P).y_test[: len(xt)].cpu().numpy()
    return ({name: codes(m, xt) for name, m in store.models(P, registry.latent2d_set(P)).items()},
            labels)


def separation_table(P: Profile, *, write: bool = True,
                     out_dir: str | Path | None = None) -> pd.DataFrame:
    """One row per model (:data:`MAP_COLUMNS`): the k-NN accuracy of the digit class from the
    2-d code, over :data:`KNN_FOLDS` folds. Written to ``latent_map.csv`` when ``write``."""
    codes_by_model, labels = maps(P)
    chance = float(np.bincount(labels).max() / len(labels) * 100)
    rows = []
    for name, c in codes_by_model.items():
        acc = cross_val_score(KNeighborsClassifier(KNN_NEIGHBOURS), c, labels, cv=KNN_FOLDS) * 100
        rows.append({"model": name, "dim_z": c.shape[1], "n": len(c),
                     "knn_accuracy": float(acc.mean()), "knn_sd": float(acc.std(ddof=1)),
                     "k": KNN_NEIGHBOURS, "folds": KNN_FOLDS, "chance": chance, "seed": P.seed,
                     "profile": P.results_name})
    df = pd.DataFrame(rows, columns=MAP_COLUMNS)
    if write:
        write_csv(df, Path(out_dir or P.results_dir()) / "latent_map.csv")
    return df


def describe(df: pd.DataFrame) -> str:
    """One sentence: how many digits, the classifier, the chance level."""
    return (f"{int(df.n.iloc[0]):,} test digits; {int(df.k.iloc[0])}-nearest-neighbour "
            f"accuracy over {int(df.folds.iloc[0])} folds; always guessing the most frequent "
            f"class scores {df.chance.iloc[0]:.1f}%.")


def separation_findings(df: pd.DataFrame) -> str:
    """Markdown: the models ordered by separation, and each transformer model against the VAE
    in percentage points, compared with the folds' spread."""
    order = df.sort_values("knn_accuracy", ascending=False)
    text = ("Class separation in the code plane, best first: "
            + " > ".join(f"{r.model} ({r.knn_accuracy:.1f}%)" for r in order.itertuples()) + ".")
    vae = df[df.model == registry.LABELS["vae"]]
    if not len(vae):
        return text
    base = vae.iloc[0]
    others = df[df.model != base.model]
    diffs = ", ".join(f"{r.model} {signed(r.knn_accuracy - base.knn_accuracy)}" for r in others.itertuples())
    better = int((others.knn_accuracy > base.knn_accuracy).sum())
    text += (f" Against the VAE, in percentage points: {diffs} (fold-to-fold SD up to "
             f"{df.knn_sd.max():.1f} points); {better} of {len(others)} transformer models "
             "separate the classes better than the VAE in this run.")
    return text


__all__ = ["KNN_NEIGHBOURS", "KNN_FOLDS", "MAP_COLUMNS", "maps", "separation_table", "describe",
           "separation_findings"]
