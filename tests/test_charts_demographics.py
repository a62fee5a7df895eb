"""Fig. 2 / Fig. 13 panels: exact shares and TVD on a hand-built population."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from persona_lab.census import total_variation
from persona_lab.charts import (
    census_demographics_chart,
    demographic_shares,
    demographics_comparison_chart,
    panel_tvd,
    persona_demographics_chart,
    save_figure,
)


def _people() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [5, 30, 70, 40],
            "sex": ["Female", "Male", "Female", "Female"],
            "race": ["White alone", "Two or More Races", "Black or African American alone", "Korean alone"],
            "education": [
                "Grade 1",
                "Bachelor's degree",
                "Doctorate degree",
                "GED or alternative credential",
            ],
            "income": [float("nan"), 0.0, 120000.0, 30000.0],
            "marital status": ["Never married or under 15 years old", "Married", "Widowed", "Separated"],
            "weight": [1.0, 1.0, 2.0, 4.0],
        }
    )


def test_weighted_shares_exact():
    shares = demographic_shares(_people(), "weight").set_index(["panel", "category"])["share"]
    # weights 1, 1, 2, 4 (total 8): Female = 1 + 2 + 4 = 7/8, 65+ = 2/8, Asian (Korean alone) = 4/8
    assert shares["Sex", "Female"] == pytest.approx(7 / 8)
    assert shares["Age", "65+"] == pytest.approx(2 / 8)
    assert shares["Race", "Asian"] == pytest.approx(4 / 8)
    assert shares["Education", "Graduate or professional"] == pytest.approx(2 / 8)
    assert shares["Education", "High school or GED"] == pytest.approx(4 / 8)
    # a missing income leaves its person out of the income panel: 1 + 2 + 4 = 7 remain
    assert shares["Personal income", "$100k+"] == pytest.approx(2 / 7)
    assert shares["Personal income", "None or loss"] == pytest.approx(1 / 7)
    assert shares["Marital status", "Never married"] == pytest.approx(1 / 8)
    for _, panel in shares.groupby(level="panel"):
        assert panel.sum() == pytest.approx(1.0)


def _shares_row_by_row(df: pd.DataFrame, weight: str | None = None) -> pd.DataFrame:
    """The former computation: each panel's function mapped over every row."""
    from persona_lab.charts._demographics import PANELS

    w = df[weight].to_numpy(float) if weight else np.ones(len(df))
    rows = []
    for title, column, to_category, order in PANELS:
        cats = df[column].map(to_category)
        keep = cats.notna().to_numpy()
        sums = pd.Series(w[keep]).groupby(cats[keep].to_numpy()).sum()
        total = sums.sum()
        for i, cat in enumerate(order):
            rows.append((title, cat, float(sums.get(cat, 0.0) / total) if total else 0.0, i))
    return pd.DataFrame(rows, columns=["panel", "category", "share", "order"])


def test_shares_per_distinct_value_equal_the_row_by_row_map():
    from persona_lab.census import load_embedded_model

    draws = load_embedded_model().sample(5_000, np.random.default_rng(3))
    extra = _people().assign(race=[None, "Two or More Races", float("nan"), "Korean alone"])
    frame = pd.concat([draws, extra], ignore_index=True)
    frame["weight"] = np.random.default_rng(4).random(len(frame))
    for weight in (None, "weight"):
        pd.testing.assert_frame_equal(demographic_shares(frame, weight), _shares_row_by_row(frame, weight))


def test_tvd_hand_computed():
    p = pd.Series({"a": 0.5, "b": 0.5})
    q = pd.Series({"a": 0.2, "c": 0.8})
    # |0.5-0.2| + |0.5-0| + |0-0.8| = 1.6 -> TVD 0.8
    assert total_variation(p, q) == pytest.approx(0.8)
    people = _people()
    tvd = panel_tvd(people, people.assign(weight=1.0))
    # Sex: unweighted Female 3/4 vs weighted 3/4 (weight column all 1) -> 0
    assert tvd.max() == pytest.approx(0.0)
    # weighted census: Female 7/8 vs personas 3/4 -> 1/8
    assert panel_tvd(people, people)["Sex"] == pytest.approx(1 / 8)


def test_charts_save_svg_and_png(tmp_path):
    people = _people()
    for name, chart in {
        "fig02": persona_demographics_chart(people),
        "fig13": census_demographics_chart(people),
        "cmp": demographics_comparison_chart(people, people),
    }.items():
        paths = save_figure(chart, name, tmp_path)
        assert [p.suffix for p in paths] == [".svg", ".png"]
        assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "<svg" in paths[0].read_text()[:500]
    assert not list(tmp_path.glob(".*tmp"))
