"""The registry is the only place where the book's models are written (issue 12).

- every model a chapter can load comes from a registry function, and each of them is in
  :func:`tvae.book.registry.needed_models` (what ``make models`` trains up front);
- :func:`tvae.book.store.trained` refuses, under a book profile, a configuration the registry
  does not list, before any data is loaded or model trained;
- no chapter notebook builds a configuration or asks for a model by hand: the code of every
  ``book/*.ipynb`` is read and its calls checked.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import tvae
from tvae.book import reconstructions, registry, store
from tvae.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((REPO / "book").glob("[0-9][0-9]_*.ipynb"))


def chapter_sets(P) -> dict[str, list]:
    """Every set of configurations a chapter takes from the registry, by chapter."""
    aff, tps = registry.pose_prior_sets(P)
    return {"01": [registry.intro_model(P)], "04": registry.main_models(P),
            "05": registry.exp1_models(P), "06": registry.denoising_models(P),
            "07": registry.generation_models(P), "08": registry.table1_models(P)
            + registry.modern_models(P), "09": [*aff.values(), *tps.values()],
            "10": registry.likelihood_models(P),
            "11": list(registry.local_optima_set(P).values()),
            "11 (2-d latent map)": list(registry.latent2d_set(P).values()),
            "12": list(registry.named(registry.rot_mnist_models(P)).values()),
            "13": registry.explorer_models(P)}


@pytest.mark.parametrize("name", tvae.PROFILES)
def test_every_chapter_set_is_trained_up_front(name):
    P = tvae.resolve(name)
    needed = {c.key() for c in registry.needed_models(P)}
    for chapter, configs in chapter_sets(P).items():
        assert configs, chapter
        missing = [registry.label(c) for c in configs if c.key() not in needed]
        assert not missing, f"chapter {chapter} uses models make models does not train: {missing}"
        assert all(store.is_registered(P, c) for c in configs)
    # the sets name their models as the chapters print them
    aff, tps = registry.pose_prior_sets(P)
    assert list(aff) == ["identity-diag", "mean-diag", "reparam5-diag", "lowrank r2", "lowrank r4",
                         "lowrank r6 (full)"]
    assert list(tps) == ["lowrank r3", "lowrank r9", "lowrank r18 (full)"]
    assert list(registry.latent2d_set(P)) == ["VAE", "Affine-TVAE", "Affine-DTVAE", "TPS-TVAE"]
    runs = registry.local_optima_set(P)
    assert len(runs) == 3 * len(P.seeds) and {c.key() for c in runs.values()} == {
        c.key() for c in registry.local_optima_models(P)}


@pytest.mark.parametrize(("name", "seeds"), [("smoke", None), ("paper", None), ("smoke", 2)])
def test_init_ablation_group_is_seeded_torch_init(name, seeds):
    """Chapter 05's initialisation ablation (issue 10): VAE and Affine-TVAE at dim z 20 with
    PyTorch's default initialisation at every seed of ``P.seed_list``, paired with the
    Glorot-initialised models experiment 1 already trains (same everything but ``init``)."""
    P = tvae.resolve(name, seeds=seeds)
    torch_init = registry.init_ablation_models(P)
    assert sorted((c.model, c.seed) for c in torch_init) == sorted(
        (k, s) for k in ("vae", "affine-tvae") for s in P.seed_list)
    assert all(c.init == "torch" and c.zdim == 20 and c.prior == "flat" and c.sampling == "lasagne"
               and c.epochs == P.epochs and c.train_size == P.train_size for c in torch_init)
    assert "initialisation ablation (exp. 1)" in registry.GROUPS
    needed = {c.key() for c in registry.needed_models(P)}
    assert {c.key() for c in torch_init} <= needed
    runs = registry.init_ablation_set(P)            # what chapter 05 loads for the ablation
    assert len(runs) == 2 * len(torch_init)
    assert {c.key() for c in runs.values()} <= needed and all(store.is_registered(P, c)
                                                             for c in runs.values())
    exp1 = {c.key() for c in registry.exp1_models(P)}
    for (kind, init, seed), cfg in runs.items():
        assert (cfg.model, cfg.init, cfg.seed, cfg.zdim) == (kind, init, seed, 20)
        twin = runs[(kind, "torch" if init == "glorot" else "glorot", seed)]
        assert cfg.replace(init=twin.init).key() == twin.key()      # only the init differs
        assert (cfg.key() in exp1) == (init == "glorot")
    assert registry.label(runs[("vae", "torch", P.seed_list[-1])]) == (
        "VAE z20 (torch init)" if len(P.seed_list) == 1 else
        f"VAE z20 (torch init, seed {P.seed_list[-1]})")
    assert registry.label(runs[("vae", "glorot", 0)]) == "VAE z20"


@pytest.fixture
def no_training(monkeypatch):
    """The store's model cache replaced by a recorder: nothing is loaded or trained."""
    calls = []

    def fake_get_model(cfg, data, **kw):
        calls.append(cfg.key())
        return object(), {"history": []}

    monkeypatch.setattr(store, "get_model", fake_get_model)
    monkeypatch.setattr(store, "data_for", lambda P, cfg: type("D", (), {"identity": "fake"})())
    store.forget()
    yield calls
    store.forget()


