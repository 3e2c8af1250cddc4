"""Confidence intervals, the paired bootstrap, and kappa against values worked out in the literature."""

from __future__ import annotations

import pytest

from instructgen.errors import UserError
from instructgen.evaluate.stats import (
    category_table,
    cohen_kappa,
    fleiss_kappa,
    mean_ci,
    paired_bootstrap,
)


def _pairs(yes_yes: int, yes_no: int, no_yes: int, no_no: int) -> tuple[list[str], list[str]]:
    """Two raters' labels from a 2×2 agreement table (rater A in rows, rater B in columns)."""
    cells = [("y", "y", yes_yes), ("y", "n", yes_no), ("n", "y", no_yes), ("n", "n", no_no)]
    a = [x for x, _, k in cells for _ in range(k)]
    b = [y for _, y, k in cells for _ in range(k)]
    return a, b


@pytest.mark.parametrize(
    ("table", "kappa"),
    [
        # Wikipedia "Cohen's kappa", worked example: p_o = 0.7, p_e = 0.5 → κ = 0.4
        ((20, 5, 10, 15), 0.4),
        # same p_o = 0.60, different marginals: κ = 0.1304 and κ = 0.2593
        ((45, 15, 25, 15), 0.1304),
        ((25, 35, 5, 35), 0.2593),
    ],
)
def test_cohen_kappa_matches_worked_examples(table, kappa):
    assert cohen_kappa(*_pairs(*table)) == pytest.approx(kappa, abs=1e-4)


def test_cohen_kappa_edges():
    assert cohen_kappa([1, 2, 3, 1], [1, 2, 3, 1]) == 1.0
    assert cohen_kappa([1, 1, 1], [1, 1, 1]) == 1.0  # one category only: agreement, not chance
    with pytest.raises(UserError):
        cohen_kappa([1, 2], [1])


def test_fleiss_kappa_matches_fleiss_1971_example():
    # Wikipedia "Fleiss' kappa" worked example: 10 subjects, 14 raters, 5 categories;
    # P̄ = 0.378, P̄_e = 0.213, κ = 0.210.
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)
    assert fleiss_kappa([[3, 0], [0, 3], [3, 0]]) == 1.0
    with pytest.raises(UserError):
        fleiss_kappa([[2, 1], [1, 1]])  # unequal numbers of raters


def test_fleiss_equals_its_formula_on_a_table_built_from_ratings():
    units = [[1, 1, 2], [2, 2, 2], [3, 1, 3], [1, 1, 1]]
    table = category_table(units, [1, 2, 3])
    assert table == [[2, 1, 0], [0, 3, 0], [1, 0, 2], [3, 0, 0]]
    # by hand: P_i = (Σ n_ij² − 3) / 6 → 1/3, 1, 1/3, 1; P̄ = 2/3;
    # p = (6/12, 4/12, 2/12); P̄_e = (36 + 16 + 4) / 144 = 7/18; κ = (2/3 − 7/18) / (11/18) = 5/11
    assert fleiss_kappa(table) == pytest.approx(5 / 11)


def test_mean_ci_is_the_student_t_interval():
    result = mean_ci([1, 2, 3, 4, 5])
    # s = √2.5, t_{0.975, 4} = 2.776445: half-width 2.776445 · 1.581139 / √5 = 1.963243
    assert result["mean"] == 3.0
    assert result["ci_low"] == pytest.approx(3 - 1.963243, abs=1e-5)
    assert result["ci_high"] == pytest.approx(3 + 1.963243, abs=1e-5)
    assert mean_ci([4.0])["ci_low"] is None


def test_paired_bootstrap_detects_a_real_difference_and_not_a_null_one():
    a = [0.0, 1.0] * 50
    same = paired_bootstrap(a, a, n_boot=2000, seed=1)
    assert same["diff"] == 0 and same["p_value"] == 1.0
    better = [1.0] * 100
    result = paired_bootstrap(a, better, n_boot=2000, seed=1)
    assert result["diff"] == pytest.approx(0.5)
    assert result["p_value"] < 0.01
    assert 0 < result["ci_low"] <= 0.5 <= result["ci_high"]
    assert paired_bootstrap(a, better, n_boot=2000, seed=1) == result  # seeded: same numbers
    # 10 items flipped up, 5 down: a small difference (0.05) that 15 discordant items cannot show
    noisy = [1.0 - x if i % 10 == 0 or i % 20 == 5 else x for i, x in enumerate(a)]
    small = paired_bootstrap(a, noisy, n_boot=2000, seed=1)
    assert small["diff"] == pytest.approx(0.05)
    assert small["p_value"] > 0.1 and small["ci_low"] < 0 < small["ci_high"]
