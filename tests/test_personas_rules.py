"""Deterministic consistency rules: each rule on hand-built rows that break it and rows that do not."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import ADULT_ROW

from persona_lab.errors import PersonaLabError
from persona_lab.personas import check_rules
from persona_lab.personas._rules import RULES

ADULT: dict[str, object] = ADULT_ROW
CHILD: dict[str, object] = ADULT | {
    "age": 9,
    "education": "Grade 3",
    "employment status": "N/A (less than 16 years old)",
    "class of worker": "Not applicable",
    "industry category": "Not applicable",
    "occupation category": "Not applicable",
    "income": float("nan"),
    "marital status": "Never married or under 15 years old",
    "veteran status": "N/A (less than 17 years old)",
    "fertility": None,
    "cognitive difficulty": "No",
}

# (rule, persona that breaks exactly this rule, a close persona that breaks none)
CASES: list[tuple[str, dict[str, object], dict[str, object]]] = [
    ("income_under_15", CHILD | {"income": 300.0}, CHILD | {"income": 0.0}),
    ("six_figure_income_minor", CHILD | {"age": 16, "income": 100_000.0}, CHILD | {"age": 16, "income": 99_999.0}),
    ("married_under_15", CHILD | {"age": 7, "marital status": "Married"}, CHILD | {"age": 15, "marital status": "Married"}),
    ("married_under_15", CHILD | {"marital status": "Divorced"}, CHILD),
    ("veteran_under_17", CHILD | {"age": 16, "veteran status": "On active duty in the past, but not now"},
     ADULT | {"age": 17, "veteran status": "On active duty in the past, but not now", "education": "Grade 11"}),
    ("veteran_under_17", CHILD | {"veteran status": "Only on active duty for training in Reserves/National Guard"},
     CHILD | {"veteran status": "Not applicable"}),
    ("employed_under_16", CHILD | {"age": 15, "employment status": "Civilian employed, at work"},
     ADULT | {"age": 16, "education": "Grade 10", "income": 4000.0, "marital status": "Never married or under 15 years old"}),
    ("labor_force_status_under_16", CHILD | {"employment status": "Unemployed"}, CHILD | {"employment status": "Not applicable"}),
    ("labor_force_status_under_16", CHILD | {"employment status": "Not in labor force"}, CHILD),
    ("class_of_worker_under_16", CHILD | {"class of worker": "Local government employee (city, county, etc.)"},
     CHILD | {"class of worker": "N/A (less than 16 years old/NILF who last worked more than 5 years ago or never worked)"}),
    ("education_ahead_of_age", CHILD | {"age": 5, "education": "Grade 4"}, CHILD | {"age": 6, "education": "Grade 4"}),
    ("education_ahead_of_age", CHILD | {"age": 2, "education": "Nursery school, preschool", "cognitive difficulty": None},
     CHILD | {"age": 2, "education": "N/A (less than 3 years old)", "cognitive difficulty": None}),
    ("education_ahead_of_age", ADULT | {"age": 17, "education": "Bachelor's Degree", "marital status": "Never married"},
     ADULT | {"age": 18, "education": "Bachelor's Degree"}),
    ("graduate_degree_too_young", ADULT | {"age": 18, "education": "Master's degree"},
     ADULT | {"age": 19, "education": "Master's degree"}),
    ("graduate_degree_too_young", ADULT | {"age": 21, "education": "Doctorate degree"},
     ADULT | {"age": 22, "education": "Doctorate degree"}),
    ("fertility_male", ADULT | {"sex": "Male"}, ADULT | {"sex": "Male", "fertility": None}),
    ("fertility_outside_15_50", ADULT | {"age": 51}, ADULT | {"age": 50}),
    ("cognitive_difficulty_under_5", CHILD | {"age": 4, "education": "Kindergarten"},
     CHILD | {"age": 4, "education": "Kindergarten", "cognitive difficulty": None}),
    ("english_ability_under_5", CHILD | {"age": 4, "education": "Kindergarten", "cognitive difficulty": None,
                                         "ability to speak english": "Very well"},
     CHILD | {"age": 5, "education": "Kindergarten", "ability to speak english": "Very well"}),
    ("citizenship_birthplace_mismatch", ADULT | {"place of birth": "Mexico"},
     ADULT | {"place of birth": "Mexico", "citizenship": "U.S. citizen by naturalization"}),
    ("citizenship_birthplace_mismatch", ADULT | {"citizenship": "Not a citizen of the U.S."},
     ADULT | {"citizenship": "Born in Puerto Rico, Guam, the U.S. Virgin Islands, or the Northern Marianas",
              "place of birth": "Puerto Rico"}),
    ("active_duty_not_in_armed_forces", ADULT | {"veteran status": "Now on active duty"},
     ADULT | {"veteran status": "Now on active duty", "employment status": "Armed forces, at work"}),
]  # fmt: skip


def test_every_rule_has_a_case() -> None:
    assert {name for name, _, _ in CASES} == {r.name for r in RULES}
    assert len({r.name for r in RULES}) == len(RULES)


@pytest.mark.parametrize(("rule", "bad", "good"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule_flags_only_the_broken_row(rule: str, bad: dict[str, object], good: dict[str, object]) -> None:
    result = check_rules(pd.DataFrame([bad, good], index=[10, 11]))
    assert list(result.index) == [10, 11]
    broken = result.loc[10]
    assert list(broken[broken].index) == [rule]  # the bad row breaks exactly this rule
    assert not result.loc[11].any()  # its near twin breaks none


def test_base_rows_pass_every_rule() -> None:
    assert not check_rules(pd.DataFrame([ADULT, CHILD])).to_numpy().any()


def test_persona_release_wording_is_understood() -> None:
    # a released-style minor: "Not Applicable" capitalised, "Non-Veteran", grade labels, "Under 15 years old"
    row = CHILD | {"age": 12, "veteran status": "Non-Veteran", "class of worker": "Not Applicable",
                   "employment status": "Student", "marital status": "Under 15 years old", "education": "Grade 6"}  # fmt: skip
    assert not check_rules(pd.DataFrame([row])).to_numpy().any()
    # the release's 16-year-old earning 81000.0 passes (under six figures); one earning 460000 does not
    teen = ADULT | {
        "age": 16,
        "education": "Grade 10",
        "marital status": "Never married or under 15 years old",
    }
    flags = check_rules(pd.DataFrame([teen | {"income": 81000.0}, teen | {"income": 460000.0}]))
    assert flags["six_figure_income_minor"].tolist() == [False, True]


def test_empty_frame_gives_empty_result() -> None:
    result = check_rules(pd.DataFrame(columns=list(ADULT)))
    assert result.shape == (0, len(RULES))


def test_missing_column_is_a_clear_error() -> None:
    frame = pd.DataFrame([ADULT]).drop(columns=["veteran status"])
    with pytest.raises(
        PersonaLabError, match=r"rule 'veteran_under_17' needs column\(s\) \['veteran status'\]"
    ):
        check_rules(frame)


# Employment labels of the released PERSONA personas and of the ACS dictionary, as read by the rule: the words
# "employed" in "Not employed"/"Unemployed" are not work; "Part-time" (two released 15-year-olds) is.
EMPLOYMENT_LABELS: dict[str, bool] = {
    "Not employed": False,
    "Unemployed": False,
    "Not in labor force": False,
    "Not working": False,
    "Student": False,
    "Part-time student": False,
    "Too young for employment": False,
    "N/A (less than 16 years old)": False,
    "Part-time": True,
    "Full-time": True,
    "Employed": True,
    "Self-employed": True,
    "Civilian employed, at work": True,
    "Civilian employed, with a job but not at work": True,
    "Armed forces, at work": True,
}


def test_employed_under_16_reads_whole_words() -> None:
    rows = [CHILD | {"age": 14, "employment status": label} for label in EMPLOYMENT_LABELS]
    rule = next(r for r in RULES if r.name == "employed_under_16")
    flags = check_rules(pd.DataFrame(rows), [rule])["employed_under_16"]
    assert dict(zip(EMPLOYMENT_LABELS, flags.tolist(), strict=True)) == EMPLOYMENT_LABELS
    # at 16 the same labels are fine
    older = [row | {"age": 16} for row in rows]
    assert not check_rules(pd.DataFrame(older), [rule])["employed_under_16"].any()


def test_employed_under_16_on_the_released_personas(shared: Path) -> None:
    """The 100 released personas: the rule finds the two 15-year-olds labelled "Part-time" and nothing else
    (among the 19 under-16s: 11 "Unemployed", 4 "Student", 2 "Part-time", "None", "Too young for employment")."""
    from persona_lab.personas import read_personas, table_from_personas

    table = table_from_personas(read_personas(shared / "persona" / "personas_sample100.json"))
    hits = table[check_rules(table)["employed_under_16"]]
    assert hits["persona_id"].tolist() == ["p00013", "p00067"]
    assert hits["age"].tolist() == [15, 15] and set(hits["employment status"]) == {"Part-time"}
