"""The Pink Elephants steps on the real local model (SmolLM2-135M through llama.cpp), and the elephants stage.

The 135M model cannot do the task; these tests check that whatever it answers is recorded (a failure with its
raw text, a judged reply), counted in the funnel, and written by the stage, never passed off as success."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from persona_lab.config import load_config
from persona_lab.elephants import (
    cut_dialogues,
    evaluate_models,
    funnel_counts,
    generate_dialogues,
    make_runner,
    mention_rates,
    mentions,
    pair_requests,
    parse_pair_answers,
    revise_dialogues,
)
from persona_lab.llm import LocalBackend, ResponseCache

pytestmark = pytest.mark.local_model


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    with ResponseCache(tmp_path_factory.mktemp("cache")) as cache:
        yield make_runner(LocalBackend(), cache=cache)


DOMAINS = pd.DataFrame({"domain": ["sports"], "description": ["sportswear brands"]})

TURNS = [
    {"role": "user", "content": "I love my Nike running shoes."},
    {"role": "assistant", "content": "Nike makes comfortable shoes for daily runs."},
    {"role": "user", "content": "Which German brand should I try next?"},
    {"role": "assistant", "content": "You could try Adidas, whose Ultraboost is very popular."},
]
"""A dialogue written for these tests: the assistant's second turn mentions Adidas."""


def _dialogue(split: str = "test") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "dialogue_id": ["pair00000/dialogue00"],
            "plan_id": ["pair00000/plan00"],
            "pair_id": ["pair00000"],
            "domain": ["sports"],
            "grey": ["Nike"],
            "pink": ["Adidas"],
            "pink_aliases": [["Three Stripes"]],
            "split": [split],
            "turns": [json.dumps(TURNS)],
            "n_exchanges": [2],
            "dropped_at": [None],
            "failure": [""],
            "raw": [""],
        }
    )


def test_a_pair_list_cut_off_by_the_model_is_a_recorded_failure_with_its_raw_text(run):
    # the real model's answer, cut at 6 tokens, is not valid JSON: the runner records it as unparseable
    requests = [
        r.model_copy(update={"max_tokens": 6})
        for r in pair_requests(DOMAINS, pairs_per_domain=2, pairs_per_call=2, temperature=0.0)
    ]
    candidates = parse_pair_answers(requests, run(requests, desc="pairs"))
    assert candidates["dropped_at"].tolist() == ["llm_failure"]
    assert candidates["failure"].iloc[0].startswith("unparseable: JSON answer cut off at max_tokens=6")
    assert candidates["raw"].iloc[0].startswith("JSON answer cut off at max_tokens=6: '{")
    funnel, dropped = funnel_counts(
        candidates.assign(kept=False), pd.DataFrame(), pd.DataFrame(), pd.DataFrame()
    )
    assert funnel["pairs"] == 0 and dropped["pairs"] == {"llm_failure": 1}


def test_a_plan_unrolled_by_the_model_is_a_dialogue_or_a_recorded_failure(run):
    pairs = pd.DataFrame(
        {
            "pair_id": ["pair00000"],
            "domain": ["sports"],
            "grey": ["Nike"],
            "pink": ["Adidas"],
            "pink_aliases": [[]],
        }
    )
    plans = pd.DataFrame(
        {
            "plan_id": ["pair00000/plan00"],
            "pair_id": ["pair00000"],
            "domain": ["sports"],
            "grey": ["Nike"],
            "pink": ["Adidas"],
            "split": ["train"],
            "steps": [["The user asks about Nike running shoes.", "The user asks for a German alternative."]],
            "kept": [True],
        }
    )
    dialogues = cut_dialogues(generate_dialogues(plans, pairs, run, turn_max_tokens=24, temperature=0.0))
    row = dialogues.iloc[0]
    assert row["raw"], "the model's raw answer is kept"
    usable = {"no_mention", "first_turn", None}
    if row["dropped_at"] in usable:  # parsed: the turns alternate user/assistant, one pair per exchange
        roles = [t["role"] for t in json.loads(row["turns"])]
        assert roles == ["user", "assistant"] * row["n_exchanges"]
    else:
        assert row["dropped_at"] in {"llm_failure", "degenerate", "too_short"} and row["failure"]


