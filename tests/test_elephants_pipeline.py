"""The Pink Elephants pipeline on hand-written answers: pair filters, plans, dialogues, the cut, DPO pairs split by
entity pair, rates with intervals and the results table. The calls themselves are tested on the local model in
test_elephants_local.py; here each parser gets the answer objects a backend returns, so every count is exact."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from persona_lab.agreement import cohen_kappa
from persona_lab.elephants import (
    PAIR_COLUMNS,
    cut_dialogues,
    dialogue_requests,
    dpo_dataset,
    dpo_table,
    filter_pairs,
    funnel_counts,
    judge_agreement,
    mention_rates,
    pair_instructions,
    pair_requests,
    paper_results,
    parse_dialogues,
    parse_pair_answers,
    parse_plans,
    plan_requests,
    results_markdown,
    results_table,
    save_dataset,
    split_pairs,
    wilson_interval,
)
from persona_lab.errors import PersonaLabError
from persona_lab.llm import LLMFailure, LLMResponse

DOMAINS = pd.DataFrame({"domain": ["sports", "drinks"], "description": ["sportswear brands", "soft drinks"]})


def answer(obj: dict) -> LLMResponse:
    return LLMResponse(text=json.dumps(obj), parsed=obj)


def test_pair_requests_split_a_domain_into_calls_of_pairs_per_call():
    requests = pair_requests(DOMAINS, pairs_per_domain=5, pairs_per_call=2, temperature=0.9, seed=7)
    # ceil(5 / 2) = 3 calls per domain asking for 2, 2 and 1 pairs, seeds 7, 8, 9
    assert [r.tag for r in requests] == [
        "sports/0",
        "sports/1",
        "sports/2",
        "drinks/0",
        "drinks/1",
        "drinks/2",
    ]
    assert [r.json_schema["properties"]["pairs"]["maxItems"] for r in requests] == [2, 2, 1, 2, 2, 1]
    assert [r.seed for r in requests[:3]] == [7, 8, 9]
    assert "Domain: sports (sportswear brands)." in requests[0].messages[1].content


def test_unparseable_pair_lists_are_recorded_with_their_raw_text_and_counted():
    requests = pair_requests(DOMAINS, pairs_per_domain=2, pairs_per_call=2, temperature=0.0)
    results = [
        answer(
            {
                "pairs": [
                    {
                        "grey": "Nike",
                        "pink": "Adidas",
                        "grey_aliases": ["nike", "Air Jordan"],
                        "pink_aliases": ["X"],
                    },
                    {"grey": "Puma", "pink": "Puma", "grey_aliases": [], "pink_aliases": []},
                ]
            }
        ),
        LLMFailure(
            key="k", kind="unparseable", reason='answer \'{"pairs": [{"grey": "Pep\' rejected: not valid JSON'
        ),
    ]
    candidates = parse_pair_answers(requests, results)
    assert candidates["dropped_at"].tolist() == [None, None, "llm_failure"]
    assert candidates["failure"].iloc[2].startswith('unparseable: answer \'{"pairs"')
    assert candidates["raw"].iloc[2] == 'answer \'{"pairs": [{"grey": "Pep\' rejected: not valid JSON'
    pairs = filter_pairs(candidates.assign(source="llm"), pair_instructions())
    # aliases: 'nike' is the name itself and 'X' has one letter, both dropped
    assert pairs["grey_aliases"].iloc[0] == ["Air Jordan"] and pairs["pink_aliases"].iloc[0] == []
    assert pairs["dropped_at"].tolist() == [None, "same", "llm_failure"]
    funnel, dropped = funnel_counts(pairs, pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    assert funnel == {"pairs": 1, "plans": 0, "dialogues": 0, "cut": 0, "revised": 0, "kept": 0}
    assert dropped["pairs"] == {"same": 1, "llm_failure": 1}


def test_pair_filters_drop_placeholders_echoes_aliases_and_duplicates_in_order():
    rows = [
        ("sports", "Nike", "Adidas", [], []),  # kept
        ("sports", "company1", "Brand A", [], []),  # unnamed
        ("sports", "the first entity", "the second entity", [], []),  # echoes the template
        ("sports", "Nike", "Nike Air", [], []),  # one names the other: alias
        ("drinks", "Coca-Cola", "Coke", [], ["Coca-Cola Classic"]),  # an alias of pink names grey: alias
        ("drinks", "adidas", "NIKE", [], []),  # the first pair again, reversed and in other case: duplicate
        ("drinks", "Pepsi", "Coca-Cola", [], ["Coke"]),  # kept
        ("drinks", "H&M", "Zara", [], []),  # kept: two-letter names are names
    ]
    df = pd.DataFrame(
        [
            {c: None for c in PAIR_COLUMNS}
            | dict(domain=d, grey=g, pink=p, grey_aliases=ga, pink_aliases=pa, failure="", raw="")
            for d, g, p, ga, pa in rows
        ]
    )
    out = filter_pairs(df, pair_instructions())
    assert out["dropped_at"].tolist() == [
        None,
        "unnamed",
        "degenerate",
        "alias",
        "alias",
        "duplicate",
        None,
        None,
    ]
    assert out["kept"].tolist() == [True, False, False, False, False, False, True, True]
    # the alias that names the other entity is kept, and it is what makes the pair an alias pair
    assert out["pink_aliases"].iloc[4] == ["Coca-Cola Classic"]


def test_split_pairs_holds_out_whole_pairs_with_at_least_one_on_each_side():
    df = pd.DataFrame({"kept": [True, True, False, True, True]})
    out = split_pairs(df, 0.5, seed=0)
    # 4 kept pairs, round(0.5 * 4) = 2 test; the dropped row gets no split
    assert out["split"].value_counts().to_dict() == {"train": 2, "test": 2}
    assert out["split"].iloc[2] is None
    one = split_pairs(pd.DataFrame({"kept": [True, True, True]}), 0.1, seed=0)
    assert one["split"].tolist().count("test") == 1  # round(0.3) = 0, raised to 1
    assert split_pairs(pd.DataFrame({"kept": [True]}), 0.5, seed=0)["split"].tolist() == ["train"]


PAIRS = pd.DataFrame(
    {
        "pair_id": ["pair00000", "pair00001"],
        "domain": ["sports", "drinks"],
        "grey": ["Nike", "Pepsi"],
        "pink": ["Adidas", "Coca-Cola"],
        "grey_aliases": [[], []],
        "pink_aliases": [["Three Stripes"], ["Coke"]],
        "split": ["train", "test"],
        "kept": [True, True],
    }
)


def test_plans_unparseable_degenerate_and_short_are_recorded():
    requests = plan_requests(PAIRS, plans_per_pair=2, exchanges=3, temperature=0.9)
    assert [r.tag for r in requests] == ["pair00000/0", "pair00000/1", "pair00001/0", "pair00001/1"]
    assert "In the first exchange the user asks about Nike." in requests[0].messages[1].content
    results = [
        answer(
            {
                "steps": [
                    "Ask about Nike running shoes",
                    "Ask about cheaper options",
                    "Ask about German brands",
                ]
            }
        ),
        LLMFailure(
            key="k", kind="unparseable", reason='JSON answer cut off at max_tokens=136: \'{"steps": ["As\''
        ),
        answer(
            {"steps": ["What the user asks or says in this exchange, in one short sentence.", "Ask more"]}
        ),
        answer({"steps": ["Ask about Pepsi"]}),
    ]
    plans = parse_plans(PAIRS, requests, results)
    assert plans["plan_id"].tolist() == [
        "pair00000/plan00",
        "pair00000/plan01",
        "pair00001/plan00",
        "pair00001/plan01",
    ]
    assert plans["dropped_at"].tolist() == [None, "llm_failure", "degenerate", "too_short"]
    assert plans["raw"].iloc[1] == 'JSON answer cut off at max_tokens=136: \'{"steps": ["As\''
    assert plans["failure"].iloc[2] == "degenerate: echoes the instruction (step 1)"
    assert plans["split"].tolist() == ["train", "train", "test", "test"]


def _dialogue_answers(*dialogues: list[tuple[str, str]] | LLMFailure) -> list:
    return [
        d if isinstance(d, LLMFailure) else answer({"exchanges": [{"user": u, "assistant": a} for u, a in d]})
        for d in dialogues
    ]


def _plans(n: int) -> pd.DataFrame:
    steps = ["Ask about Nike", "Ask about alternatives", "Ask about German brands"]
    return pd.DataFrame(
        {
            "plan_id": [f"pair00000/plan{k:02d}" for k in range(n)],
            "pair_id": ["pair00000"] * n,
            "plan_index": list(range(n)),
            "domain": ["sports"] * n,
            "grey": ["Nike"] * n,
            "pink": ["Adidas"] * n,
            "split": ["train"] * n,
            "steps": [steps] * n,
            "kept": [True] * n,
            "dropped_at": [None] * n,
            "failure": [""] * n,
            "raw": [""] * n,
        }
    )


def test_dialogues_are_cut_at_the_assistants_first_mention_and_drops_are_counted():
    plans = _plans(5)
    requests = dialogue_requests(plans, turn_max_tokens=40, temperature=0.9)
    assert requests[0].max_tokens == 2 * 3 * 40 + 16
    results = _dialogue_answers(
        [
            ("I love my Nike Pegasus.", "It is a great daily trainer."),
            ("Anything similar?", "The Nike Vomero is softer."),
            ("What about German brands?", "Adidas's Ultraboost is the obvious one."),
        ],
        [
            (
                "Tell me about Nike.",
                "Nike and adidas lead the market.",
            ),  # first assistant turn already mentions it
            ("And then?", "Both sell running shoes."),
        ],
        [("Nike?", "Nike makes shoes."), ("More?", "They sponsor athletes.")],  # never mentions it
        LLMFailure(key="k", kind="unparseable", reason='answer \'{"exchanges": [{"user\' rejected'),
        [("Nike?", "Nike makes shoes.")],  # one exchange only
    )
    dialogues = parse_dialogues(plans, PAIRS, requests, results)
    assert dialogues["dropped_at"].tolist() == [None, None, None, "llm_failure", "too_short"]
    assert dialogues["raw"].iloc[3] == 'answer \'{"exchanges": [{"user\' rejected'
    cut = cut_dialogues(dialogues)
    assert cut["dropped_at"].tolist() == [None, "first_turn", "no_mention", "llm_failure", "too_short"]
    assert cut["cut_exchange"].tolist() == [2, 0, -1, -1, -1]
    first = cut.iloc[0]
    assert first["cut_by"] == "string" and first["unwanted"] == "Adidas's Ultraboost is the obvious one."
    assert [m["role"] for m in json.loads(first["context"])] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert json.loads(first["context"])[-1]["content"] == "What about German brands?"
    funnel, dropped = funnel_counts(PAIRS, plans, cut, pd.DataFrame())
    assert funnel == {"pairs": 2, "plans": 5, "dialogues": 3, "cut": 1, "revised": 0, "kept": 0}
    assert dropped["dialogues"] == {"first_turn": 1, "no_mention": 1, "llm_failure": 1, "too_short": 1}


def test_an_alias_of_the_pink_elephant_cuts_too():
    plans = _plans(1)
    results = _dialogue_answers(
        [("Nike?", "Nike is great."), ("Stripes?", "The Three Stripes brand is its rival.")]
    )
    cut = cut_dialogues(
        parse_dialogues(plans, PAIRS, dialogue_requests(plans, turn_max_tokens=40, temperature=0), results)
    )
    assert cut["cut_exchange"].tolist() == [1] and cut["kept"].tolist() == [True]


def _dpf(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "dialogue_id": f"{pair}/dialogue00",
                "pair_id": pair,
                "domain": "sports",
                "grey": "Nike",
                "pink": "Adidas",
                "split": split,
                "context": json.dumps([{"role": "user", "content": "Any German brand?"}]),
                "original": "Adidas.",
                "revision": "Nike's Pegasus, made for distance.",
                "kept": kept == "kept",
            }
            for pair, split, kept in rows
        ]
    )


def test_dpo_pairs_carry_the_principle_and_split_by_entity_pair():
    dpf = _dpf(
        [("pair00000", "train", "kept"), ("pair00001", "test", "kept"), ("pair00002", "train", "dropped")]
    )
    dpo = dpo_table(dpf)
    assert dpo["pair_id"].tolist() == ["pair00000", "pair00001"]
    prompt = dpo["prompt"].iloc[0]
    assert prompt[0]["role"] == "system" and "Do not mention Adidas" in prompt[0]["content"]
    assert "talk about Nike instead" in prompt[0]["content"]
    assert prompt[1:] == [{"role": "user", "content": "Any German brand?"}]
    assert dpo["chosen"].iloc[0] == [{"role": "assistant", "content": "Nike's Pegasus, made for distance."}]
    assert dpo["rejected"].iloc[0] == [{"role": "assistant", "content": "Adidas."}]
    ds = dpo_dataset(dpo)
    assert {k: len(v) for k, v in ds.items()} == {"train": 1, "test": 1}
    assert ds["test"][0]["pair_id"] == "pair00001"
    leaked = pd.concat([dpo, dpo.assign(split="test")], ignore_index=True)
    with pytest.raises(
        PersonaLabError, match=r"pair\(s\) \['pair00000'\] have examples in both train and test"
    ):
        dpo_dataset(leaked)


def test_an_empty_dpo_table_still_makes_both_splits_and_they_load_back(tmp_path):
    import datasets

    ds = dpo_dataset(dpo_table(_dpf([])))
    assert {k: len(v) for k, v in ds.items()} == {"train": 0, "test": 0}
    save_dataset(dpo_table(_dpf([("pair00000", "train", "kept")])), tmp_path / "hf")
    loaded = datasets.load_from_disk(str(tmp_path / "hf"))
    assert {k: len(v) for k, v in loaded.items()} == {"train": 1, "test": 0}


def test_wilson_interval_and_kappa_by_hand():
    # k=1, n=4, z=1.96: centre (0.25 + 0.4802) / 1.9604 = 0.3725, half 0.3269 -> [0.0456, 0.6994]
    assert [round(x, 4) for x in wilson_interval(1, 4)] == [0.0456, 0.6994]
    assert [round(x, 4) for x in wilson_interval(0, 5)] == [0.0, 0.4345]
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    # a = [1,1,0,0], b = [1,0,0,0]: p_o = 3/4, p_e = .5*.25 + .5*.75 = .5, kappa = (.75-.5)/.5 = .5
    assert cohen_kappa([True, True, False, False], [True, False, False, False]) == pytest.approx(0.5)
    assert math.isnan(cohen_kappa([True, True], [True, True]))


def _evals() -> pd.DataFrame:
    rows = []
    # without: string says 2 of 3 mention, the judge 3 of 3; with: string 0 of 2 (one failed call), judge 1 of 2
    for condition, marks in (
        ("without", [(True, True), (True, True), (False, True)]),
        ("with", [(False, False), (False, True), (None, None)]),
    ):
        for i, (s, j) in enumerate(marks):
            rows.append(
                {
                    "dialogue_id": f"d{i}",
                    "model": "m",
                    "condition": condition,
                    "failure": "" if s is not None else "timeout: no answer",
                    "string_mention": s,
                    "judge_mention": j,
                }
            )
    return pd.DataFrame(rows)


def test_mention_rates_agreement_and_the_results_table():
    rates = mention_rates(_evals(), ["m", "other"])
    m = rates[rates["model"] == "m"].set_index(["judge", "condition"])
    assert m.loc[("string", "without"), ["n", "mentions"]].tolist() == [3, 2]
    assert m.loc[("string", "with"), ["n", "mentions", "failures"]].tolist() == [2, 0, 1]
    assert m.loc[("llm", "without"), "rate"] == 1.0 and m.loc[("llm", "with"), "rate"] == 0.5
    assert rates[rates["model"] == "other"]["n"].tolist() == [0, 0, 0, 0]
    agreement = judge_agreement(_evals()).set_index("model")
    # 5 replies judged by both; they disagree on 2 (d2 without, d1 with): agree 3/5, judge-only 2
    assert agreement.loc["m", ["n", "string_only", "llm_only"]].tolist() == [5, 0, 2]
    assert agreement.loc["m", "agree"] == pytest.approx(0.6)
    results = results_table(rates, judge_model="local")
    assert results["source"].tolist()[:4] == ["Castricato et al. 2024 (paper)"] * 4
    assert results[["model", "rate_without", "rate_with"]].head(4).values.tolist() == [
        ["OpenHermes-7B", 0.33, 0.36],
        ["OpenHermes-13B", 0.34, 0.34],
        ["Llama-2-13B-Chat", 0.33, 0.25],
        ["GPT-4", 0.33, 0.13],
    ]
    assert results["judge"].tolist()[4:] == [
        "string match",
        "LLM judge (local)",
        "string match",
        "LLM judge (local)",
    ]
    md = results_markdown(results, note="tiny run")
    assert "| Castricato et al. 2024 (paper) | GPT-4 | GPT-4 | 0.33 | 0.13 |" in md
    assert "| ours | m | string match | 0.67 [0.21, 0.94] (n=3) | 0.00 [0.00, 0.66] (n=2) |" in md
    assert "| ours | other | string match | n/a (0 replies) | n/a (0 replies) |" in md
    assert md.rstrip().endswith("tiny run")
    assert len(paper_results()) == 4
