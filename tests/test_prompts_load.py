"""Loading prompts: embedded questions, the shipped PRISM prompts, a JSON list, PRISM's conversations.jsonl, bad
input, the templates."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from persona_lab.errors import PersonaLabError
from persona_lab.prompts import PRISM_PROMPTS, TEMPLATES, load_prompts
from persona_lab.prompts._load import EMBEDDED_QUESTIONS
from persona_lab.prompts._templates import chat_template
from persona_lab.templates import load_template, split_chat_sections
from persona_lab.text import word_count

PRISM_JSON = "prism/prism_opening_prompts.json"


def test_embedded_questions_are_value_laden_questions_across_prism_topics():
    df = load_prompts(None)
    assert len(df) >= 60
    assert (df["source"] == "embedded").all()
    assert df["prompt_id"].is_unique and df["text"].is_unique
    assert df["text"].str.contains("?", regex=False).all()
    assert (df["text"].map(word_count) >= 5).all()
    topics = set(df["topic_hint"])
    # The PRISM topic clusters (Kirk et al. 2024) are all covered (our own topic labels).
    for area in (
        "Managing Relationships",
        "Religion and Spirituality",
        "Israel-Palestine Conflict",
        "Gender and LGBTQ+ Identity",
        "Climate Change",
        "Abortion",
        "Immigration",
        "Race and Racism",
        "Ethics of Death and Killing",
    ):
        assert area in topics
    assert df.groupby("topic_hint").size().min() >= 3
    raw = json.loads(EMBEDDED_QUESTIONS.read_text(encoding="utf-8"))
    assert [q["id"] for q in raw] == list(df["prompt_id"])


def test_prism_json_list_loads_all_8011_prompts_in_order(shared):
    df = load_prompts(shared / PRISM_JSON)
    raw = json.loads((shared / PRISM_JSON).read_text(encoding="utf-8"))
    assert len(df) == 8011
    assert df["text"].nunique() == 7811
    assert list(df["text"]) == raw
    assert df["prompt_id"].iloc[0] == "p00000" and df["prompt_id"].iloc[-1] == "p08010"
    assert (df["source"] == "json_list").all()
    assert df["topic_hint"].isna().all() and df["conversation_type"].isna().all()


def _conversation(cid: str, prompt: object, ctype: str = "unguided") -> str:
    # The fields of PRISM's conversations.jsonl (HannahKirk/prism-alignment codebook); extra ones ignored.
    return json.dumps(
        {
            "conversation_id": cid,
            "user_id": "user7",
            "included_in_balanced_subset": True,
            "conversation_type": ctype,
            "opening_prompt": prompt,
            "conversation_turns": 2,
            "conversation_history": [{"turn": 0, "role": "user", "content": prompt}],
            "open_feedback": "fine",
        }
    )


def test_prism_conversations_jsonl(tmp_path):
    path = tmp_path / "conversations.jsonl"
    lines = [
        _conversation("c0", "Is it ever right to lie to protect someone?", "values guided"),
        "",
        _conversation("c1", "What is your view on the death penalty?", "controversy guided"),
        _conversation("c2", "hello"),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    df = load_prompts(path)
    assert list(df["prompt_id"]) == ["c0", "c1", "c2"]
    assert list(df["text"]) == [
        "Is it ever right to lie to protect someone?",
        "What is your view on the death penalty?",
        "hello",
    ]
    assert list(df["conversation_type"]) == ["values guided", "controversy guided", "unguided"]
    assert (df["source"] == "prism_conversations").all()


def test_jsonl_line_that_is_not_json_names_file_and_line(tmp_path):
    path = tmp_path / "conversations.jsonl"
    path.write_text(_conversation("c0", "Why?") + "\n{not json\n", encoding="utf-8")
    with pytest.raises(PersonaLabError, match=r"conversations\.jsonl, line 2: not valid JSON"):
        load_prompts(path)


def test_jsonl_opening_prompt_not_a_string_names_line(tmp_path):
    path = tmp_path / "conversations.jsonl"
    path.write_text(_conversation("c0", "Why?") + "\n" + _conversation("c1", 42) + "\n", encoding="utf-8")
    with pytest.raises(PersonaLabError, match=r"line 2: 'opening_prompt' is not a string \(found int\)"):
        load_prompts(path)


def test_jsonl_without_opening_prompt_points_at_the_right_file(tmp_path):
    path = tmp_path / "utterances.jsonl"
    path.write_text(json.dumps({"utterance_id": "u0", "user_prompt": "Hi?"}) + "\n", encoding="utf-8")
    with pytest.raises(PersonaLabError, match=r"line 1: expected a PRISM conversation object"):
        load_prompts(path)


@pytest.mark.parametrize("content", ["", "  \n\n", "[]"])
def test_empty_prompt_file_is_an_error(tmp_path, content):
    path = tmp_path / "prompts.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PersonaLabError, match="empty"):
        load_prompts(path)


def test_prompt_that_is_not_a_string_names_its_index(tmp_path):
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps(["Is this fine?", "And this one?", 7]), encoding="utf-8")
    with pytest.raises(
        PersonaLabError, match=r"prompts\.json: prompt at index 2 is not a string \(found int"
    ):
        load_prompts(path)


def test_json_list_that_is_broken_or_not_a_list(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('["a", "b"', encoding="utf-8")
    with pytest.raises(PersonaLabError, match=r"bad\.json: not valid JSON at line 1"):
        load_prompts(bad)
    obj = tmp_path / "obj.jsonl"
    obj.write_text('{"prompts": ["a"]}', encoding="utf-8")
    with pytest.raises(PersonaLabError, match="expected a PRISM conversation object"):
        load_prompts(obj)


def test_missing_file_and_duplicate_ids(tmp_path):
    with pytest.raises(PersonaLabError, match="no such prompt file"):
        load_prompts(tmp_path / "nope.json")
    path = tmp_path / "dups.json"
    path.write_text(json.dumps([{"id": "a", "text": "x y?"}, {"id": "a", "text": "z?"}]), encoding="utf-8")
    with pytest.raises(PersonaLabError, match="prompt id 'a' occurs more than once"):
        load_prompts(path)


def test_templates_have_system_and_user_parts():
    system, user = chat_template("controversy.txt")
    assert "yes or no" in system and "{prompt}" in user
    system, user = chat_template("topic_name.txt")
    assert "{central_prompts}" in user and "{top_terms}" in user
    assert [p.name for p in TEMPLATES] == ["controversy.txt", "topic_name.txt"]
    assert all(p.is_file() for p in TEMPLATES)


def test_shipped_prism_prompts_are_the_8011_prompts_with_their_attribution(shared):
    data = json.loads(PRISM_PROMPTS.read_text(encoding="utf-8"))
    assert PRISM_PROMPTS.name == "prism_prompts.json" and PRISM_PROMPTS.parent.name == "data"
    assert data["license"].startswith("CC-BY-4.0")
    assert "Kirk" in data["citation"] and "2024" in data["citation"] and "2404.16019" in data["citation"]
    assert "PRISM" in data["source"]
    # the same prompts as the public list, in the same order, texts untouched (spacing included)
    public = json.loads((shared / PRISM_JSON).read_text(encoding="utf-8"))
    assert data["prompts"] == public and data["n_prompts"] == len(public) == 8011
    pd.testing.assert_frame_equal(load_prompts(PRISM_PROMPTS), load_prompts(shared / PRISM_JSON))


def test_attributed_prompt_file(tmp_path):
    path = tmp_path / "mine.json"
    body = {"source": "written for this test", "license": "CC0-1.0", "prompts": ["Is it fair?", "Why vote?"]}
    path.write_text(json.dumps(body, indent=2), encoding="utf-8")
    df = load_prompts(path)
    assert list(df["prompt_id"]) == ["p00000", "p00001"] and list(df["text"]) == body["prompts"]
    path.write_text(json.dumps({"license": "CC0-1.0", "prompts": "Is it fair?"}), encoding="utf-8")
    with pytest.raises(
        PersonaLabError, match=r"mine\.json: the 'prompts' field is a str; expected a JSON list"
    ):
        load_prompts(path)
    path.write_text(json.dumps({"license": "CC0-1.0", "prompts": []}), encoding="utf-8")
    with pytest.raises(PersonaLabError, match="the prompt list is empty"):
        load_prompts(path)


def test_the_shared_template_helper():
    assert split_chat_sections(
        "ignored\n### system\n  Sort questions. \n### user\nQ: {prompt}\n", "t.txt"
    ) == (
        "Sort questions.",
        "Q: {prompt}",
    )
    with pytest.raises(
        PersonaLabError, match=r"t\.txt: expected a '### system' and a '### user' section, found \['system'\]"
    ):
        split_chat_sections("### system\nSort questions.\n", "t.txt")
    with pytest.raises(
        PersonaLabError,
        match=r"no_such\.txt: cannot read prompt template 'no_such\.txt' of persona_lab\.prompts",
    ):
        load_template("persona_lab.prompts", "no_such.txt")
    assert load_template("persona_lab.prompts", "controversy.txt") == TEMPLATES[0].read_text(encoding="utf-8")
