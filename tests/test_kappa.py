"""Cohen's kappa: hand-computed cases, the edge cases, the vectorized matrix against sklearn, statsmodels."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from persona_lab.agreement import (
    NO_SHARED_ITEMS,
    ONE_CLASS_ONLY,
    KappaDesign,
    bootstrap_kappa,
    bootstrap_kappa_matrix,
    cohen_kappa,
    fleiss_kappa,
    kappa_between,
    kappa_details,
    kappa_matrix,
    sklearn_kappa_matrix,
    statsmodels_kappa,
)
from persona_lab.errors import PersonaLabError

A, B = "A", "B"


def labels(rows: dict[str, dict[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(r, i, c) for r, items in rows.items() for i, c in items.items()],
        columns=["rater", "item", "choice"],
    )


# -- hand-computed values ----------------------------------------------------------------------------------------
def test_two_by_two_half() -> None:
    # agree on items 1, 3, 4: p_o = 3/4; a: A 2, B 2; b: A 1, B 3 -> p_e = (2*1 + 2*3)/16 = 1/2
    # kappa = (3/4 - 1/2) / (1 - 1/2) = 0.5
    assert cohen_kappa([A, A, B, B], [A, B, B, B]) == 0.5


def test_cohens_textbook_example() -> None:
    # 50 applications: both yes 20, a yes b no 5, a no b yes 10, both no 15.
    # p_o = 35/50 = 0.7; a says yes 25/50, b 30/50: p_e = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = 0.2/0.5 = 0.4
    a = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    d = kappa_details(a, b)
    assert (d.n_items, d.observed, d.expected, d.reason) == (50, 0.7, 0.5, "")
    assert d.kappa == pytest.approx(0.4, abs=1e-15)
    sm = statsmodels_kappa(a, b)
    assert sm.kappa == pytest.approx(0.4, abs=1e-12)
    assert sm.low < 0.4 < sm.high


def test_three_categories() -> None:
    # a = x x y z z z, b = x y y z x x: agreements at 1, 3, 4 -> p_o = 3/6
    # a: x 2, y 1, z 3; b: x 3, y 2, z 1 -> p_e = (2*3 + 1*2 + 3*1)/36 = 11/36
    # kappa = (18/36 - 11/36) / (25/36) = 7/25 = 0.28
    assert cohen_kappa(list("xxyzzz"), list("xyyzxx")) == pytest.approx(0.28, abs=1e-15)


def test_missing_labels_use_the_shared_items_only() -> None:
    # shared items 1, 4, 5: a = A A B, b = A B B; p_o = 2/3; a: A 2, B 1; b: A 1, B 2 -> p_e = 4/9
    # kappa = (6/9 - 4/9) / (5/9) = 2/5
    assert cohen_kappa([A, None, B, A, B], [A, B, None, B, B]) == pytest.approx(0.4, abs=1e-15)
    assert cohen_kappa([A, float("nan"), B, A, B], [A, B, None, B, B]) == pytest.approx(0.4, abs=1e-15)


def test_edge_cases() -> None:
    assert cohen_kappa([A, B, A], [A, B, A]) == 1.0  # perfect agreement, two labels used
    assert cohen_kappa([A, B, A, B], [B, A, B, A]) == -1.0  # p_o = 0, p_e = 1/2
    assert cohen_kappa([A, A, A, A], [A, A, B, B]) == 0.0  # one rater constant: p_o = p_e = 1/2
    one = kappa_details([A, A, A], [A, A, A])
    assert math.isnan(one.kappa) and one.reason == ONE_CLASS_ONLY and one.observed == 1.0 and one.n_items == 3
    none = kappa_details([A, None], [None, B])
    assert math.isnan(none.kappa) and none.reason == NO_SHARED_ITEMS and none.n_items == 0
    with pytest.raises(PersonaLabError, match="differ in length"):
        cohen_kappa([A], [A, B])


def test_kappa_matrix_by_hand() -> None:
    m = kappa_matrix(
        labels(
            {
                "r1": {"i1": A, "i2": A, "i3": B, "i4": B},
                "r2": {"i1": A, "i2": B, "i3": B, "i4": B},
                "r3": {"i5": A},
                "r4": {"i1": A, "i2": A, "i3": A},
            }
        )
    )
    k = m.kappa
    assert k.loc["r1", "r2"] == k.loc["r2", "r1"] == 0.5  # the 2 x 2 case above
    assert k.loc["r1", "r1"] == 1.0
    assert math.isnan(k.loc["r1", "r3"]) and m.reason.loc["r1", "r3"] == NO_SHARED_ITEMS
    assert m.n_items.loc["r1", "r3"] == 0 and m.n_items.loc["r1", "r2"] == 4
    assert math.isnan(k.loc["r3", "r3"]) and m.reason.loc["r3", "r3"] == ONE_CLASS_ONLY
    # r1 vs r4 on i1-i3: A A B vs A A A -> p_o = 2/3, p_e = (2*3 + 1*0)/9 = 2/3 -> kappa 0
    assert k.loc["r1", "r4"] == 0.0 and m.observed.loc["r1", "r4"] == pytest.approx(2 / 3)
    pairs = m.pairs()
    assert len(pairs) == 6 and set(pairs.columns) >= {"rater_a", "rater_b", "kappa", "n_items", "reason"}


def test_duplicate_label_is_an_error_naming_the_row() -> None:
    df = labels({"r1": {"i1": A}}).pipe(lambda d: pd.concat([d, d], ignore_index=True))
    with pytest.raises(PersonaLabError, match=r"row 1 labels item 'i1' a second time for rater 'r1'"):
        kappa_matrix(df)
    with pytest.raises(PersonaLabError, match="missing column"):
        kappa_matrix(df.drop(columns="choice"))


def test_symmetric_pooled_kappa_by_hand() -> None:
    # items q1, q2. People: p1 = A B, p2 = A A. Model: p1 = A B, p2 = B A.
    # (p1, p1): A B vs A B -> 1. (p2, p2): A A vs B A -> p_o 1/2, p_e (2*1)/4 -> 0.
    # (p1, p2) pools (people p1, model p2) = (A,B), (B,A) with (people p2, model p1) = (A,A), (A,B):
    # n 4, agree 1; people side A 3, B 1; model side A 2, B 2 -> p_e = (3*2 + 1*2)/16 = 1/2, p_o = 1/4
    # kappa = (1/4 - 1/2) / (1/2) = -1/2
    people = labels({"p1": {"q1": A, "q2": B}, "p2": {"q1": A, "q2": A}})
    model = labels({"p1": {"q1": A, "q2": B}, "p2": {"q1": B, "q2": A}})
    m = kappa_between(people, model, raters_a=["p1", "p2"], raters_b=["p1", "p2"], symmetric=True)
    assert m.kappa.loc["p1", "p1"] == 1.0 and m.kappa.loc["p2", "p2"] == 0.0
    assert m.kappa.loc["p1", "p2"] == m.kappa.loc["p2", "p1"] == -0.5
    plain = kappa_between(people, model)
    assert plain.kappa.loc["p1", "p2"] == cohen_kappa([A, B], [B, A]) == -1.0


def test_grouped_kappa_pools_individual_raters_by_hand() -> None:
    # persona p1: raters h1 = A B A, h2 = A B B; persona p2: rater h3 = B B A.
    # (p1, p1): the ordered pairs (h1, h2) and (h2, h1): n 6, agree 4; each side A 3, B 3 -> p_e = 18/36
    #           kappa = (4/6 - 1/2) / (1/2) = 1/3
    # (p1, p2): (h1, h3) agree 2, (h2, h3) agree 1: n 6, agree 3; p1 side A 3, B 3; p2 side A 2, B 4
    #           p_e = (3*2 + 3*4)/36 = 1/2, p_o = 1/2 -> kappa 0
    # (p2, p2): h3 has no other rater -> no shared items
    people = labels(
        {
            "h1": {"q1": A, "q2": B, "q3": A},
            "h2": {"q1": A, "q2": B, "q3": B},
            "h3": {"q1": B, "q2": B, "q3": A},
        }
    )
    counts = KappaDesign(people).counts().grouped({"h1": "p1", "h2": "p1", "h3": "p2"})
    m = counts.matrix()
    assert m.kappa.loc["p1", "p1"] == pytest.approx(1 / 3, abs=1e-15)
    assert m.kappa.loc["p1", "p2"] == 0.0
    assert math.isnan(m.kappa.loc["p2", "p2"]) and m.reason.loc["p2", "p2"] == NO_SHARED_ITEMS


# -- against sklearn ----------------------------------------------------------------------------------------------
def random_labels(n_raters: int, n_items: int, seed: int, missing: float = 0.3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(n_raters):
        kind = r % 4  # binary, three labels, constant rater, sparse rater
        cats = {0: ["A", "B"], 1: ["A", "B", "C"], 2: ["A"], 3: ["A", "B"]}[kind]
        p_missing = 0.9 if kind == 3 else missing
        for i in range(n_items):
            if rng.random() >= p_missing:
                rows.append((f"r{r}", f"i{i}", str(rng.choice(cats))))
    return pd.DataFrame(rows, columns=["rater", "item", "choice"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matrix_equals_a_per_pair_sklearn_loop(seed: int) -> None:
    df = random_labels(40, 30, seed)
    ours = kappa_matrix(df).kappa.to_numpy()
    ref = sklearn_kappa_matrix(df).to_numpy()
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    assert np.nanmax(np.abs(ours - ref)) < 1e-12
    assert np.isnan(ours).any() and (np.abs(ours[np.isfinite(ours)]) < 1).any()  # the edge cases occur


def test_between_equals_the_square_matrix_block() -> None:
    df = random_labels(12, 20, 5)
    a, b = (
        df[df["rater"].isin([f"r{i}" for i in range(6)])],
        df[~df["rater"].isin([f"r{i}" for i in range(6)])],
    )
    full = kappa_matrix(df).kappa
    cross = kappa_between(a, b).kappa
    block = full.loc[cross.index, cross.columns].to_numpy()
    assert np.array_equal(np.isnan(block), np.isnan(cross.to_numpy()))
    assert np.nanmax(np.abs(block - cross.to_numpy())) < 1e-15


@pytest.mark.slow
def test_matrix_is_much_faster_than_the_sklearn_loop() -> None:
    # 300 raters x 200 items: 45,150 pairs; the loop is timed on 2,000 of them and scaled up
    df = random_labels(300, 200, 7, missing=0.2)
    start = time.perf_counter()
    kappa_matrix(df)
    ours = time.perf_counter() - start
    rng = np.random.default_rng(0)
    pairs = [tuple(sorted(rng.choice(300, 2, replace=False))) for _ in range(2000)]
    start = time.perf_counter()
    sklearn_kappa_matrix(df, pairs=pairs)
    loop = (time.perf_counter() - start) * (300 * 301 / 2) / len(pairs)
    assert loop / ours > 100, (ours, loop)


# -- bootstrap, statsmodels ---------------------------------------------------------------------------------------
def test_item_weights_equal_duplicated_items() -> None:
    df = random_labels(6, 10, 3, missing=0.2)
    w = pd.Series({f"i{i}": i % 3 for i in range(10)})  # item i counted i % 3 times
    dup = pd.concat(
        [df[df["item"] == f"i{i}"].assign(item=f"i{i}#{k}") for i in range(10) for k in range(i % 3)],
        ignore_index=True,
    )
    weighted = kappa_matrix(df, weights=w, raters=[f"r{r}" for r in range(6)]).kappa.to_numpy()
    expanded = kappa_matrix(dup, raters=[f"r{r}" for r in range(6)]).kappa.to_numpy()
    assert np.array_equal(np.isnan(weighted), np.isnan(expanded))
    assert np.nanmax(np.abs(weighted - expanded)) < 1e-15


def test_bootstrap_intervals() -> None:
    # perfect agreement with both labels: every defined replicate is exactly 1
    assert bootstrap_kappa([A, B] * 10, [A, B] * 10, n_boot=200) == (1.0, 1.0)
    a = [A, A, B, B, A, B, A, B, A, A, B, B, A, B, B, A]
    b = [A, B, B, B, A, B, A, A, A, A, B, A, A, B, B, B]
    low, high = bootstrap_kappa(a, b, n_boot=500, seed=1)
    k = cohen_kappa(a, b)
    assert low < k < high and -1 <= low and high <= 1
    assert bootstrap_kappa(a, b, n_boot=500, seed=1) == (low, high)  # seeded
    nan_low, nan_high = bootstrap_kappa([A, A], [A, A], n_boot=50)  # one class only in every replicate
    assert math.isnan(nan_low) and math.isnan(nan_high)
    m = bootstrap_kappa_matrix(random_labels(5, 25, 2), n_boot=100)
    assert m.low.shape == (5, 5) and (m.defined.to_numpy() <= 1).all()
    with pytest.raises(PersonaLabError, match="at least 1 replicate"):
        bootstrap_kappa(a, b, n_boot=0)


def test_statsmodels_agrees_on_random_pairs() -> None:
    rng = np.random.default_rng(4)
    for _ in range(20):
        a = list(rng.choice(["x", "y", "z"], 25))
        b = [x if rng.random() < 0.6 else str(rng.choice(["x", "y", "z"])) for x in a]
        assert statsmodels_kappa(a, b).kappa == pytest.approx(cohen_kappa(a, b), abs=1e-12)


def test_fleiss_kappa_by_hand() -> None:
    # 3 raters, 4 items; per item counts (A, B): (3,0), (0,3), (2,1), (1,2)
    # P_i = (sum n_ij^2 - 3) / 6: 1, 1, 1/3, 1/3 -> mean 2/3; p_A = p_B = 6/12 -> P_e = 1/2
    # kappa = (2/3 - 1/2) / (1/2) = 1/3
    df = labels(
        {
            "h1": {"q1": A, "q2": B, "q3": A, "q4": A},
            "h2": {"q1": A, "q2": B, "q3": A, "q4": B},
            "h3": {"q1": A, "q2": B, "q3": B, "q4": B, "q5": A},  # q5: not labelled by everyone, left out
        }
    )
    k, n = fleiss_kappa(df)
    assert n == 4 and k == pytest.approx(1 / 3, abs=1e-12)


def test_grouped_kappa_never_pairs_a_person_with_themself() -> None:
    # h1 role-played both personas (identical labels); h2 only p2. Without the identity, (p1, p2) would pool
    # (h1 as p1, h1 as p2): perfect agreement. With it only (h1 as p1, h2) counts: A B vs B A -> kappa -1.
    people = labels({"h1/p1": {"q1": A, "q2": B}, "h1/p2": {"q1": A, "q2": B}, "h2/p2": {"q1": B, "q2": A}})
    groups = {"h1/p1": "p1", "h1/p2": "p2", "h2/p2": "p2"}
    who = {k: k.split("/")[0] for k in groups}
    with_identity = KappaDesign(people).counts().grouped(groups, identity=who).matrix()
    assert with_identity.kappa.loc["p1", "p2"] == -1.0 and with_identity.n_items.loc["p1", "p2"] == 2
    without = KappaDesign(people).counts().grouped(groups).matrix()
    assert without.n_items.loc["p1", "p2"] == 4  # (h1/p1, h1/p2) and (h1/p1, h2/p2)
