"""The four defects of the official PERSONA Bench code (``persona-bench`` on inspect-ai), each as a scenario,
and what this bench does instead."""

from __future__ import annotations

import pandas as pd

from persona_lab import bench
from persona_lab.config import BenchConfig, load_config

PERSONA = "age: 43\nsex: Female\nincome: 52000.0\nreligion: Catholic\n"
QUESTION = "Should I move to a bigger city for a better job?"


def _slots(request) -> tuple[str, str]:
    """(question, answer) as the critic's user message shows them."""
    user = request.messages[-1].content
    question = user.split("Their question: ", 1)[1].split("\n\nThe answer they received:\n", 1)[0]
    answer = user.split("\n\nThe answer they received:\n", 1)[1].split("\n\nWould this answer", 1)[0]
    return question, answer


def test_defect_1_the_official_task_evaluates_300_samples_where_the_paper_says_700() -> None:
    # The official pass@k task builds one sample per (prompt, persona) and keeps ``dataset[:300]``.
    personas = pd.DataFrame(
        {"persona_id": [f"p{i}" for i in range(586)], "text": [PERSONA] * 586, "split": "test"}
    )
    prompts = pd.DataFrame(
        {
            "prompt_id": [f"q{i}" for i in range(868)],
            "text": [QUESTION] * 868,
            "kept": True,
            "split": "heldout",
        }
    )
    official = list(range(len(personas)))[:300]
    assert len(official) == 300
    # ours: 700 by default and in the paper preset, for the mode grid and for pass@k
    cfg = load_config("paper")
    assert BenchConfig().n_samples == 700 and cfg.bench.n_samples == 700 and cfg.bench.pass_at_k_items == 700
    items = bench.select_items(
        bench.bench_personas(personas, cfg.bench), bench.bench_prompts(prompts, cfg.bench), 700, cfg.seed
    )
    assert len(items) == 700 and not items[["persona_id", "prompt_id"]].duplicated().any()
    tasks = bench.bench_tasks(
        items, cfg.model_copy(update={"bench": cfg.bench.model_copy(update={"loo_attributes": []})})
    )
    per_mode = tasks[tasks["experiment"] == "modes"].groupby("mode").size()
    assert per_mode.to_dict() == {m: 700 for m in bench.MODE_NAMES}
    passk = tasks[tasks["experiment"] == "pass_at_k"]
    assert len(passk) == 700 * 16 and passk.groupby(["persona_id", "prompt_id"]).ngroups == 700


def test_defect_2_the_official_pass_at_k_scorer_puts_the_answer_in_the_question_field() -> None:
    answers = ["Visit first.", "Stay near your parish.", "Take the job and keep in touch."]
    # Official: for each sampled answer m, question=m.text and answer=state.output.completion (the last answer).
    official = [(a, answers[-1]) for a in answers]
    assert all(q != QUESTION for q, _ in official) and {a for _, a in official} == {answers[-1]}
    # Ours: the critic judges (question, answer_i) for every sample i.
    rows = pd.DataFrame(
        {
            "full_persona": PERSONA,
            "question": QUESTION,
            "answer": answers,
            "persona_id": "p1",
            "prompt_id": "q1",
            "mode": "output_only",
            "sample": [0, 1, 2],
        }
    )
    requests = bench.critic_requests(rows, load_config("tiny"))
    assert [_slots(r) for r in requests] == [(QUESTION, a) for a in answers]


def test_defect_3_the_official_leave_one_out_plot_picks_the_wrong_base_persona() -> None:
    attributes = ["age", "religion"]
    # The official task makes, per persona, the baseline (all LOO attributes dropped) and one persona per
    # attribute with that attribute dropped; its plot then takes the variant with the MOST keys as the base.
    variants = [(name, d) for name, d in bench.loo_variants(attributes) if name != bench.FULL]
    texts = {name: bench.drop_attributes(PERSONA, dropped) for name, dropped in variants}
    scores = {"baseline": 0.0, "without age": 1.0, "without religion": 1.0}
    keys = [len(texts[name].splitlines()) for name, _ in variants]
    official_base = variants[max(range(len(keys)), key=keys.__getitem__)][0]
    assert official_base == "without age"  # 3 keys, the true baseline has 2
    assert scores[official_base] == 1.0  # the official "baseline" bar
    # Ours: every row carries its variant's name; the baseline is the persona with all of them dropped.
    assert texts["baseline"] == "sex: Female\nincome: 52000.0\n"
    rows = pd.DataFrame({"model": "m", "variant": list(scores) + ["full"], "score": [*scores.values(), 1.0]})
    table = bench.loo_accuracy(rows, attributes, n_boot=50).set_index("variant")
    assert table.loc["baseline", "accuracy"] == 0.0
    assert table.loc["without age", "accuracy"] == 1.0 and table.loc["without religion", "accuracy"] == 1.0


def test_defect_4_the_official_cot_vs_direct_script_loads_the_cot_logs_twice() -> None:
    rows = pd.DataFrame(
        {
            "experiment": "modes",
            "model": "m",
            "mode": ["chain_of_thought"] * 4 + ["output_only"] * 4,
            "on_the_nose": pd.array([True, True, True, False, True, False, False, False], dtype="boolean"),
        }
    )
    cot = rows[rows["mode"] == "chain_of_thought"]
    # Official: both sides read from the chain-of-thought logs: the same share twice, no difference.
    official_cot = official_direct = cot["on_the_nose"].astype(float).mean()
    assert official_cot == official_direct == 0.75
    # Ours: each side from its own mode's rows.
    table = bench.cot_subtlety(rows, BenchConfig(bootstrap=50)).set_index("mode")
    assert table.loc["chain_of_thought", "share_on_the_nose"] == 0.75
    assert table.loc["output_only", "share_on_the_nose"] == 0.25
    assert table.loc["chain_of_thought", "difference"] == 0.5
