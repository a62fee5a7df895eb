"""PERSONA's text format: key constants, byte-identical round trips on the released personas, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persona_lab.census._schema import CENSUS_ATTRIBUTES, OPTIONAL_ATTRIBUTES
from persona_lab.errors import PersonaLabError
from persona_lab.personas import read_personas, render_texts
from persona_lab.personas._schema import (
    ATTRIBUTE_KEYS,
    OPEN_ENDED_KEYS,
    OPTIONAL_KEYS,
    PROCEDURAL_KEYS,
    TEXT_ORDER,
    Persona,
)
from persona_lab.personas._text import (
    NOT_APPLICABLE,
    format_income,
    parse_persona,
    persona_from_row,
    serialize_persona,
)


@pytest.fixture(scope="module")
def released(shared: Path) -> list[str]:
    return json.loads((shared / "persona" / "personas_sample100.json").read_text(encoding="utf-8"))


def test_keys_match_persona_bench_list(shared: Path) -> None:
    keys = (shared / "persona" / "persona_bench_attribute_keys.txt").read_text(encoding="utf-8").split("\n")
    assert tuple(k for k in keys if k) == ATTRIBUTE_KEYS
    assert len(ATTRIBUTE_KEYS) == 33


def test_key_groups_partition_the_33_keys() -> None:
    census = set(CENSUS_ATTRIBUTES) | set(OPTIONAL_ATTRIBUTES)
    assert census | set(OPEN_ENDED_KEYS) | set(PROCEDURAL_KEYS) == set(ATTRIBUTE_KEYS)
    assert len(census) + len(OPEN_ENDED_KEYS) + len(PROCEDURAL_KEYS) == 33
    assert set(OPTIONAL_KEYS) == set(OPTIONAL_ATTRIBUTES)
    assert sorted(TEXT_ORDER) == sorted(ATTRIBUTE_KEYS)
    # optional keys sit between 'health insurance' and 'big five scores'
    i = TEXT_ORDER.index("health insurance")
    assert TEXT_ORDER[i + 1 : i + 6] == OPTIONAL_KEYS
    assert TEXT_ORDER[i + 6] == "big five scores"


def test_all_released_personas_round_trip_byte_identically(released: list[str]) -> None:
    assert len(released) == 100
    for i, text in enumerate(released):
        persona = parse_persona(text, source=f"persona {i}")
        assert serialize_persona(persona) == text, i
        assert Persona.from_text(text).to_text() == text


def test_released_irregularities_are_kept(released: list[str]) -> None:
    personas = [parse_persona(t) for t in released]
    counts = [len(p.attributes()) for p in personas]
    # measured: 21 to 33 keys (MANIFEST.md says 20-33; the smallest persona has 21 lines)
    assert min(counts) == 21 and max(counts) == 33
    incomes = {p.income for p in personas}
    assert {"0", "60000.0", "No income", "Not applicable", "317000"} <= incomes
    assert sum(p.income is None for p in personas) == 3
    assert all(t.endswith("\n") and not t.endswith("\n\n") for t in released)
    first = personas[0]
    assert first.age == "15" and first.get("household language") == "Spanish"
    assert first.big_five_scores == (
        "Openness: Extremely Low, Conscientiousness: Average, Extraversion: Low, "
        "Agreeableness: High, Neuroticism: Average"
    )


def test_optional_keys_are_printed_after_health_insurance() -> None:
    p = Persona.from_mapping(
        {"age": "78", "health insurance": "With health insurance coverage", "religion": "Protestant",
         "hearing difficulty": "Yes", "fertility": "No", "big five scores": "Openness: Low"}
    )  # fmt: skip
    assert p.to_text() == (
        "age: 78\nhealth insurance: With health insurance coverage\nfertility: No\nhearing difficulty: Yes\n"
        "big five scores: Openness: Low\nreligion: Protestant\n"
    )


def test_parse_tolerates_missing_final_newline_and_other_order() -> None:
    p = parse_persona("religion: Jewish\nage: 40")
    assert p.age == "40" and p.religion == "Jewish"
    assert p.to_text() == "age: 40\nreligion: Jewish\n"
    assert parse_persona("age: 40\nideology:\n").ideology == ""


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("age: 4\nfavourite colour: blue\n", "line 2: unknown attribute key 'favourite colour'"),
        ("age: 4\nage: 5\n", "line 2: attribute 'age' appears twice"),
        ("age 4\n", "line 1: expected 'key: value'"),
        ("\n\n", "empty persona"),
    ],
)
def test_parse_errors_name_source_and_line(text: str, match: str) -> None:
    with pytest.raises(PersonaLabError, match=match) as info:
        parse_persona(text, source="x.json: persona 7")
    assert str(info.value).startswith("x.json: persona 7: ")


def test_serialize_rejects_line_breaks_in_values() -> None:
    with pytest.raises(PersonaLabError, match="'lifestyle' contains a line break"):
        serialize_persona(Persona(lifestyle="Active\nand social"))


def test_unknown_key_in_mapping() -> None:
    with pytest.raises(KeyError, match="not PERSONA attribute keys"):
        Persona.from_mapping({"shoe size": "9"})


def test_read_personas_json_jsonl_and_text(tmp_path: Path, released: list[str]) -> None:
    texts = released[:3]
    as_json = tmp_path / "p.json"
    as_json.write_text(json.dumps(texts), encoding="utf-8")
    as_rows = tmp_path / "rows.jsonl"
    as_rows.write_text(
        "\n".join(json.dumps({"persona": t, "instruction": "?"}) for t in texts), encoding="utf-8"
    )
    as_text = tmp_path / "p.txt"
    as_text.write_text("\n".join(texts), encoding="utf-8")  # blank line between personas
    for path in (as_json, as_rows, as_text):
        assert [p.to_text() for p in read_personas(path)] == texts


def test_read_personas_non_utf8_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.txt"
    # byte 22 = len("age: 30\\n") + len("ancestry: Fran") = 8 + 14
    # the bad byte (c-cedilla in latin-1) is at offset len("age: 30\n") + len("ancestry: Fran") = 8 + 14 = 22
    bad.write_bytes("age: 30\nancestry: Fran\u00e7ais\n".encode("latin-1"))
    with pytest.raises(PersonaLabError, match=r"latin1\.txt: not UTF-8 \(invalid byte 0xe7 at offset 22\)"):
        read_personas(bad)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("empty.json", b"", "empty persona file"),
        ("blank.txt", b"  \n\n", "empty persona file"),
        ("obj.json", b'{"age": "3"}', "expected a JSON list"),
        ("broken.json", b'["age: 3"', "invalid JSON"),
        ("nums.json", b"[3]", "persona 1: expected a persona string"),
        (
            "badkey.json",
            b'["age: 3\\nshoe: 9\\n"]',
            r"badkey\.json: persona 1: line 2: unknown attribute key",
        ),
    ],
)
def test_read_personas_bad_files(tmp_path: Path, name: str, content: bytes, match: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(PersonaLabError, match=match) as info:
        read_personas(path)
    assert name in str(info.value)


def test_read_personas_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PersonaLabError, match="cannot read persona file"):
        read_personas(tmp_path / "nope.json")


def test_format_income() -> None:
    assert format_income(0) == "0"
    assert format_income(0.0) == "0"
    assert format_income(70000) == "70000.0"
    assert format_income(-4500) == "-4500.0"
    assert format_income(1234.5) == "1234.5"
    assert format_income(float("nan")) == NOT_APPLICABLE
    assert format_income(None) == NOT_APPLICABLE


def test_render_texts_matches_persona_serialization() -> None:
    frame = pd.DataFrame(
        {
            "age": [34, 9],
            "sex": ["Female", "Male"],
            "income": [52000.0, float("nan")],
            "marital status": ["Married", "Never married or under 15 years old"],
            "fertility": ["No", None],
            "defining quirks": [None, None],
            "religion": ["Catholic", "Religiously Unaffiliated"],
            "not a persona key": ["x", "y"],
        }
    )
    texts = render_texts(frame)
    # hand-written expectation: keys in TEXT_ORDER, absent values give no line, income "52000.0"
    assert texts[0] == (
        "age: 34\nsex: Female\nincome: 52000.0\nmarital status: Married\nfertility: No\nreligion: Catholic\n"
    )
    assert texts[1] == (
        "age: 9\nsex: Male\nincome: Not applicable\nmarital status: Never married or under 15 years old\n"
        "religion: Religiously Unaffiliated\n"
    )
    for i in range(2):
        assert persona_from_row(frame.iloc[i]).to_text() == texts[i]
        assert parse_persona(texts[i]).to_text() == texts[i]


def test_render_texts_rejects_line_breaks_naming_column_and_row() -> None:
    frame = pd.DataFrame({"age": [1, 2], "lifestyle": ["calm", "busy\nloud"]})
    with pytest.raises(PersonaLabError, match="column 'lifestyle', row 1"):
        render_texts(frame)


_VALUE = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(ATTRIBUTE_KEYS), _VALUE, min_size=1))
def test_any_persona_round_trips(values: dict[str, str]) -> None:
    persona = Persona.from_mapping(values)
    text = persona.to_text()
    assert parse_persona(text) == persona
    assert parse_persona(text).to_text() == text


def test_render_texts_rejects_non_numeric_income() -> None:
    frame = pd.DataFrame({"age": [30, 31], "income": [1000.0, "lots"]})
    with pytest.raises(PersonaLabError, match="column 'income', row 1: expected a number, got 'lots'"):
        render_texts(frame)
