"""Profiles: the seed-count parameter (issue 10) and its validation."""

from __future__ import annotations

import pytest

import tvae
from tvae.errors import ConfigError


def test_seed_list_defaults_three_seeds_in_the_paper_profile_one_elsewhere():
    assert tvae.resolve("paper").n_seeds == 3
    assert tvae.resolve("paper").seed_list == (0, 1, 2)
    for name in ("quick", "smoke"):
        assert tvae.resolve(name).seed_list == (0,)
    assert "seeds 0-2" in tvae.resolve("paper").describe()
    assert "seed 0," in tvae.resolve("quick").describe()


def test_seeds_parameter_sets_the_count_from_the_profile_seed():
    assert tvae.resolve("paper", seeds=1).seed_list == (0,)
    assert tvae.resolve("smoke", seeds=3, seed=5).seed_list == (5, 6, 7)
    # a non-default seed count is part of the results folder's name (never overwrites)
    assert tvae.resolve("paper", seeds=1).results_name == "paper-seeds1"
    assert tvae.resolve("paper", seeds=3).results_name == "paper"
    assert tvae.resolve("quick", seeds=2).results_name == "quick-seeds2"
    # the local-optima study keeps its own list
    assert tvae.resolve("paper", seeds=1).seeds == tvae.resolve("paper").seeds


@pytest.mark.parametrize("bad", [0, -2])
def test_seed_count_below_one_is_refused(bad):
    with pytest.raises(ConfigError, match=r"seed count must be at least 1, got -?\d+; pass -p seeds 1"):
        tvae.resolve("paper", seeds=bad)


@pytest.mark.parametrize("bad", ["3", 2.0, True])
def test_seed_count_of_the_wrong_type_is_refused(bad):
    with pytest.raises(ConfigError, match="parameter seeds must be an integer"):
        tvae.resolve("quick", seeds=bad)
