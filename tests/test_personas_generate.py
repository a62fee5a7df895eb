"""generate_personas: resampling accounting on scripted sources, determinism, ids, split, text, parquet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ADULT_ROW

from persona_lab.census._schema import CENSUS_ATTRIBUTES, OPTIONAL_ATTRIBUTES
from persona_lab.errors import PersonaLabError
from persona_lab.io import read_table, write_table
from persona_lab.personas import generate_personas, render_texts
from persona_lab.personas._generate import default_n_train
from persona_lab.personas._rules import RULES
from persona_lab.personas._schema import OPEN_ENDED_KEYS
from persona_lab.personas._text import parse_persona, persona_from_row
from persona_lab.personas._traits import BIG_FIVE_COLUMNS, SEED_COLUMNS

BASE = ADULT_ROW
CHILD = BASE | {
    "age": 9,
    "education": "Grade 3",
    "employment status": "Not applicable",
    "class of worker": "Not applicable",
    "industry category": "Not applicable",
    "occupation category": "Not applicable",
    "income": 0.0,
    "marital status": "Never married or under 15 years old",
    "veteran status": "Not applicable",
    "fertility": None,
}
MARRIED_CHILD = CHILD | {"marital status": "Married"}  # breaks married_under_15
MARRIED_EARNING_CHILD = MARRIED_CHILD | {"income": 500.0}  # breaks married_under_15 and income_under_15


class ScriptedSource:
    """Returns prepared batches in order (ignores the generator), to check the resampling bookkeeping."""

    def __init__(self, batches: list[list[dict[str, object]]]) -> None:
        self.batches = list(batches)
        self.asked: list[int] = []

    def sample(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        self.asked.append(n)
        rows = self.batches.pop(0)
        assert len(rows) == n
        return pd.DataFrame(rows)


class FrameSource:
    """Uniform draws with replacement from a fixed persona frame."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def sample(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        return self.frame.iloc[rng.integers(0, len(self.frame), size=n)].reset_index(drop=True)


def _frame() -> pd.DataFrame:
    rows = [
        BASE,
        BASE | {"age": 67, "sex": "Male", "fertility": None, "income": 31000.0, "marital status": "Widowed"},
        CHILD,
        CHILD | {"age": 3, "education": "Nursery school, preschool", "cognitive difficulty": None},
        MARRIED_CHILD,
        BASE
        | {
            "citizenship": "Not a U.S. citizen",
            "place of birth": "Mexico",
            "ability to speak english": "Well",
        },
    ]
    return pd.DataFrame([r | {"serialno": f"s{i}"} for i, r in enumerate(rows)])


def test_resampling_bookkeeping_is_exact() -> None:
    # round 1 asks 4: two pass; round 2 asks the 2 missing: one passes; round 3 asks 1: it passes
    source = ScriptedSource(
        [
            [BASE | {"serialno": "a"}, MARRIED_CHILD, CHILD | {"serialno": "b"}, MARRIED_EARNING_CHILD],
            [MARRIED_CHILD, BASE | {"serialno": "c"}],
            [CHILD | {"serialno": "d"}],
        ]
    )
    personas, report = generate_personas(source, 4, seed=1, n_train=2, source_name="script")
    assert source.asked == [4, 2, 1]
    assert (report.draws, report.rejected, report.rounds) == (7, 3, 3)
    assert report.rejection_rate == pytest.approx(3 / 7)
    assert report.rejections_by_rule["married_under_15"] == 3
    assert report.rejections_by_rule["income_under_15"] == 1
    assert sum(report.rejections_by_rule.values()) == 4  # one draw broke two rules
    assert set(report.rejections_by_rule) == {r.name for r in RULES}
    assert personas["serialno"].tolist() == ["a", "b", "c", "d"]  # accepted rows in draw order
    assert personas["persona_id"].tolist() == ["p00001", "p00002", "p00003", "p00004"]
    frame = report.to_frame().set_index("rule")
    assert frame.loc["married_under_15", "rejected"] == 3
    assert frame.loc["married_under_15", "rate"] == pytest.approx(3 / 7)
    assert "rejection rate: 42.86% (3 of 7 census draws" in report.summary()
    assert "married_under_15: 3 (42.86%)" in report.summary()
    assert report.to_dict()["rejected"] == 3


def test_no_rules_accepts_everything() -> None:
    source = ScriptedSource([[MARRIED_CHILD, MARRIED_EARNING_CHILD]])
    personas, report = generate_personas(source, 2, rules=())
    assert (report.draws, report.rejected, report.rejection_rate) == (2, 0, 0.0)
    assert len(personas) == 2


