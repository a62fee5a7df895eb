"""The shared check for degenerate answers: hand-written cases of each reason, and no false alarm on GPT-4's
released personas."""

from __future__ import annotations

from pathlib import Path

import pytest

from persona_lab.llm import (
    DEGENERATE,
    degenerate_failure,
    degenerate_fields,
    degenerate_items,
    degenerate_reason,
)
from persona_lab.llm._degenerate import words

TOPIC = "Name the subject these questions share in 2 to 5 words, written like a section heading of a report."
CHECK = 'Persona profile:\n$profile\n\nIs this profile self-consistent? Answer with JSON: {"reason": "..."}'
SYSTEM = 'Give a one-sentence reason naming the attributes that conflict (or "No conflicting attributes").'
BOILERPLATE = "The person's lifestyle is a mix of traits that make them interesting and unique"


def test_words_ignore_case_punctuation_and_spacing() -> None:
    assert words("  Is THIS profile self-consistent?? ") == ("is", "this", "profile", "self", "consistent")
    assert words("(2 to 5 words)") == ("2", "to", "5", "words")
    assert words("...") == ()


@pytest.mark.parametrize("text", ["", "   \n\t", "...", "{}", '""', " - "])
def test_no_words_is_empty(text: str) -> None:
    assert degenerate_reason(text) == "empty"


@pytest.mark.parametrize(
    ("text", "instructions"),
    [
        ("(2 to 5 words)", [TOPIC]),  # the template's own instruction as a topic name (4 words)
        ("2 to 5 words.", [TOPIC]),
        ("Is this profile self-consistent?", [CHECK]),  # the question echoed as the reason
        ("is this profile self consistent", [CHECK]),  # case and punctuation do not hide it
        ("Is this profile self-consistent? Yes, it is.", [CHECK]),  # a whole instruction sentence inside
        # eight consecutive words of the instruction, with other words around them
        ("Well: written like a section heading of a report, I think", [TOPIC]),
    ],
)
def test_echo_of_the_instruction(text: str, instructions: list[str]) -> None:
    assert degenerate_reason(text, instructions=instructions) == "echoes the instruction"


@pytest.mark.parametrize(
    ("text", "instructions"),
    [
        ("Immigration and Border Policy", [TOPIC]),
        ("No conflicting attributes", [SYSTEM]),  # the answer the template suggests (3 words): allowed
        ("A 7-year-old cannot hold a doctorate", [CHECK, SYSTEM]),
        ("Section headings", [TOPIC]),  # two words of the instruction: too short to call an echo
        ("Words matter to this person", [TOPIC]),
    ],
)
def test_real_answers_are_not_echoes(text: str, instructions: list[str]) -> None:
    assert degenerate_reason(text, instructions=instructions) is None


def test_empty_rationale_only_when_asked() -> None:
    for bare in ("true", "Yes.", "N/A", "consistent", "null", "Reason: none"):
        assert degenerate_reason(bare, rationale=True) == "empty rationale", bare
        assert degenerate_reason(bare) is None, bare  # a bare "Yes" is a fine answer to a yes/no question
    assert degenerate_reason("Consistent: a retired teacher aged 70", rationale=True) is None


def test_same_and_nearly_same_text_as_a_sibling() -> None:
    assert degenerate_reason(BOILERPLATE, siblings=["Hikes on weekends", BOILERPLATE]) == (
        "same text as another field"
    )
    # one of 15 words swapped: SequenceMatcher ratio 2 * 14 / (15 + 15) = 0.933 >= 0.85
    swapped = BOILERPLATE.replace("lifestyle", "mannerisms")
    assert degenerate_reason(swapped, siblings=[BOILERPLATE]) == "nearly the same text as another field"
    # short values may repeat: a child's ideology and political views are both "Not applicable"
    assert degenerate_reason("Not applicable", siblings=["Not applicable"]) is None
    assert degenerate_reason("Not applicable", siblings=["not applicable."], same_min_words=1) == (
        "same text as another field"
    )
    # the same start, different content: 3 common words, ratio 2 * 3 / (7 + 8) = 0.4
    other = "Hikes every weekend and bakes bread for neighbours"
    assert degenerate_reason("Hikes every weekend with her two dogs", siblings=[other]) is None


