"""Statistics for evaluation reports: confidence intervals of a mean, the paired bootstrap test,
and inter-rater agreement (Cohen's and Fleiss' kappa).

Every random choice takes a seed: the same inputs and seed give the same numbers.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from instructgen.errors import UserError


def mean_ci(values: Sequence[float], *, confidence: float = 0.95) -> dict[str, Any]:
    """Student-t interval: mean ± t_{(1+c)/2, n−1} · s / √n, s the sample standard deviation.

    With one value the interval is undefined (None)."""
    from scipy.stats import t

    x = np.asarray(values, dtype=float)
    n = int(x.size)
    if n == 0:
        raise UserError("no values to average")
    mean = float(x.mean())
    if n == 1:
        return {"mean": mean, "ci_low": None, "ci_high": None, "sd": None, "n": 1}
    sd = float(x.std(ddof=1))
    half = float(t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "sd": sd, "n": n}


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    n_boot: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Paired bootstrap of δ = mean_i (b_i − a_i) over the items both systems answered.

    Resample the n item indices with replacement n_boot times: δ*_k = mean of d over sample k.
    CI = the (1−c)/2 and (1+c)/2 percentiles of δ*; two-sided p-value under H0 (δ = 0, the
    bootstrap distribution shifted to 0): p = (1 + #{k : |δ*_k − δ| ≥ |δ|}) / (1 + n_boot).
    """
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    n = int(d.size)
    if n == 0:
        raise UserError("no items in common to compare")
    if n_boot < 1:
        raise UserError(f"n_boot must be >= 1, got {n_boot}")
    delta = float(d.mean())
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = max(1, 2_000_000 // n)  # bound the index matrix to ~16 MB
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        means[start:stop] = d[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    alpha = (1 - confidence) / 2
    extreme = int(np.sum(np.abs(means - delta) >= abs(delta) - 1e-12))
    return {
        "n": n,
        "mean_a": float(np.mean(a)),
        "mean_b": float(np.mean(b)),
        "diff": delta,
        "ci_low": float(np.quantile(means, alpha)),
        "ci_high": float(np.quantile(means, 1 - alpha)),
        "p_value": (1 + extreme) / (1 + n_boot),
        "n_boot": n_boot,
        "seed": seed,
        "confidence": confidence,
    }


def cohen_kappa(rater1: Sequence[Hashable], rater2: Sequence[Hashable]) -> float:
    """κ = (p_o − p_e) / (1 − p_e): p_o the observed agreement, p_e = Σ_c p1(c) · p2(c) the
    agreement expected by chance from each rater's own category frequencies (Cohen 1960).

    Both raters use one category on every unit: κ = 1 when they agree, else 0 (p_e = 1)."""
    if len(rater1) != len(rater2):
        raise UserError(f"{len(rater1)} ratings from rater 1 but {len(rater2)} from rater 2")
    n = len(rater1)
    if n == 0:
        raise UserError("no units rated by both raters")
    p_o = sum(x == y for x, y in zip(rater1, rater2)) / n
    c1, c2 = Counter(rater1), Counter(rater2)
    p_e = sum(c1[c] * c2[c] for c in c1) / (n * n)
    if p_e == 1:
        return 1.0 if p_o == 1 else 0.0
    return (p_o - p_e) / (1 - p_e)


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float:
    """Fleiss' κ = (P̄ − P̄_e) / (1 − P̄_e) for N units each rated by the same n raters into k
    categories; table[i][j] = n_ij raters put unit i in category j (Fleiss 1971).

    P_i = (Σ_j n_ij² − n) / (n(n − 1)), P̄ = mean_i P_i, p_j = Σ_i n_ij / (N n), P̄_e = Σ_j p_j²."""
    x = np.asarray(table, dtype=float)
    if x.ndim != 2 or x.shape[0] == 0:
        raise UserError("Fleiss' kappa needs a non-empty units × categories table")
    n_raters = x.sum(axis=1)
    n = float(n_raters[0])
    if n < 2 or not np.all(n_raters == n):
        raise UserError("Fleiss' kappa needs the same number (>= 2) of ratings for every unit")
    units = x.shape[0]
    p_i = ((x * x).sum(axis=1) - n) / (n * (n - 1))
    p_bar = float(p_i.mean())
    p_j = x.sum(axis=0) / (units * n)
    p_e = float((p_j * p_j).sum())
    if p_e == 1:
        return 1.0 if p_bar == 1 else 0.0
    return (p_bar - p_e) / (1 - p_e)


def category_table(
    units: Sequence[Sequence[Hashable]], categories: Sequence[Hashable]
) -> list[list[int]]:
    """The Fleiss table: for each unit's list of ratings, how many fell in each category."""
    index = {c: j for j, c in enumerate(categories)}
    table = []
    for ratings in units:
        row = [0] * len(categories)
        for r in ratings:
            row[index[r]] += 1
        table.append(row)
    return table
