"""Quality checks of the open-ended persona attributes: hand-built cases and the released PERSONA sample."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from persona_lab.personas._quality import (
    LEANS,
    MAX_FIELD_WORDS,
    check_quality,
    classify_lean,
    copied_census_attribute,
    field_summary,
    lean_distribution,
    leans_conflict,
    left_right_ratio,
    quality_flags,
)
from persona_lab.personas._schema import OPEN_ENDED_KEYS
from persona_lab.personas._text import is_absent, is_absent_or_placeholder, read_personas


def released(shared: Path) -> pd.DataFrame:
    """The 100 released personas as a table (PERSONA keys as columns, absent keys as None)."""
    personas = read_personas(shared / "persona" / "personas_sample100.json")
    return pd.DataFrame([p.attributes() for p in personas])


@pytest.mark.parametrize(
    ("text", "lean"),
    [
        ("Liberal", "left"),
        ("Democrat", "left"),
        ("Democratic", "left"),
        ("Identifies as a moderate Democrat.", "left"),  # tier 1 (Democrat) outranks tier 2 (moderate)
        ("Left-leaning, supports workers' rights", "left"),
        ("Green Party", "left"),
        ("Conservative", "right"),
        ("Republican", "right"),
        ("Libertarianism", "right"),
        ("Leans conservative, but is not particularly politically active.", "right"),
        ("Fiscally conservative, socially liberal", "mixed"),
        ("Moderate", "center"),
        ("Independent, with a focus on social issues", "center"),
        ("Moderate, with a focus on social justice", "center"),  # tier 2 outranks tier 4
        ("Too young to vote", "unformed"),
        ("Too young to vote, but interested in social justice issues", "unformed"),  # tier 3 before tier 4
        ("Too young to vote; leans progressive", "left"),
        ("Not applicable", "unformed"),
        ("Still forming", "unformed"),
        ("Social justice and equality", "left"),
        ("Environmentalism", "left"),
        ("Believes in traditional values and hard work", "right"),
        ("Pragmatic", "other"),
        ("Believes in the power of music", "other"),
        ("", "missing"),
        ("None", "missing"),
        (None, "missing"),
        (float("nan"), "missing"),
        ("Nonpartisan", "center"),
        ("Undemocratic tendencies", "other"),  # 'democrat' must start a word
    ],
)
def test_classify_lean(text: object, lean: str) -> None:
    assert classify_lean(text) == lean


def test_leans_conflict_only_for_opposite_sides() -> None:
    assert leans_conflict("left", "right") and leans_conflict("right", "left")
    assert not leans_conflict("left", "left")
    assert not leans_conflict("left", "center")
    assert not leans_conflict("mixed", "right")
    assert not leans_conflict("missing", "missing")


def test_the_two_missing_value_predicates() -> None:
    for absent in (None, float("nan"), pd.NA, "", "  \t"):
        assert is_absent(absent) and is_absent_or_placeholder(absent), absent
    for placeholder in ("None", "none", " NaN ", "null", "N/A"):
        # a placeholder is a value of the census ("disability: None") but no open-ended answer
        assert not is_absent(placeholder) and is_absent_or_placeholder(placeholder), placeholder
    for value in ("Not applicable", "0", "Nonetheless busy"):
        assert not is_absent(value) and not is_absent_or_placeholder(value), value


def test_copied_census_attribute_normalises_codes_case_and_punctuation() -> None:
    census = {
        "occupation category": "LGL-Paralegals And Legal Assistants",
        "employment status": "Civilian employed, at work",
        "income": 52000.0,
        "class of worker": "Not applicable",
    }
    assert copied_census_attribute("Paralegals and legal assistants.", census) == "occupation category"
    assert copied_census_attribute("civilian employed, at work", census) == "employment status"
    assert copied_census_attribute("Drafts briefs for two partners", census) is None
    assert copied_census_attribute("52000.0", census) is None  # numbers are never compared
    assert copied_census_attribute("Not applicable", census) is None  # a legitimate value for children
    assert copied_census_attribute(None, census) is None


def _hand_built() -> pd.DataFrame:
    base = {
        "persona_id": "p1",
        "age": 44,
        "occupation category": "MED-Registered Nurses",
        "employment status": "Civilian employed, at work",
        "income": 71000.0,
        "religion": "Catholic",
        "detailed job description": "Runs the night shift on a cardiac ward",
        "defining quirks": "Keeps a notebook of patients' favourite songs",
        "mannerisms": "Talks fast when nervous",
        "personal time": "Gardening and church choir",
        "lifestyle": "Busy but routine",
        "ideology": "Conservative",
        "political views": "Republican",
    }
    p2 = base | {
        "persona_id": "p2",
        "detailed job description": "Registered nurses",  # copies the occupation category
        "mannerisms": None,  # missing
        "ideology": "Progressive",
        "political views": "Republican",  # conflicts with the ideology
    }
    p3 = base | {
        "persona_id": "p3",
        "personal time": " ".join(["word"] * 26),  # 26 words > 25
        "lifestyle": "None",  # placeholder = missing
        "ideology": "Moderate",
        "political views": "Democrat",  # center vs left: no conflict
    }
    return pd.DataFrame([base, p2, p3])


def test_quality_flags_on_hand_built_personas() -> None:
    flags = quality_flags(_hand_built())
    assert flags["persona_id"].tolist() == ["p1", "p2", "p3"]
    assert flags["missing_fields"].tolist() == ["", "mannerisms", "lifestyle"]
    assert flags["long_fields"].tolist() == ["", "", "personal time"]
    assert flags["copied_fields"].tolist() == ["", "detailed job description=occupation category", ""]
    assert flags["ideology_lean"].tolist() == ["right", "left", "center"]
    assert flags["political_lean"].tolist() == ["right", "right", "left"]
    assert flags["lean_conflict"].tolist() == [False, True, False]
    assert flags["degenerate_fields"].tolist() == ["", "", ""]
    assert flags["flagged"].tolist() == [False, True, True]


def test_boilerplate_in_every_field_is_flagged() -> None:
    """What the 135M local model wrote for a persona of the tiny run: one sentence in all seven fields."""
    boilerplate = "The person's lifestyle is a mix of traits that make them interesting and unique"
    frame = _hand_built().iloc[[0]].assign(**{key: boilerplate for key in OPEN_ENDED_KEYS})
    flags = quality_flags(frame)
    assert flags.loc[0, "degenerate_fields"].split("; ") == list(OPEN_ENDED_KEYS)
    assert flags.loc[0, "missing_fields"] == "" and flags.loc[0, "long_fields"] == ""
    assert bool(flags.loc[0, "flagged"])
    report = check_quality(frame)
    assert report.fields["n_degenerate"].tolist() == [1] * 7
    assert report.summary()["degenerate_values"] == 7 and report.flagged_share == 1.0


def test_field_summary_counts_and_word_statistics() -> None:
    fields = field_summary(_hand_built()).set_index("field")
    assert list(fields.index) == list(OPEN_ENDED_KEYS)
    assert fields.loc["mannerisms", "n_missing"] == 1 and fields.loc["lifestyle", "n_missing"] == 1
    assert fields.loc["personal time", "n_long"] == 1
    assert fields.loc["detailed job description", "n_copied"] == 1
    # personal time: 4, 4 and 26 words -> median 4, max 26
    assert fields.loc["personal time", "median_words"] == 4.0
    assert fields.loc["personal time", "max_words"] == 26
    # detailed job description: 7, 2 and 7 words -> median 7
    assert fields.loc["detailed job description", "median_words"] == 8.0


def test_missing_columns_count_as_missing_and_limit_is_configurable() -> None:
    frame = pd.DataFrame({"persona_id": ["a"], "lifestyle": ["one two three"]})
    flags = quality_flags(frame, max_words=2)
    assert flags.loc[0, "long_fields"] == "lifestyle"
    assert flags.loc[0, "missing_fields"].split("; ") == [k for k in OPEN_ENDED_KEYS if k != "lifestyle"]


def test_lean_distribution_is_tidy_and_complete() -> None:
    dist = lean_distribution(_hand_built(), source="ours")
    assert len(dist) == 2 * len(LEANS)
    assert set(dist["source"]) == {"ours"}
    for field in ("ideology", "political views"):
        part = dist[dist["field"] == field]
        assert part["count"].sum() == 3
        assert math.isclose(part["share"].sum(), 1.0)
    ideology = dist[dist["field"] == "ideology"].set_index("lean")["count"]
    assert (ideology["right"], ideology["left"], ideology["center"], ideology["mixed"]) == (1, 1, 1, 0)
    empty = lean_distribution(pd.DataFrame({"ideology": []}))
    assert empty["count"].sum() == 0 and empty["share"].isna().all()


def test_left_right_ratio_edge_cases() -> None:
    assert (
        left_right_ratio(pd.DataFrame({"ideology": ["Liberal", "Liberal", "Conservative"]}), "ideology")
        == 2.0
    )
    assert left_right_ratio(pd.DataFrame({"ideology": ["Liberal"]}), "ideology") == math.inf
    assert math.isnan(left_right_ratio(pd.DataFrame({"ideology": ["Moderate"]}), "ideology"))


def test_released_sample_lengths_define_short(shared: Path) -> None:
    """The "short" limit is measured on the released data: every value fits, the longest has 24 words."""
    fields = field_summary(released(shared)).set_index("field")
    assert fields["max_words"].max() == 24 == fields.loc["detailed job description", "max_words"]
    assert fields["max_words"].max() <= MAX_FIELD_WORDS
    assert fields["median_words"].to_dict() == {
        "detailed job description": 7.0,
        "defining quirks": 6.0,
        "mannerisms": 6.0,
        "personal time": 8.0,
        "lifestyle": 3.0,
        "ideology": 1.0,
        "political views": 1.0,
    }
    assert fields["n_long"].sum() == 0


def test_released_sample_quality_and_liberal_skew(shared: Path) -> None:
    report = check_quality(released(shared), source="PERSONA release")
    summary = report.summary()
    # Three young children have no job description, ideology or political views (keys absent) and an
    # 8-year-old has "None" as job description: 3 * 3 + 1 = 10 missing values.
    assert summary["missing_values"] == 10
    # Five job descriptions repeat a census value: "Student" (x3, = employment status or occupation)
    # and two that equal the occupation category.
    assert summary["copied_values"] == 5
    assert summary["long_values"] == 0
    assert summary["degenerate_values"] == 0  # within a persona, only 1-2 word values repeat
    assert summary["lean_conflicts"] == 0
    leans = report.leans.set_index(["field", "lean"])["count"]
    # Ideology: 30 Liberal + 7 Progressive + 11 left-coded themes = 48 left; 25 Conservative +
    # Libertarianism + 3 right-coded themes = 29 right.
    assert (leans["ideology", "left"], leans["ideology", "right"]) == (48, 29)
    # Political views: 37 Democrat + 5 Liberal + 6 other left labels = 48; 25 Republican + 3 = 28.
    assert (leans["political views", "left"], leans["political views", "right"]) == (48, 28)
    assert summary["ideology_left_right_ratio"] == pytest.approx(48 / 29)
    assert summary["political_views_left_right_ratio"] == pytest.approx(48 / 28)
    # Liberal skew: well above parity on both fields (the "about 2:1" of the release, measured: 1.66, 1.71).
    assert 1.5 < summary["ideology_left_right_ratio"] < 2.1
    assert 1.5 < summary["political_views_left_right_ratio"] < 2.1


def test_ideology_chart_puts_ours_beside_the_release(shared: Path, tmp_path: Path) -> None:
    from persona_lab.charts._ideology import FIGURE_NAME, ideology_chart, ideology_distribution
    from persona_lab.charts._save import save_figure

    ours, release = _hand_built(), released(shared)
    dist = ideology_distribution(ours, release)
    assert list(dict.fromkeys(dist["source"])) == ["ours", "PERSONA release"]
    for (_, _), part in dist.groupby(["source", "field"]):
        assert math.isclose(part["share"].sum(), 1.0)
    got = dist.set_index(["source", "field", "lean"])["count"]
    assert got["PERSONA release", "political views", "left"] == 48
    assert got["ours", "political views", "right"] == 2  # p1 and p2 say Republican
    chart = ideology_chart(ours, release)
    spec = chart.to_dict()
    titles = {row["panel"] for row in spec["datasets"][spec["data"]["name"]]}
    # ours: 1 left vs 1 right ideology (ratio 1.00); release: 48 vs 29 (1.66)
    assert titles == {
        "ideology (ours: left:right 1.00; PERSONA release: left:right 1.66)",
        "political views (ours: left:right 0.50; PERSONA release: left:right 1.71)",
    }
    alone = ideology_chart(ours).to_dict()
    assert {r["source"] for r in alone["datasets"][alone["data"]["name"]]} == {"ours"}
    paths = save_figure(chart, FIGURE_NAME, tmp_path)
    assert [p.name for p in paths] == [f"{FIGURE_NAME}.svg", f"{FIGURE_NAME}.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