def test_order_of_checks_empty_then_echo_then_siblings() -> None:
    assert degenerate_reason("", siblings=[""]) == "empty"
    echo = "Is this profile self-consistent?"
    assert degenerate_reason(echo, instructions=[CHECK], siblings=[echo]) == "echoes the instruction"


def test_fields_of_one_answer() -> None:
    fields = {
        "detailed job description": BOILERPLATE,
        "defining quirks": BOILERPLATE,
        "mannerisms": "Talks fast",
        "ideology": "Not applicable",
        "political views": "Not applicable",
        "lifestyle": "",
    }
    bad = degenerate_fields(fields)
    assert bad == {
        "detailed job description": "same text as another field",
        "defining quirks": "same text as another field",
        "lifestyle": "empty",
    }
    assert degenerate_failure(bad) == (
        "degenerate: same text as another field (detailed job description, defining quirks); empty (lifestyle)"
    )
    assert degenerate_fields({"reason": "true", "verdict": "true"}, rationale=["reason"]) == {
        "reason": "empty rationale"
    }
    assert degenerate_fields({"a": "Teaches math", "b": "Plays chess"}) == {}


def test_items_must_differ_whatever_their_length() -> None:
    names = ["Values and Society", "Pets", None, "values and society.", "Climate Policy"]
    assert degenerate_items(names) == [
        "same text as another item",
        None,
        None,  # no answer (a failed call) is not checked
        "same text as another item",
        None,
    ]
    assert degenerate_items(["(2 to 5 words)", "Pets and Owners"], instructions=[TOPIC]) == [
        "echoes the instruction",
        None,
    ]


def test_failure_string() -> None:
    assert DEGENERATE == "degenerate"
    assert degenerate_failure("echoes the instruction") == "degenerate: echoes the instruction"


def test_no_released_persona_is_flagged_against_the_enrichment_templates(shared: Path) -> None:
    """GPT-4's open-ended values in the 100 released PERSONA personas, checked as enrichment answers are."""
    from persona_lab.personas._prompting import enrichment_instructions
    from persona_lab.personas._schema import OPEN_ENDED_KEYS
    from persona_lab.personas._text import read_personas

    personas = read_personas(shared / "persona" / "personas_sample100.json")
    instructions = enrichment_instructions()
    flagged = {}
    for i, persona in enumerate(personas):
        attributes = persona.attributes()
        fields = {k: attributes[k] for k in OPEN_ENDED_KEYS if k in attributes}
        bad = degenerate_fields(fields, instructions=instructions)
        if bad:
            flagged[i] = bad
    assert flagged == {}


def test_one_text_in_every_field_whatever_its_length() -> None:
    seven = dict.fromkeys(["a", "b", "c", "d", "e", "f", "g"], "Not applicable")
    assert degenerate_fields(seven) == dict.fromkeys(seven, "same text as another field")
    # a child's two political fields may both be "Not applicable", and so may two of three fields
    assert degenerate_fields({"ideology": "Not applicable", "political views": "Not applicable"}) == {}
    assert degenerate_fields({"a": "N/A", "b": "N/A", "c": "Reads comics"}) == {}
    assert degenerate_fields({"a": "", "b": "", "c": ""}) == dict.fromkeys("abc", "empty")


def test_items_find_exact_repeats_at_scale_and_near_ones_on_request() -> None:
    texts = [f"Answer number {i} about item {i}" for i in range(50_000)] + ["answer number 7 about item 7."]
    flagged = [i for i, reason in enumerate(degenerate_items(texts)) if reason is not None]
    assert flagged == [7, 50_000]
    # one of 8 words differs: ratio 2 * 7 / (8 + 8) = 0.875 >= 0.85
    near = [
        "Cats are the best pets for small flats",
        "Cats are the best pets for small houses",
        "Wealth taxes",
    ]
    assert degenerate_items(near) == [None, None, None]
    assert degenerate_items(near, near=True) == ["nearly the same text as another item"] * 2 + [None]
