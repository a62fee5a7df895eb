"""Raking to the ACS 2018 national margins: IPF by hand, refusals, the shipped margins, personas that look like
the United States (from the embedded model and from the 12 PUMS states), and the comparison figures."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from persona_lab.census import (
    RAKED_ITEMS,
    Margin,
    NationalMargins,
    effective_sample_size,
    load_national_margins,
    national_comparison,
    national_tvd,
    open_source,
    rake_weights,
)
from persona_lab.census._margins import RakedItem, margin_label_groups
from persona_lab.config import CensusConfig
from persona_lab.errors import PersonaLabError


def _margins(**items: tuple[tuple[str, ...], tuple[int, ...]]) -> NationalMargins:
    return NationalMargins(
        year=2018,
        geography="test",
        source="hand-made margins",
        items={
            name: Margin(name, "all", sum(counts), cats, counts, tuple(f"T_{c}" for c in cats))
            for name, (cats, counts) in items.items()
        },
        path=Path("hand-made.json"),
    )


def _column_item(name: str, column: str, universe: str = "everyone", adults_only: bool = False) -> RakedItem:
    def categories(frame: pd.DataFrame) -> np.ndarray:
        values = frame[column].astype(object).to_numpy()
        return np.where(frame["adult"].to_numpy(), values, None) if adults_only else values

    return RakedItem(name, name, (column,), universe, categories)


TINY = pd.DataFrame(
    {"g": ["a", "a", "b", "b"], "h": ["x", "y", "x", "y"], "adult": [True, True, True, False]}
)


def test_ipf_hand_computed_on_an_independent_table() -> None:
    # Base weights 1, 2, 2, 4 form a table with odds ratio 1 (1 * 4 = 2 * 2), so raking to g = (0.5, 0.5) and
    # h = (0.4, 0.6) gives the product of the margins: cells 0.2, 0.3, 0.2, 0.3 of the total 9.
    margins = _margins(g=(("a", "b"), (1, 1)), h=(("x", "y"), (2, 3)))
    fit = rake_weights(
        TINY,
        np.array([1.0, 2.0, 2.0, 4.0]),
        margins=margins,
        items=[_column_item("g", "g"), _column_item("h", "h")],
    )
    assert fit.weights == pytest.approx([1.8, 2.7, 1.8, 2.7], abs=1e-6)
    # Each weight is the base weight times one factor per item category.
    f = fit.factors
    assert fit.weights[0] == pytest.approx(1.0 * f["g"]["a"] * f["h"]["x"])
    rep = fit.report
    assert rep.converged and rep.max_gap <= 1e-6 and rep.iterations >= 1
    # Kish ESS: (1+2+2+4)^2 / (1+4+4+16) = 81/25 before; (9)^2 / (2*1.8^2 + 2*2.7^2) = 81/21.06 after.
    assert rep.ess_before == pytest.approx(81 / 25) and rep.ess_after == pytest.approx(81 / 21.06, rel=1e-5)
    assert rep.ess_after == pytest.approx(effective_sample_size(fit.weights))
    # TVD before: g = (3/9, 6/9) vs (0.5, 0.5) -> 1/6.
    assert rep.items[0].tvd_before == pytest.approx(1 / 6) and rep.items[0].tvd_after == pytest.approx(
        0, abs=1e-6
    )


def test_an_item_touches_only_its_universe() -> None:
    # h over adults only (rows 0-2): row 3 keeps its weight relative to... nothing: only g moves it.
    margins = _margins(h=(("x", "y"), (1, 1)))
    fit = rake_weights(TINY, np.ones(4), margins=margins, items=[_column_item("h", "h", "adults", True)])
    # Adults: x = rows 0 and 2 (weight 2), y = row 1 (weight 1), universe total 3 -> x rows 0.75 each, y 1.5.
    assert fit.weights == pytest.approx([0.75, 1.5, 0.75, 1.0])
    assert fit.report.items[0].records == 3


def test_an_unreachable_margin_names_the_cell() -> None:
    margins = _margins(g=(("a", "b", "c"), (1, 1, 1)))
    with pytest.raises(PersonaLabError) as exc:
        rake_weights(TINY, np.ones(4), margins=margins, items=[_column_item("g", "g")], source="test records")
    msg = str(exc.value)
    assert "national margin 'g', category 'c' (T_c, 33.33% of the all)" in msg
    assert "none of the test records in the item's universe (everyone) holds it" in msg
    assert "--population states" in msg


def test_a_label_outside_the_margin_is_an_error() -> None:
    margins = _margins(g=(("a",), (1,)))
    with pytest.raises(PersonaLabError, match="row 2: category 'b' of item 'g' is not a category"):
        rake_weights(TINY, np.ones(4), margins=margins, items=[_column_item("g", "g")])


def test_shipped_margins_cite_their_tables_and_add_up() -> None:
    m = load_national_margins()
    assert m.year == 2018 and list(m.items)[:3] == ["sex", "age_sex", "race"]
    race = m["race"]
    assert race.universe_total == 327_167_439 and race.tables[0] == "B02001_002"
    assert race.shares["White alone"] == pytest.approx(236_173_020 / 327_167_439)
    assert m["education_25plus"].universe_total == 223_158_847
    assert m["income_15plus"].tables[-1] == "B06010_011"
    assert {it.item for it in RAKED_ITEMS} == set(m.items) - {"hispanic"}
    with pytest.raises(PersonaLabError, match="national margins ship for ACS 2018 only, not 2019"):
        load_national_margins(2019)


def test_label_groups_cover_every_pums_code() -> None:
    race = margin_label_groups("RAC2P")
    assert (
        race["Korean alone"] == "Asian alone"
        and race["Chamorro alone"] == race["Guamanian or Chamorro alone"]
    )
    assert race["All combinations of Asian races only"] == "Asian alone"
    assert race["Navajo alone"] == "American Indian and Alaska Native alone"
    assert margin_label_groups("MIL")["Now on active duty"] is None  # outside the civilian universes
    assert margin_label_groups("MIL")["Non-Veteran"] == "Nonveteran"  # persona wording of MIL 4
    assert margin_label_groups("CIT")["Born in the United States"] == "Native"
    assert (
        margin_label_groups("SCHL")["GED or alternative credential"]
        == "High school graduate (includes equivalency)"
    )


def test_national_comparison_universes_by_hand() -> None:
    from conftest import ADULT_ROW

    child = ADULT_ROW | {"age": 10, "education": "Grade 4", "marital status": "Never married or under 15 years old",
                         "employment status": "Not applicable", "veteran status": "Not applicable", "income": 0.0,
                         "class of worker": "Not applicable"}  # fmt: skip
    frame = pd.DataFrame([ADULT_ROW, ADULT_ROW | {"education": "Master's degree"}, child])
    cmp = national_comparison(frame).set_index(["item", "category"])
    # Education over 25+: the two adults, one Bachelor's, one Master's (Graduate) -> 1/2 each; the child is out.
    assert cmp.loc[("education_25plus", "Bachelor's degree"), "share"] == 0.5
    assert cmp.loc[("education_25plus", "Graduate or professional degree"), "share"] == 0.5
    assert cmp.loc[("education_25plus", "Bachelor's degree"), "records"] == 2
    assert cmp.loc[("age_sex", "Female under 18"), "share"] == pytest.approx(1 / 3)
    assert cmp.loc[("income_15plus", "$50000 to $64999"), "share"] == 1.0  # 52,000, adults only
    tvd = national_tvd(national_comparison(frame))
    assert tvd["sex"] == pytest.approx(161_118_151 / 327_167_439)  # all female: TVD = the male share


def _within(personas: pd.DataFrame, bound: float) -> pd.Series:
    tvd = national_tvd(national_comparison(personas))
    assert (tvd <= bound).all(), tvd[tvd > bound]
    return tvd


@pytest.mark.slow
def test_20000_personas_from_the_raked_embedded_model_match_the_nation() -> None:
    from persona_lab.personas import generate_personas

    states = open_source(CensusConfig())
    before = national_tvd(national_comparison(states.source.sample(20_000, np.random.default_rng(0))))
    assert before["race"] > 0.12  # 80.8 % White alone in the 12 states vs 72.2 % nationally
    start = time.perf_counter()
    opened = open_source(CensusConfig(population="national"))
    personas, _ = generate_personas(opened.source, 20_000, seed=0)
    seconds = time.perf_counter() - start
    tvd = _within(personas, 0.03)  # measured max 0.011 (sex by age)
    report = opened.raking
    assert report is not None and report.converged and report.max_gap <= 1e-6
    assert "place of birth" in report.not_raked and "margin hispanic" in report.not_raked
    assert report.max_association_shift < 0.05  # measured 0.014
    assert opened.population == "national" and "raked to US national margins" in opened.label
    assert opened.description.startswith("population: the United States in 2018")
    assert opened.summary()["raking"]["not_raked"]["place of birth"]
    print(f"embedded model national: max TVD {tvd.max():.4f}, ESS {report.ess_after:,.0f}, {seconds:.1f} s")


@pytest.mark.slow
def test_20000_personas_from_the_12_pums_states_raked_match_the_nation(shared: Path) -> None:
    from persona_lab.census.fit_model import default_pums_files
    from persona_lab.personas import generate_personas

    opened = open_source(CensusConfig(pums=default_pums_files(shared), population="national"))
    personas, _ = generate_personas(opened.source, 20_000, seed=1)
    _within(personas, 0.03)  # measured max 0.011
    report = opened.raking
    assert report is not None and report.converged and report.records == 146_727
    assert report.ess_before == pytest.approx(79_229.4, abs=1) and report.ess_after < report.ess_before
    # The census table for Fig. 13 is the frame with its raked weights: it matches the margins exactly.
    table = opened.census_table()
    raked = national_tvd(national_comparison(table, table[opened.weight_column].to_numpy()))
    assert raked.max() < 1e-4
    # The personas keep their records' PWGTP in `weight`; they were drawn by the raked weights.
    assert set(personas["weight"]) <= set(table["weight"])


@pytest.mark.slow
def test_one_small_state_cannot_reach_every_national_margin(shared: Path) -> None:
    vt = shared / "pums" / "psam_p50_2018_1yr_VT.csv"
    with pytest.raises(PersonaLabError, match="category 'Native Hawaiian and Other Pacific Islander alone'"):
        open_source(CensusConfig(pums=[vt], population="national"))


@pytest.mark.slow
def test_comparison_figures_render(tmp_path: Path, shared: Path) -> None:
    from persona_lab.charts import (
        fig13_persona_vs_national,
        personas_vs_release,
        release_comparison,
        save_figure,
    )
    from persona_lab.personas import generate_personas, read_personas, table_from_personas

    opened = open_source(CensusConfig(population="national"))
    ours, _ = generate_personas(opened.source, 500, seed=2)
    chart = fig13_persona_vs_national(ours, source_label=opened.label)
    spec = chart.to_dict()
    assert "place of birth" in spec["title"]["subtitle"][1]
    assert any("Race (TVD " in str(s) for s in spec["facet"]["sort"])
    release = table_from_personas(read_personas(shared / "persona" / "personas_sample100.json"), 0)
    shares, unmapped = release_comparison(ours, release)
    # "White" and "White alone", "Single" and "Never married ...", "Employed" and "Civilian employed, at work".
    rel = shares.set_index(["attribute", "category"])["release"]
    assert rel[("race", "White alone")] == pytest.approx(0.64)  # 60 "White alone" + 4 "White"
    assert rel[("marital status", "Never married")] == pytest.approx(0.38)  # 27 + 8 "Never married" + 2 + 1
    counts = unmapped[unmapped["side"] == "release"].set_index(["attribute", "label"])["count"]
    assert counts[("citizenship", "US Citizen")] == 9 and counts[("employment status", "Student")] == 4
    for attribute, part in shares.groupby("attribute"):
        assert part["release"].sum() == pytest.approx(1.0), attribute
    for name, fig in (("national", chart), ("release", personas_vs_release(ours, release))):
        paths = save_figure(fig, tmp_path / name)
        assert all(p.stat().st_size > 1000 for p in paths)
