"""The on-disk cache of linear-probe results (issue 11): keyed by the features' content, the
protocol, C and scikit-learn's version; atomic; a damaged entry is recomputed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tvae.evaluate as ev


@pytest.fixture
def problem():
    r = np.random.default_rng(0)
    y = np.arange(120) % 3
    x = r.normal(size=(120, 5)) + y[:, None]
    return x[:90], y[:90], x[90:], y[90:]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TVAE_CACHE", str(tmp_path))
    monkeypatch.delenv("TVAE_PROBE_CACHE", raising=False)
    return tmp_path / "probes"


def test_cached_probe_equals_the_probe_and_is_reused(problem, cache, monkeypatch):
    want = ev.linear_probe(*problem, c=1.0, folds=3)
    got = ev.cached_linear_probe(*problem, c=1.0, folds=3)
    assert got == want
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".json"

    def boom(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr(ev, "linear_probe", boom)
    assert ev.cached_linear_probe(*problem, c=1.0, folds=3) == want        # from disk
    with pytest.raises(AssertionError, match="recomputed"):                # another C
        ev.cached_linear_probe(*problem, c=0.1, folds=3)
    other = (problem[0] + 1e-9, *problem[1:])
    with pytest.raises(AssertionError, match="recomputed"):                # other data
        ev.cached_linear_probe(*other, c=1.0, folds=3)
    import sklearn
    monkeypatch.setattr(sklearn, "__version__", "0.0-other")
    with pytest.raises(AssertionError, match="recomputed"):                # other scikit-learn
        ev.cached_linear_probe(*problem, c=1.0, folds=3)
    assert not list(cache.glob(".*.tmp"))


def test_damaged_entry_is_recomputed_and_cache_can_be_turned_off(problem, cache, monkeypatch):
    want = ev.cached_linear_probe(*problem, c=1.0, folds=3)
    (entry,) = cache.iterdir()
    entry.write_text("{not json")
    assert ev.cached_linear_probe(*problem, c=1.0, folds=3) == want
    assert entry.read_text().startswith("{")
    monkeypatch.setenv("TVAE_PROBE_CACHE", "0")
    entry.unlink()
    assert ev.cached_linear_probe(*problem, c=1.0, folds=3) == want
    assert not entry.exists()


def test_common_c_scores_are_cached_and_unchanged(problem, cache):
    x, y = problem[0], problem[1]
    noise = np.random.default_rng(1).normal(size=x.shape)
    first = ev.choose_common_c([x, noise], y, grid=(0.1, 1.0), folds=3)
    assert len(list(cache.iterdir())) == 4                    # 2 feature sets x 2 C values
    assert ev.choose_common_c([x, noise], y, grid=(0.1, 1.0), folds=3) == first
    expected = {c: float(np.mean([ev.cv_accuracy(f, y, c, folds=3).mean() for f in (x, noise)]))
                for c in (0.1, 1.0)}
    assert first[1] == expected


def test_cached_test_accuracy_is_one_fit_and_is_reused(problem, cache, monkeypatch):
    """Table 1's z+u column: the test accuracy of one fit on all the training features (as the
    probe's final fit), cached like the probes."""
    want = ev.make_svm(0.5).fit(problem[0], problem[1]).score(problem[2], problem[3]) * 100
    assert ev.cached_test_accuracy(*problem, c=0.5) == pytest.approx(want)
    assert ev.cached_test_accuracy(*problem, c=0.5) == ev.linear_probe(*problem, c=0.5, folds=3)["test"]

    def boom(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr(ev, "make_svm", boom)
    assert ev.cached_test_accuracy(*problem, c=0.5) == pytest.approx(want)     # from disk
    with pytest.raises(AssertionError, match="recomputed"):                    # another C
        ev.cached_test_accuracy(*problem, c=2.0)


def test_cache_entries_are_found_by_another_process(problem, cache, monkeypatch, tmp_path):
    """The key is the content and the protocol, nothing of the process (numpy seeds its global
    random state afresh in every process; key version 1 hashed it, so no entry was ever found
    by another process)."""
    np.save(tmp_path / "p.npy", np.concatenate([problem[0], problem[1][:, None]], 1))
    np.save(tmp_path / "q.npy", np.concatenate([problem[2], problem[3][:, None]], 1))
    code = ("import numpy as np, json, tvae.evaluate as ev\n"
            f"p = np.load({str(tmp_path / 'p.npy')!r}); q = np.load({str(tmp_path / 'q.npy')!r})\n"
            "r = ev.cached_linear_probe(p[:, :-1], p[:, -1].astype(np.int64), q[:, :-1],"
            " q[:, -1].astype(np.int64), c=1.0, folds=3)\n"
            "print(json.dumps(r))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "TVAE_CACHE": str(cache.parent)})
    theirs = json.loads(out.stdout)
    assert len(list(cache.iterdir())) == 1

    def boom(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr(ev, "linear_probe", boom)
    assert ev.cached_linear_probe(*problem, c=1.0, folds=3) == theirs      # the other process's entry


def test_run_probes_in_worker_processes_gives_the_serial_results(problem, monkeypatch):
    """``run_probes`` with two worker processes: the same numbers as one, each under its task's
    index (the largest problems run first)."""
    monkeypatch.setenv("TVAE_PROBE_CACHE", "0")
    zu = (np.c_[problem[0], problem[0][:, :1]], problem[1], np.c_[problem[2], problem[2][:, :1]], problem[3])
    small = tuple(a[:60] for a in problem)
    tasks = [(small, None, 1.0), (problem, zu, 0.1), (problem, None, 10.0)]
    serial = dict(ev.run_probes(tasks, jobs=1))
    parallel = dict(ev.run_probes(tasks, jobs=2))
    assert sorted(serial) == sorted(parallel) == [0, 1, 2]
    for i, (arrays, arrays_zu, c) in enumerate(tasks):
        want = ev.linear_probe(*arrays, c=c)
        for res in (serial[i], parallel[i]):
            assert {k: res[k] for k in want} == want
            assert ("test_zu" in res) == (arrays_zu is not None) and res["seconds"] > 0
    direct = ev.make_svm(0.1).fit(zu[0], zu[1]).score(zu[2], zu[3]) * 100
    assert serial[1]["test_zu"] == parallel[1]["test_zu"] == pytest.approx(direct)
    assert [i for i, _ in ev.run_probes(tasks, jobs=1)] == [1, 2, 0]         # largest first
