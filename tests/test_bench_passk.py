"""pass@k: the unbiased estimator (Chen et al. 2021) exact on hand-computed cases, stable for n = 1,000, equal to
a simulation; the empirical any-of-the-first-k rate equal to a direct count (PERSONA Fig. 12)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from persona_lab.bench import empirical_pass_at_k, pass_at_k, pass_at_k_curves, pass_at_k_exact
from persona_lab.errors import PersonaLabError


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (4, 1, 2, 0.5),
        # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (5, 2, 2, 0.7),
        # 1 - C(7,5)/C(10,5) = 1 - 21/252 = 11/12
        (10, 3, 5, 11 / 12),
        # k = 1 is the share of correct answers: 1/16
        (16, 1, 1, 0.0625),
        # no correct answer: 0
        (4, 0, 4, 0.0),
        # fewer wrong answers (3) than draws (4): every draw holds a correct one
        (4, 1, 4, 1.0),
        (3, 3, 1, 1.0),
        # 1 - C(11,4)/C(16,4) = 1 - 330/1820 = 149/182
        (16, 5, 4, 149 / 182),
        # n = 1,000, c = 1: 1 - C(999,16)/C(1000,16) = 1 - 984/1000 = 16/1000
        (1000, 1, 16, 0.016),
        # n = 1,000, c = 2: 1 - (984/1000)(983/999) = 31728/999000
        (1000, 2, 16, 31728 / 999000),
    ],
)
def test_pass_at_k_is_exact_on_hand_computed_cases(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_pass_at_k_is_stable_where_binomials_overflow_floats() -> None:
    # C(1000, 500) has 300 digits: as floats the ratio would overflow; the product form does not.
    assert math.comb(1000, 500) > 10**299
    for c in (0, 1, 7, 100, 400, 499, 500, 999, 1000):
        for k in (1, 16, 250, 500):
            ours = pass_at_k(1000, c, k)
            assert math.isfinite(ours) and 0.0 <= ours <= 1.0
            assert ours == pytest.approx(pass_at_k_exact(1000, c, k), rel=1e-9, abs=1e-12)


def test_pass_at_k_refuses_out_of_range_arguments() -> None:
    with pytest.raises(PersonaLabError, match=r"k = 5 with n = 4"):
        pass_at_k(4, 1, 5)
    with pytest.raises(PersonaLabError, match=r"c = 5 correct of n = 4"):
        pass_at_k(4, 5, 1)
    with pytest.raises(PersonaLabError, match=r"n = 0"):
        pass_at_k(0, 0, 1)
    with pytest.raises(PersonaLabError, match=r"whole number"):
        pass_at_k(4.0, 1, 1)  # type: ignore[arg-type]


def test_the_estimator_matches_a_simulation_of_drawing_k_of_n() -> None:
    # n = 16 answers of which c = 5 pass; draw k = 4 without replacement 200,000 times
    rng = np.random.default_rng(0)
    n, c, k, trials = 16, 5, 4, 200_000
    answers = np.array([True] * c + [False] * (n - c))
    draws = np.argsort(rng.random((trials, n)), axis=1)[:, :k]
    simulated = answers[draws].any(axis=1).mean()
    se = math.sqrt(simulated * (1 - simulated) / trials)  # about 0.00086
    assert abs(simulated - pass_at_k(n, c, k)) < 4 * se


def test_both_estimators_are_unbiased_for_the_true_pass_at_k_and_the_estimator_varies_less() -> None:
    # every item passes each answer with p = 0.2: the true pass@4 is 1 - 0.8**4 = 0.5904
    rng = np.random.default_rng(1)
    n, k, p, items = 16, 4, 0.2, 20_000
    passed = rng.random((items, n)) < p
    unbiased = np.array([pass_at_k(n, int(row.sum()), k) for row in passed])
    empirical = passed[:, :k].any(axis=1).astype(float)
    truth = 1 - 0.8**4
    assert abs(unbiased.mean() - truth) < 4 * unbiased.std() / math.sqrt(items)
    assert abs(empirical.mean() - truth) < 4 * empirical.std() / math.sqrt(items)
    assert unbiased.std() < empirical.std()


def _outcomes() -> pd.DataFrame:
    # three items, four answers each, in sampling order:
    #   A: fail, pass, fail, fail   B: fail x4   C: pass, fail, fail, fail
    pattern = {"A": [0, 1, 0, 0], "B": [0, 0, 0, 0], "C": [1, 0, 0, 0]}
    rows = [
        {
            "model": "m",
            "mode": "output_only",
            "persona_id": item,
            "prompt_id": "q",
            "sample": s,
            "passed": bool(v),
        }
        for item, values in pattern.items()
        for s, v in enumerate(values)
    ]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=3)  # the curves must not depend on row order


def test_the_empirical_rate_equals_a_direct_count() -> None:
    outcomes = _outcomes()
    curves = pass_at_k_curves(outcomes, [1, 2, 3, 4], n_boot=50)
    empirical = curves[curves["estimator"] == "empirical"].set_index("k")["value"]
    for k in (1, 2, 3, 4):
        count = sum(any(g.sort_values("sample")["passed"].head(k)) for _, g in outcomes.groupby("persona_id"))
        assert empirical[k] == count / 3
    # by hand: k=1 only C passes (1/3); from k=2 on A passes too (2/3)
    assert empirical.tolist() == [1 / 3, 2 / 3, 2 / 3, 2 / 3]
    assert empirical_pass_at_k([False, True, False, False], 1) is False
    assert empirical_pass_at_k([False, True, False, False], 2) is True


def test_the_unbiased_curve_averages_the_items_estimates() -> None:
    curves = pass_at_k_curves(_outcomes(), [1, 2, 3, 4], n_boot=50)
    unbiased = curves[curves["estimator"] == "unbiased"].set_index("k")["value"]
    # A and C: n=4, c=1 -> k/4; B: 0. Mean over items: (2 * k/4) / 3 = k/6
    assert unbiased.tolist() == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6])
    assert set(curves["items"]) == {3} and set(curves["n"]) == {4}


def test_a_k_larger_than_the_answers_of_an_item_is_refused() -> None:
    with pytest.raises(PersonaLabError, match=r"k = 5 is larger than the 4 answers"):
        pass_at_k_curves(_outcomes(), [1, 5], n_boot=10)
