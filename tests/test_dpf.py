"""The DPF engine: principles, tolerant parsers, critique and revision through the real runner and cache."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable

import pytest
from conftest import RuleBackend

from persona_lab.dpf import (
    DPFItem,
    check_critique,
    check_revision,
    clean_answer,
    copied_share,
    critique_and_revise,
    dpf_requests,
    load_principle,
    parse_critique,
    parse_revision,
    parse_single,
    principle_names,
    render_conversation,
)
from persona_lab.errors import PersonaLabError
from persona_lab.llm import (
    LLMError,
    LLMRequest,
    Message,
    ResponseCache,
    estimate_tokens,
    request_key,
    run_requests,
)

PERSONA = "age: 67\nsex: Male\noccupation category: FFF-Farmers\nstate: IA"
QUESTION = "Should the government subsidise electric cars?"
ORIGINAL = "Electric car subsidies have pros and cons. They cut emissions but cost taxpayers money. Many economists disagree about them."


def _item(original: str = ORIGINAL, pid: str = "p1") -> DPFItem:
    return DPFItem(
        id=f"{pid}/q1",
        context=(Message(role="user", content=QUESTION),),
        original=original,
        variables={"persona": PERSONA},
    )


def _runner(backend: RuleBackend, tmp_path) -> tuple[Callable, ResponseCache]:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    return functools.partial(run_requests, backend=backend, cache=cache, progress=False), cache


GOOD_CRITIQUE = (
    "EVALUATION: The persona is a 67-year-old farmer in Iowa ('FFF-Farmers'); the answer's 'cost taxpayers "
    "money' resonates, but it never mentions rural driving.\nSUGGESTIONS: Mention long rural distances and cut "
    "the line about economists."
)
GOOD_REVISION = (
    "REVISED ANSWER: Subsidies cut emissions, but over long country roads the cost may not pay off."
)


def _which(request: LLMRequest) -> str:
    system = request.messages[0].content
    if "three labelled parts" in system:
        return "single"
    return "critique" if "two labelled parts" in system else "revision"


# -- principles ---------------------------------------------------------------------------------------------
def test_the_shipped_principles_load_with_their_variables_and_fingerprints() -> None:
    assert principle_names() == ["persona", "pink_elephant"]
    persona = load_principle("persona")
    pink = load_principle("pink_elephant")
    assert persona.variables == ("persona",)
    assert pink.variables == ("pink", "grey")
    assert pink.forbidden == ("pink",)
    digest = hashlib.sha256()
    for which, text in (
        ("critique", persona.critique_template),
        ("revision", persona.revision_template),
        ("single", persona.single_template),
    ):
        digest.update(which.encode() + b"\0" + text.encode() + b"\0")
    assert persona.fingerprint == digest.hexdigest()
    assert persona.fingerprint != pink.fingerprint
    assert [p.name for p in persona.files] == ["critique.txt", "revision.txt", "single.txt"]
    system, user = persona.sections("critique")
    assert "EVALUATION" in system and "{persona}" in user and "prefers short answers" in user
    with pytest.raises(PersonaLabError, match="unknown DPF principle 'kindness'.*persona, pink_elephant"):
        load_principle("kindness")


# -- parsers ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "evaluation", "suggestions"),
    [
        ("EVALUATION: Too long. SUGGESTIONS: Cut it.", "Too long.", "Cut it."),
        (
            "**Evaluation:** Too formal.\n\n**Suggestions:**\n- Use plain words",
            "Too formal.",
            "- Use plain words",
        ),
        (
            "## Assessment\nIt ignores farming.\n## Recommendations\nMention crops.",
            "It ignores farming.",
            "Mention crops.",
        ),
        (
            "The answer is fine but long.\nSuggestions: shorten it",
            "The answer is fine but long.",
            "shorten it",
        ),
        ("Sure, here it is.\nevaluation - no, EVALUATION: Generic.\n", "Generic.", ""),
        ("EVALUATION: Vague.\nSUGGESTIONS: Be direct.\nREVISED ANSWER: Yes.", "Vague.", "Be direct."),
    ],
)
def test_parse_critique_reads_labels_as_models_write_them(
    raw: str, evaluation: str, suggestions: str
) -> None:
    critique, failure = parse_critique(raw)
    assert failure == ""
    assert critique is not None
    assert (critique.evaluation, critique.suggestions) == (evaluation, suggestions)


def test_parse_critique_records_what_it_cannot_read() -> None:
    bare, failure = parse_critique("I think this answer is **quite good** overall.")
    assert failure == "" and bare is not None and not bare.labelled
    assert (bare.evaluation, bare.suggestions) == ("I think this answer is **quite good** overall.", "")
    assert bare.text == "EVALUATION: I think this answer is **quite good** overall."
    assert parse_critique(" \n ") == (None, "unparseable: the critique is empty")
    assert parse_critique("EVALUATION:\nSUGGESTIONS: **") == (
        None,
        "unparseable: the critique's EVALUATION and SUGGESTIONS parts are empty",
    )
    critique, _ = parse_critique("EVALUATION: Long.\nSUGGESTIONS: Shorter.")
    assert critique is not None and critique.text == "EVALUATION: Long.\nSUGGESTIONS: Shorter."


@pytest.mark.parametrize(
    ("raw", "revision"),
    [
        ("REVISED ANSWER: Keep it short.", "Keep it short."),
        (
            'Sure! Here is the revised answer:\n\n"Keep it short."\n\nNote: I removed the jargon.',
            "Keep it short.",
        ),
        ("**Revised Preference:** Keep it short.", "Keep it short."),
        ("## Revised response\n<answer>Keep it short.</answer>", "Keep it short."),
        ("REVISED ANSWER:\n```\nKeep it short.\n```", "Keep it short."),
        ("Reply in this form:\nREVISED ANSWER: the revised answer\nREVISED ANSWER: Real one.", "Real one."),
        ("Keep it short, and plant soy.", "Keep it short, and plant soy."),
        ("REVISED ANSWER: Plant soy.\n\nChanges made: shorter, no jargon.", "Plant soy."),
        ("The original answer, written to you:\n<answer>\nPlant soy.", "Plant soy."),
        ("Here are my three points:\n- soy\n- corn", "- soy\n- corn"),
        ("Three points matter:\n- soy", "Three points matter:\n- soy"),
    ],
)
def test_parse_revision_takes_the_answer_out_of_what_surrounds_it(raw: str, revision: str) -> None:
    assert parse_revision(raw) == (revision, "")


def test_parse_revision_records_what_it_cannot_read() -> None:
    assert parse_revision("REVISED ANSWER:   \n") == (
        None,
        "unparseable: nothing follows the REVISED ANSWER label",
    )
    assert parse_revision("EVALUATION: long. SUGGESTIONS: shorten.") == (
        None,
        "unparseable: no REVISED ANSWER label, and the text is a critique (EVALUATION/SUGGESTIONS)",
    )
    assert parse_revision("  ** \n") == (None, "unparseable: the revision is empty")


def test_parse_single_reads_critique_and_revision_from_one_answer() -> None:
    critique, revision, failure = parse_single("EVALUATION: a. SUGGESTIONS: b. REVISED ANSWER: c.")
    assert critique is not None and (critique.evaluation, critique.suggestions, revision, failure) == (
        "a.",
        "b.",
        "c.",
        "",
    )
    assert parse_single("EVALUATION: a. SUGGESTIONS: b.")[1:] == (
        None,
        "unparseable: the answer has no REVISED ANSWER part",
    )


def test_clean_answer_keeps_an_inner_quote() -> None:
    assert clean_answer('"Plant soy," he said, "and corn."') == '"Plant soy," he said, "and corn."'


# -- requests -----------------------------------------------------------------------------------------------
def test_dpf_requests_plan_critiques_then_revisions_with_a_bounding_placeholder() -> None:
    principle = load_principle("persona")
    items = [_item(pid="p1"), _item(pid="p2")]
    plan = dpf_requests(items, principle)
    assert [r.tag for r in plan] == ["p1/q1/critique", "p2/q1/critique", "p1/q1/revision", "p2/q1/revision"]
    assert [r.max_tokens for r in plan] == [384, 384, 384, 384]
    critique_user = plan[0].messages[1].content
    assert PERSONA in critique_user and ORIGINAL in critique_user and f"USER: {QUESTION}" in critique_user
    revision_user = plan[2].messages[1].content
    placeholder = revision_user.split("<critique>\n")[1].split("\n</critique>")[0]
    assert estimate_tokens(placeholder) == 384
    assert len(dpf_requests(items, principle, single_call=True)) == 2
    assert dpf_requests(items, principle, single_call=True)[0].max_tokens == 768
    assert len(dpf_requests(items, principle, rounds=3)) == 12
    assert [r.max_tokens for r in dpf_requests(items[:1], principle, max_tokens=(40, 60))] == [40, 60]


def test_filled_text_is_never_expanded_as_a_placeholder() -> None:
    item = DPFItem(
        "p/q",
        (Message(role="user", content="Say {critique} and {persona}"),),
        "x {original}",
        {"persona": "P"},
    )
    for request in dpf_requests([item], load_principle("persona")):
        user = request.messages[1].content
        assert "USER: Say {critique} and {persona}" in user and "x {original}" in user


def test_an_item_without_the_principles_variables_is_refused() -> None:
    item = DPFItem("d1", (Message(role="user", content="Shoes?"),), "Adidas.", {"pink": "Adidas"})
    with pytest.raises(
        PersonaLabError, match=r"DPF item 'd1': principle 'pink_elephant' needs the variable\(s\) \['grey'\]"
    ):
        dpf_requests([item], load_principle("pink_elephant"))


def test_render_conversation() -> None:
    context = (Message(role="user", content=" Hi "), Message(role="assistant", content="Hello"))
    assert render_conversation(context) == "USER: Hi\n\nASSISTANT: Hello"


# -- the engine through the real runner and cache -----------------------------------------------------------
def test_a_good_critique_and_revision_make_a_pair_with_provenance(tmp_path) -> None:
    backend = RuleBackend(
        lambda r: GOOD_CRITIQUE if _which(r) == "critique" else GOOD_REVISION, model="rules-1"
    )
    run, cache = _runner(backend, tmp_path)
    principle = load_principle("persona")
    [result] = critique_and_revise([_item()], principle, run)
    assert result.failure == "" and result.ok
    assert result.revision == "Subsidies cut emissions, but over long country roads the cost may not pay off."
    assert (result.chosen, result.rejected) == (result.revision, ORIGINAL)
    assert result.critique == (
        "EVALUATION: The persona is a 67-year-old farmer in Iowa ('FFF-Farmers'); the answer's 'cost taxpayers "
        "money' resonates, but it never mentions rural driving.\nSUGGESTIONS: Mention long rural distances and "
        "cut the line about economists."
    )
    assert (result.critique_raw, result.revision_raw) == (GOOD_CRITIQUE, GOOD_REVISION)
    assert len(backend.calls) == 2
    assert result.critique in backend.calls[1].messages[1].content  # the revision sees the parsed critique
    keys = [request_key(r, "rules", "rules-1") for r in backend.calls]
    assert result.provenance == {
        "backend": "rules",
        "model": "rules-1",
        "request_keys": keys,
        "calls": 2,
        "principle": "persona",
        "principle_fingerprint": principle.fingerprint,
        "single_call": False,
        "rounds": 1,
    }
    # a rerun replays from the cache: same result, no call
    [again] = critique_and_revise([_item()], principle, run)
    assert len(backend.calls) == 2 and again == result
    cache.close()


def test_failures_are_recorded_with_the_raw_text_and_never_become_pairs(tmp_path) -> None:
    echo = (
        "EVALUATION: how the answer fits this person and where it misses, with quotes from the persona and the "
        "answer\nSUGGESTIONS: the concrete changes"
    )

    def answer(r: LLMRequest) -> str | LLMError:
        user = r.messages[1].content
        if "ECHO" in user:
            return echo if _which(r) == "critique" else GOOD_REVISION
        if "SAME" in user:
            return GOOD_CRITIQUE if _which(r) == "critique" else "REVISED ANSWER: **SAME answer, kept.**"
        if "REFUSE" in user:
            return LLMError("refusal", "declined")
        if "BARE" in user:
            return " \n" if _which(r) == "critique" else GOOD_REVISION
        if "PARROT" in user:
            return "PARROT the answer goes on about taxes." if _which(r) == "critique" else GOOD_REVISION
        if "CRITIQUE" in user:
            return GOOD_CRITIQUE if _which(r) == "critique" else "EVALUATION: fine. SUGGESTIONS: none."
        raise AssertionError(user)

    backend = RuleBackend(answer, model="rules-1")
    run, cache = _runner(backend, tmp_path)
    items = [
        _item(o, pid=f"p{i}")
        for i, o in enumerate(
            [
                "ECHO a",
                "SAME answer, kept.",
                "REFUSE",
                "BARE",
                "CRITIQUE",
                "PARROT: the answer goes on about taxes.",
            ]
        )
    ]
    results = critique_and_revise(items, load_principle("persona"), run)
    assert [r.failure for r in results] == [
        "degenerate: critique echoes the instruction",
        "identical: the revision repeats the original",
        "critique call refusal: declined",
        "unparseable: the critique is empty",
        "unparseable: no REVISED ANSWER label, and the text is a critique (EVALUATION/SUGGESTIONS)",
        "degenerate: critique repeats the answer",
    ]
    assert all(r.chosen is None and r.rejected is None for r in results)
    assert results[0].critique_raw == echo and results[3].critique_raw == " \n"
    assert results[4].revision_raw == "EVALUATION: fine. SUGGESTIONS: none."
    # revisions were requested only for the two items whose critique passed
    assert sorted(r.tag for r in backend.calls if r.tag.endswith("/revision")) == [
        "p1/q1/revision",
        "p4/q1/revision",
    ]
    assert results[2].provenance["calls"] == 1 and results[1].provenance["calls"] == 2
    cache.close()


def test_the_single_call_ablation_makes_one_call_per_item(tmp_path) -> None:
    backend = RuleBackend(
        lambda r: "EVALUATION: Long.\nSUGGESTIONS: Cut.\nREVISED ANSWER: Short now.", model="rules-1"
    )
    run, cache = _runner(backend, tmp_path)
    [result] = critique_and_revise([_item()], load_principle("persona"), run, single_call=True, max_tokens=50)
    assert (result.failure, result.critique, result.chosen) == (
        "",
        "EVALUATION: Long.\nSUGGESTIONS: Cut.",
        "Short now.",
    )
    assert (
        len(backend.calls) == 1
        and _which(backend.calls[0]) == "single"
        and backend.calls[0].max_tokens == 100
    )
    assert result.provenance["single_call"] is True and result.provenance["calls"] == 1
    cache.close()


def test_more_rounds_revise_the_previous_revision(tmp_path) -> None:
    def answer(r: LLMRequest) -> str:
        if _which(r) == "critique":
            return "EVALUATION: Still long.\nSUGGESTIONS: Cut more."
        return (
            "REVISED ANSWER: Shorter." if ORIGINAL in r.messages[1].content else "REVISED ANSWER: Shortest."
        )

    backend = RuleBackend(answer, model="rules-1")
    run, cache = _runner(backend, tmp_path)
    [result] = critique_and_revise([_item()], load_principle("persona"), run, rounds=2)
    assert len(backend.calls) == 4
    assert (
        "<answer>\nShorter.\n</answer>" in backend.calls[2].messages[1].content
    )  # round 2 critiques round 1
    assert (result.chosen, result.rejected) == ("Shortest.", ORIGINAL)
    assert result.provenance["history"] == [
        {"critique": "EVALUATION: Still long.\nSUGGESTIONS: Cut more.", "revision": "Shorter."},
        {"critique": "EVALUATION: Still long.\nSUGGESTIONS: Cut more.", "revision": "Shortest."},
    ]
    with pytest.raises(PersonaLabError, match="rounds = 0"):
        critique_and_revise([_item()], load_principle("persona"), run, rounds=0)
    cache.close()


def test_copies_of_the_answer_are_not_critiques_or_revisions() -> None:
    principle = load_principle("persona")
    item = _item()
    # the local model's typical failure: the original, cut off by the token budget, under a label
    excerpt = "The original answer: Electric car subsidies have pros and cons. They cut emissions"
    assert copied_share(excerpt, ORIGINAL) == 10 / 13
    assert check_revision(excerpt, ORIGINAL, item, principle) == ""  # 10 of 13 words < 0.9
    cut = "Electric car subsidies have pros and cons. They cut emissions"
    assert (
        check_revision(cut, ORIGINAL, item, principle)
        == "identical: the revision is an excerpt of the original"
    )
    assert check_revision("Subsidies help cities more than farms.", ORIGINAL, item, principle) == ""
    assert copied_share("They cut emissions", ORIGINAL) == 0.0  # under COPY_NGRAM words: never a copy
    # phrases of the source stitched together and repeated: every word is covered
    stitched = "They cut emissions but cost taxpayers money. Electric car subsidies have pros and cons. They cut emissions but cost"
    assert copied_share(stitched, ORIGINAL) == 1.0
    critique = "EVALUATION: The answer is too long for a farmer who reads little."
    assert check_revision(
        "The answer is too long for a farmer who reads little.", ORIGINAL, item, principle, critique=critique
    ) == ("degenerate: revision repeats the critique")
    parrot, _ = parse_critique(f"The answer says: {ORIGINAL}")
    assert parrot is not None and check_critique(parrot, principle, original=ORIGINAL) == (
        "degenerate: critique repeats the answer"
    )
    quoting, _ = parse_critique(
        "EVALUATION: 'cost taxpayers money' fits a farmer who counts every dollar, but 'Many economists "
        "disagree' means nothing to him.\nSUGGESTIONS: Talk about fuel costs on long rural drives."
    )
    assert quoting is not None and check_critique(quoting, principle, original=ORIGINAL) == ""


def test_the_pink_elephant_principle_rejects_a_revision_that_still_names_it(tmp_path) -> None:
    principle = load_principle("pink_elephant")
    context = (Message(role="user", content="Which running shoes should I buy?"),)
    item = DPFItem("d1", context, "Adidas Ultraboost is great.", {"pink": "Adidas", "grey": "Nike"})
    assert check_revision("Try the adidas range.", item.original, item, principle) == (
        "forbidden: the revision still mentions 'Adidas' (pink)"
    )
    assert check_revision("Try Nike Pegasus.", item.original, item, principle) == ""

    def answer(r: LLMRequest) -> str:
        assert "Adidas" in r.messages[1].content and "Nike" in r.messages[1].content
        if _which(r) == "critique":
            return "EVALUATION: 'Adidas Ultraboost' names it.\nSUGGESTIONS: Recommend Nike."
        return "REVISED ANSWER: The Nike Pegasus is a great everyday trainer."

    run, cache = _runner(RuleBackend(answer, model="rules-1"), tmp_path)
    [result] = critique_and_revise([item], principle, run)
    assert (result.failure, result.chosen) == ("", "The Nike Pegasus is a great everyday trainer.")
    cache.close()


@pytest.mark.local_model
def test_the_local_model_critiques_and_revises_or_records_why_not(tmp_path) -> None:
    from persona_lab.llm import get_backend

    cache = ResponseCache(tmp_path / "cache.sqlite")
    run = functools.partial(run_requests, backend=get_backend("local"), cache=cache, progress=False)
    [result] = critique_and_revise([_item()], load_principle("persona"), run, max_tokens=48)
    assert result.critique_raw.strip()  # the model answered; its text is kept whatever it says
    assert result.provenance["model"] and len(result.provenance["request_keys"]) == result.provenance["calls"]
    if result.ok:
        assert result.rejected == ORIGINAL and result.chosen and result.chosen != ORIGINAL
    else:
        assert result.failure.split(":")[0] in {"unparseable", "degenerate", "identical"}, result.failure
    cache.close()
