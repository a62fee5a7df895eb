"""Procedural traits: Big Five binning, religion shares, curated seed lists."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from persona_lab.errors import PersonaLabError
from persona_lab.personas import add_traits
from persona_lab.personas._text import parse_persona
from persona_lab.personas._traits import (
    BIG_FIVE_COLUMNS,
    BIG_FIVE_LEVELS,
    BIG_FIVE_PROBABILITIES,
    RELIGION_SHARES,
    SEED_COLUMNS,
    SeedCounts,
    big_five_levels,
    load_seeds,
    religion_distribution,
    sample_big_five,
    sample_religion,
    sample_seeds,
)


def test_big_five_levels_bin_edges() -> None:
    # cuts at -1, -0.5, 0.5, 1, intervals closed on the left
    z = np.array([-3.0, -1.0001, -1.0, -0.5001, -0.5, 0.0, 0.4999, 0.5, 0.9999, 1.0, 2.5])
    assert big_five_levels(z).tolist() == [0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4]


def test_big_five_probabilities_match_the_normal_cdf() -> None:
    phi = stats.norm.cdf
    expected = [phi(-1), phi(-0.5) - phi(-1), phi(0.5) - phi(-0.5), phi(1) - phi(0.5), 1 - phi(1)]
    assert BIG_FIVE_PROBABILITIES == pytest.approx(expected, abs=1e-12)
    # the rounded shares of the binned standard normal: 15.9 / 15.0 / 38.3 / 15.0 / 15.9 %
    assert [round(100 * p, 1) for p in BIG_FIVE_PROBABILITIES] == [15.9, 15.0, 38.3, 15.0, 15.9]


def test_sample_big_five_distribution_and_independence() -> None:
    traits = sample_big_five(40_000, np.random.default_rng(7))
    for col in BIG_FIVE_COLUMNS:
        counts = traits[col].value_counts().reindex(BIG_FIVE_LEVELS).to_numpy()
        p = stats.chisquare(counts, np.asarray(BIG_FIVE_PROBABILITIES) * len(traits)).pvalue
        assert p > 1e-4, col
    table = pd.crosstab(traits["openness"], traits["neuroticism"])
    assert stats.chi2_contingency(table).pvalue > 1e-4  # no dependence between traits


def test_big_five_text_format_parses_like_the_release() -> None:
    traits = sample_big_five(3, np.random.default_rng(1))
    for i, row in traits.iterrows():
        text = row["big five scores"]
        expected = ", ".join(f"{c.capitalize()}: {row[c]}" for c in BIG_FIVE_COLUMNS)
        assert text == expected
        assert parse_persona(f"big five scores: {text}\n").big_five_scores == text, i


def test_sample_big_five_is_seeded() -> None:
    a = sample_big_five(50, np.random.default_rng(3))
    b = sample_big_five(50, np.random.default_rng(3))
    pd.testing.assert_frame_equal(a, b)


def test_religion_distribution_from_pew_2014() -> None:
    dist = religion_distribution()
    # Pew RLS 2014: percentages excluding "Don't know/refused" (0.6) sum to 99.6 (published rows are rounded)
    total = sum(r.percent for r in RELIGION_SHARES if r.label is not None)
    assert total == pytest.approx(99.6)
    assert dist["Protestant"] == pytest.approx((25.4 + 14.7 + 6.5) / 99.6)
    assert dist["Catholic"] == pytest.approx(20.8 / 99.6)
    assert dist["Other Christian"] == pytest.approx((1.6 + 0.5 + 0.8 + 0.4) / 99.6)
    assert dist["Religiously Unaffiliated"] == pytest.approx((3.1 + 4.0 + 15.8) / 99.6)
    assert dist.sum() == pytest.approx(1.0)


def test_religion_labels_are_worded_like_the_release(shared: Path) -> None:
    texts = json.loads((shared / "persona" / "personas_sample100.json").read_text(encoding="utf-8"))
    released = {parse_persona(t).religion for t in texts}
    ours = set(religion_distribution().index)
    # the six labels that cover 97 of the 100 released personas are ours verbatim
    assert {"Catholic", "Protestant", "Religiously Unaffiliated", "Other Christian",
            "Other Non-Christian Religion", "Jewish", "Buddhist"} <= released & ours  # fmt: skip


def test_sample_religion_frequencies() -> None:
    draws = pd.Series(sample_religion(50_000, np.random.default_rng(11)))
    dist = religion_distribution()
    observed = draws.value_counts().reindex(dist.index, fill_value=0).to_numpy()
    assert stats.chisquare(observed, dist.to_numpy() * len(draws)).pvalue > 1e-4


def test_seed_lists_are_curated_dozens() -> None:
    seeds = load_seeds()
    for kind in ("quirks", "core_values", "mannerisms"):
        pool = getattr(seeds, kind)
        assert len(pool) >= 40, kind
        assert len(set(pool)) == len(pool), kind
        assert all(s == s.strip() and s and "\n" not in s for s in pool), kind


def test_sample_seeds_distinct_and_uniform() -> None:
    pool = ("a", "b", "c", "d")
    rows = sample_seeds(pool, 24_000, 2, np.random.default_rng(5))
    assert all(len(r) == 2 and r[0] != r[1] for r in rows)
    # 12 ordered pairs, each with probability 1/12
    counts = pd.Series([tuple(r) for r in rows]).value_counts()
    assert len(counts) == 12
    assert stats.chisquare(counts.to_numpy()).pvalue > 1e-4
    assert sample_seeds(pool, 3, 0, np.random.default_rng(5)) == [[], [], []]
    with pytest.raises(PersonaLabError, match="only 4 entries"):
        sample_seeds(pool, 1, 5, np.random.default_rng(5))
    # a negative count would otherwise select len(pool) - 1 seeds (argpartition reads it from the end)
    with pytest.raises(PersonaLabError, match="asked for -1 seeds per persona"):
        sample_seeds(pool, 2, -1, np.random.default_rng(5))


def test_add_traits_columns_and_counts() -> None:
    frame = pd.DataFrame({"age": [30, 40, 50]}, index=[7, 8, 9])
    out = add_traits(
        frame, np.random.default_rng(0), counts=SeedCounts(quirks=1, core_values=3, mannerisms=2)
    )
    assert list(frame.columns) == ["age"]  # input untouched
    assert list(out.index) == [0, 1, 2]
    for col in (*BIG_FIVE_COLUMNS, "big five scores", "religion", *SEED_COLUMNS.values()):
        assert col in out.columns
    assert [len(x) for x in out["seed_quirks"]] == [1, 1, 1]
    assert [len(x) for x in out["seed_core_values"]] == [3, 3, 3]
    assert [len(x) for x in out["seed_mannerisms"]] == [2, 2, 2]
    assert set(out["seed_quirks"].explode()) <= set(load_seeds().quirks)


def test_big_five_lookup_equals_direct_rendering() -> None:
    from persona_lab.personas._traits import big_five_text

    traits = sample_big_five(5_000, np.random.default_rng(2))
    assert traits["big five scores"].tolist() == big_five_text(traits).tolist()
    assert traits["big five scores"].nunique() > 1_000  # many of the 3,125 profiles occur


def test_released_big_five_matches_the_binned_normal(shared: Path) -> None:
    texts = json.loads((shared / "persona" / "personas_sample100.json").read_text(encoding="utf-8"))
    rows = []
    for t in texts:
        line = parse_persona(t).big_five_scores
        assert line is not None
        rows.append(dict(part.split(": ") for part in line.split(", ")))
    released = pd.DataFrame(rows)
    assert list(released.columns) == [
        "Openness",
        "Conscientiousness",
        "Extraversion",
        "Agreeableness",
        "Neuroticism",
    ]
    # 500 trait values from 100 personas against 15.9 / 15.0 / 38.3 / 15.0 / 15.9 %
    counts = released.stack().value_counts().reindex(BIG_FIVE_LEVELS, fill_value=0).to_numpy()
    assert counts.sum() == 500
    assert stats.chisquare(counts, np.asarray(BIG_FIVE_PROBABILITIES) * 500).pvalue > 0.01