def test_the_judge_reads_the_assistant_turns_before_the_first_string_match(run):
    row = cut_dialogues(_dialogue(), run, judge=True).iloc[0]
    # one judge call (the first assistant turn); it keeps the string cut at exchange 1 or cuts earlier, at 0
    assert row["judge_calls"] == 1 and row["judge_failures"] == 0
    assert (row["cut_exchange"], row["cut_by"], row["dropped_at"]) in {
        (1, "string", None),
        (0, "judge", "first_turn"),
    }


def test_revise_and_evaluate_a_hand_written_dialogue_on_the_model(run):
    cut = cut_dialogues(_dialogue())
    assert cut["cut_exchange"].tolist() == [1] and cut["unwanted"].tolist() == [TURNS[3]["content"]]
    dpf = revise_dialogues(cut, run, judge=True, max_tokens=48)
    d = dpf.iloc[0]
    assert d["original"] == TURNS[3]["content"] and d["critique_raw"]
    assert d["dropped_at"] in {None, "dpf_failure", "still_mentions", "still_implies"}
    if d["dropped_at"] is None:
        assert d["chosen"] == d["revision"] and d["rejected"] == d["original"] and d["revised"]
        assert not mentions(d["revision"], "Adidas", ["Three Stripes"])
    elif d["dropped_at"] == "dpf_failure":
        assert d["failure"] and not d["revised"]
    else:
        assert d["revised"] and d["failure"]
    evals = evaluate_models(cut, {"local": run}, run, max_tokens=24)
    assert evals["condition"].tolist() == ["without", "with"]
    judged = evals[evals["failure"] == ""]
    assert judged["string_mention"].notna().all()
    for reply, said in zip(judged["reply"], judged["string_mention"], strict=True):
        assert said == mentions(reply, "Adidas", ["Three Stripes"])
    rates = mention_rates(evals)
    assert rates["n"].sum() == judged["string_mention"].notna().sum() + judged["judge_mention"].notna().sum()


def test_the_stage_writes_every_table_the_funnel_and_the_figures(tmp_path):
    from persona_lab.pipeline import run_stages

    pairs = tmp_path / "pairs.csv"
    pairs.write_text("domain,grey,pink\nsports,Nike,Adidas\ndrinks,Pepsi,Coca-Cola\n")
    cfg = load_config(
        "tiny",
        name="run",
        runs_dir=tmp_path,
        elephants={"pairs": str(pairs), "exchanges": 2, "turn_max_tokens": 24, "dpf_max_tokens": 48},
    )
    figures = tmp_path / "figures"
    summary = run_stages(cfg, ["elephants"], figures_dir=figures, progress=False)
    run_dir = tmp_path / "run"
    for name in ("pairs", "plans", "dialogues", "dpf", "dpo", "eval", "results"):
        assert (run_dir / "elephants" / f"{name}.parquet").exists(), name
    import datasets

    hf = datasets.load_from_disk(str(run_dir / "elephants" / "hf"))
    assert sorted(hf) == ["test", "train"]
    assert len(hf["train"]) + len(hf["test"]) == len(pd.read_parquet(run_dir / "elephants" / "dpo.parquet"))
    assert (figures / "elephants_mention_rates.png").exists() and (
        figures / "elephants_results_table.svg"
    ).exists()
    funnel = summary["elephants_funnel"]
    assert list(funnel) == ["pairs", "plans", "dialogues", "cut", "revised", "kept"]
    assert funnel["pairs"] == 2 and funnel["plans"] <= 2
    assert funnel["kept"] <= funnel["revised"] <= funnel["cut"] <= funnel["dialogues"] <= funnel["plans"]
    plans = pd.read_parquet(run_dir / "elephants" / "plans.parquet")
    # every plan is kept or dropped with a reason, and every failed call keeps its raw text
    assert (plans["kept"] | plans["dropped_at"].notna()).all()
    assert (plans.loc[plans["dropped_at"] == "llm_failure", "raw"].str.len() > 0).all()
    md = (run_dir / "elephants" / "results.md").read_text()
    assert "| Castricato et al. 2024 (paper) | GPT-4 | GPT-4 | 0.33 | 0.13 |" in md
    assert "local SmolLM2-135M: proves the pipeline, not the science" in md