def test_same_seed_same_personas_other_seed_differs() -> None:
    source = FrameSource(_frame())
    a, ra = generate_personas(source, 200, seed=5)
    b, rb = generate_personas(source, 200, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert ra == rb
    c, _ = generate_personas(source, 200, seed=6)
    assert not a["text"].equals(c["text"])
    # one of six frame rows is a married 9-year-old: about 1/6 of draws are rejected
    assert 0.08 < ra.rejection_rate < 0.26
    assert ra.rejections_by_rule["married_under_15"] == ra.rejected
    assert (a["marital status"][a["age"] < 15] == "Never married or under 15 years old").all()


def test_table_columns_ids_and_split() -> None:
    personas, report = generate_personas(FrameSource(_frame()), 50, seed=0, n_train=30)
    assert personas["persona_id"].iloc[[0, 49]].tolist() == ["p00001", "p00050"]
    assert personas["persona_id"].is_unique
    assert (personas["split"] == "train").sum() == 30 and (personas["split"] == "test").sum() == 20
    assert report.n == 50 and report.n_train == 30
    for col in (*CENSUS_ATTRIBUTES, *OPTIONAL_ATTRIBUTES, *OPEN_ENDED_KEYS, *BIG_FIVE_COLUMNS,
                *SEED_COLUMNS.values(), "big five scores", "religion", "weight", "serialno", "state", "text"):  # fmt: skip
        assert col in personas.columns, col
    assert list(personas.columns[:3]) == ["persona_id", "split", "age"]
    assert personas.columns[-1] == "text"
    assert personas["age"].dtype == np.int64 and personas["income"].dtype == np.float64
    assert personas[list(OPEN_ENDED_KEYS)].isna().all().all()
    assert all(len(q) == 2 for q in personas["seed_quirks"])


def test_split_is_a_seeded_permutation() -> None:
    a, _ = generate_personas(FrameSource(_frame()), 40, seed=3, n_train=25)
    b, _ = generate_personas(FrameSource(_frame()), 40, seed=4, n_train=25)
    assert (a["split"] == "train").sum() == 25
    assert not a["split"].equals(b["split"])
    assert not a["split"].iloc[:25].eq("train").all()  # shuffled, not the first 25 ids


def test_text_is_persona_format_without_open_ended_fields() -> None:
    personas, _ = generate_personas(FrameSource(_frame()), 30, seed=2)
    assert personas["text"].equals(render_texts(personas))
    for _, row in personas.iterrows():
        text = row["text"]
        p = parse_persona(text)
        assert p.to_text() == text
        assert persona_from_row(row).to_text() == text
        assert int(p.age) == row["age"]
        assert p.religion == row["religion"] and p.big_five_scores == row["big five scores"]
        assert all(p.get(k) is None for k in OPEN_ENDED_KEYS)
        assert (p.fertility is None) == (row["fertility"] is None)
    one = personas[personas["serialno"] == "s0"].iloc[0]["text"]
    assert "income: 52000.0\n" in one and "fertility: No birth within the past 12 months\n" in one
    child = personas[personas["serialno"] == "s2"].iloc[0]["text"]
    assert "income: 0\n" in child and "fertility:" not in child


def test_parquet_round_trip(tmp_path: Path) -> None:
    personas, _ = generate_personas(FrameSource(_frame()), 20, seed=9)
    path = write_table(personas, tmp_path / "personas.parquet", table="personas")
    back = read_table(path, table="personas")
    assert list(back.columns) == list(personas.columns)
    assert back["text"].tolist() == personas["text"].tolist()
    assert [list(x) for x in back["seed_core_values"]] == [list(x) for x in personas["seed_core_values"]]
    assert render_texts(back).tolist() == personas["text"].tolist()


def test_default_n_train_follows_persona_ratio() -> None:
    assert default_n_train(1586) == 1000
    assert default_n_train(200) == 126  # 200 * 1000 / 1586 = 126.1
    personas, report = generate_personas(FrameSource(_frame()), 1586 // 13, seed=0)
    assert report.n_train == default_n_train(122) == 77


def test_gives_up_after_max_rounds() -> None:
    source = FrameSource(pd.DataFrame([MARRIED_CHILD]))
    with pytest.raises(PersonaLabError, match="after 5 sampling rounds 3 of 3 personas still break"):
        generate_personas(source, 3, max_rounds=5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n": 0}, "at least 1"), ({"n": 5, "n_train": 6}, "n_train must be between 0 and n=5")],
)
def test_bad_sizes(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(PersonaLabError, match=match):
        generate_personas(FrameSource(_frame()), **kwargs)


def test_source_contract_violations() -> None:
    no_race = ScriptedSource([[{k: v for k, v in BASE.items() if k != "race"}]])
    with pytest.raises(PersonaLabError, match=r"without column\(s\) \['race'\]"):
        generate_personas(no_race, 1)

    class Short:
        def sample(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
            return pd.DataFrame([BASE])

    with pytest.raises(PersonaLabError, match="returned 1 rows when asked for 3"):
        generate_personas(Short(), 3)


def test_table_from_released_personas(shared: Path) -> None:
    import json

    from persona_lab.personas import read_personas, table_from_personas

    path = shared / "persona" / "personas_sample100.json"
    texts = json.loads(path.read_text(encoding="utf-8"))
    table = table_from_personas(read_personas(path), seed=0)
    assert table["text"].tolist() == texts  # byte-identical
    assert table["persona_id"].iloc[-1] == "p00100"
    assert (table["split"] == "train").sum() == default_n_train(100) == 63
    assert table["age"].dtype == np.int64 and table["age"].iloc[0] == 15
    # numeric incomes become numbers, free text ("No income", "Not applicable", "0-20000") NaN
    assert table["income"].iloc[1] == 90000.0
    assert table["income"].isna().sum() == 16
    assert table["openness"].iloc[0] == "Extremely Low" and table["neuroticism"].iloc[0] == "Average"
    again = table_from_personas(read_personas(path), seed=0)
    pd.testing.assert_frame_equal(table, again)


def test_table_from_personas_needs_whole_ages() -> None:
    from persona_lab.personas import table_from_personas
    from persona_lab.personas._schema import Persona

    good = Persona(age="30", religion="Jewish")
    with pytest.raises(PersonaLabError, match=r"x\.txt: persona 2: age 'thirty' is not a whole number"):
        table_from_personas([good, Persona(age="thirty")], source="x.txt")
    with pytest.raises(PersonaLabError, match="no personas"):
        table_from_personas([])
    table = table_from_personas([good], n_train=1)
    assert table["text"].tolist() == ["age: 30\nreligion: Jewish\n"] and table["split"].tolist() == ["train"]
    assert table["openness"].isna().all()