def test_store_refuses_an_unregistered_model(no_training):
    P = tvae.resolve("smoke")
    planned = registry.main_models(P)[0]
    store.trained(P, planned)
    assert no_training == [planned.key()]
    unplanned = P.config("vae", 7)   # no chapter uses dim z 7
    with pytest.raises(ConfigError, match=r"VAE z7 .* is not a model of the book's smoke profile; "
                                          r"add it to a group of tvae/book/registry.py"):
        store.trained(P, unplanned)
    other_seed = planned.replace(seed=5)
    with pytest.raises(ConfigError, match="not a model of the book"):
        store.model(P, other_seed)
    assert no_training == [planned.key()]       # nothing else reached the cache
    # a profile outside the book (the tests' tiny ones) may ask for anything
    tiny = tvae.Profile("tiny", 200, 1, (2,), (8,), 40, 180, 6, 12, (0,), 1)
    store.trained(tiny, tiny.config("vae", 7))
    assert len(no_training) == 2


@pytest.mark.parametrize("name", tvae.PROFILES)
def test_denoising_and_likelihood_runs_cover_every_seed(name):
    """Chapters 06 and 10 measure every training seed of the profile: the denoising runs are
    dim-20 points of experiment 1 (no extra training); the likelihood runs are the five dim-20
    kinds and the mean-diag Affine-TVAE at each seed."""
    for P in (tvae.resolve(name), tvae.resolve(name, seeds=1)):
        den = registry.denoising_models(P)
        assert {c.key() for c in den} <= {c.key() for c in registry.exp1_models(P)}
        assert sorted({c.seed for c in den}) == list(P.seed_list) and len(den) == 4 * P.n_seeds
        lk = registry.likelihood_models(P)
        assert len({c.key() for c in lk}) == 6 * P.n_seeds
        assert [c.key() for c in registry.likelihood_set(P)] == [c.key() for c in lk[:6]]
        assert {c.seed for c in registry.likelihood_set(P, P.seed_list[-1])} == {P.seed_list[-1]}
    assert len(registry.needed_models("paper")) == 142


def test_chapter_06_models_are_the_registry_main_models(no_training):
    P = tvae.resolve("smoke")
    models = reconstructions.chapter_models(P)
    assert list(models) == ["VAE", "Affine-TVAE", "TPS-TVAE", "Affine-DTVAE"]
    assert no_training == [c.key() for c in registry.main_models(P) if c.model != "tps-dtvae"]


# ------------------------------------------------------------------- notebooks ----
FORBIDDEN_CALLS = {"Config": "builds a Config", "config": "builds a Config (P.config)",
                   "get_model": "reads the model cache directly", "load_model": "loads a checkpoint",
                   "train": "trains a model"}
"""Calls a chapter must not make: its models come from the registry through the store."""


PROFILE_METHODS = {"results_dir", "describe"}
"""The only methods a chapter calls on its profile ``P`` (settings, not models or data)."""


def problems_in(source: str) -> list[str]:
    """What is wrong with the code of one notebook cell (an empty list when nothing is)."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
        owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else None
        if name in FORBIDDEN_CALLS:
            problems.append(f"line {node.lineno}: {name}() {FORBIDDEN_CALLS[name]}")
        elif owner == "P" and name not in PROFILE_METHODS:
            problems.append(f"line {node.lineno}: P.{name}() (use tvae.book.store / registry)")
        elif owner == "store" and name in ("model", "trained", "models", "checkpoint"):
            # a model comes from the store, and the store only from registry configurations
            arg = ast.unparse(node.args[1]) if len(node.args) > 1 else ""
            if not arg or arg[0] in "\"'{[(":
                problems.append(f"line {node.lineno}: store.{name}({arg}) is not given a registry "
                                "configuration")
    if "tvae.experiments" in source or "import experiments" in source:
        problems.append("imports the removed tvae.experiments")
    return problems


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapters_take_their_models_from_the_registry(path):
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    problems = [f"code cell {i}, {p}" for i, cell in enumerate(cells)
                for p in problems_in("".join(cell["source"]))]
    assert not problems, f"{path.name}: " + "; ".join(problems)


def test_the_notebook_check_catches_a_hand_made_model():
    """The check above really fails on the patterns chapters 07, 09 and 11 used to have."""
    assert len(problems_in('aff = {k: P.model("affine-tvae", 20, **kw) for k, kw in AFFINE.items()}')) == 1
    assert len(problems_in('cfg = P.config("tps-tvae", 20, seed=1)\nm, _ = get_model(cfg, data)')) == 2
    assert len(problems_in('m = store.model(P, Config(model="vae", zdim=3))')) == 1
    assert len(problems_in('x = store.data(P).x_test\nm = store.model(P, registry.intro_model(P))')) == 0
