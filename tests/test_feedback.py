"""Feedback pairs through the real runner and cache: originals shared per prompt, DPF, verification, statistics,
the Hugging Face and TRL exports, and the released PERSONA data."""

from __future__ import annotations

import functools
import json

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import RuleBackend

from persona_lab.config import load_config
from persona_lab.errors import PersonaLabError
from persona_lab.feedback import (
    FEEDBACK_COLUMNS,
    attach_texts,
    bootstrap_share,
    dpo_table,
    failure_counts,
    generate_feedback,
    hf_dataset,
    length_summary,
    length_table,
    load_release,
    order_shown,
    plan_requests,
    position_bias,
    rate_by_group,
    rate_by_length,
    sampling_plan,
    verification_rate,
)
from persona_lab.llm import LLMRequest, ResponseCache, estimate_tokens, run_requests

PERSONAS = pd.DataFrame(
    {
        "persona_id": ["pA", "pB"],
        "age": [70, 25],
        "sex": ["Male", "Female"],
        "race": ["White alone", "Asian alone"],
        "text": ["age: 70\nsex: Male\nrace: White alone\n", "age: 25\nsex: Female\nrace: Asian alone\n"],
    }
)
PROMPTS = pd.DataFrame(
    {
        "prompt_id": ["q1", "q2", "h1", "x9"],
        "text": [
            "Should cities ban cars from their centres?",
            "Is it right to eat meat?",
            "Should voting be compulsory for everyone?",
            "Dropped prompt?",
        ],
        "kept": [True, True, True, False],
        "split": ["train", "train", "heldout", None],
    }
)


def kind(request: LLMRequest) -> str:
    system = request.messages[0].content
    if system.startswith("You are a helpful assistant"):
        return "original"
    if request.choices:
        return "verify"
    return "critique" if "two labelled parts" in system else "revision"


def answer(request: LLMRequest) -> str:
    user = request.messages[-1].content
    what = kind(request)
    if what == "original":
        if "compulsory" in user:
            return "Should voting be compulsory for everyone?"  # echoes the prompt: a degenerate original
        return f"Here is a long and balanced answer with many considerations about: {user}"
    if what == "critique":
        if "age: 25" in user and "eat meat" in user:
            return "EVALUATION:\nSUGGESTIONS:"  # labels without content: unparseable
        return "EVALUATION: 'age: 70' suggests a preference for brevity.\nSUGGESTIONS: Be brief."
    if what == "revision":
        topic = "cars" if "cars" in user else "meat"
        return f"REVISED ANSWER: A short take on {topic}."
    return "A"  # the verifier always picks the first answer shown


@pytest.fixture()
def made(tmp_path) -> tuple[pd.DataFrame, RuleBackend]:
    cfg = load_config("tiny", feedback={"n_personas": 2})
    plan = sampling_plan(["pA", "pB"], ["q1", "q2"], ["h1"], seed=cfg.seed, sizes=(1, 1, 1))
    backend = RuleBackend(answer, model="rules-1")
    with ResponseCache(tmp_path / "cache.sqlite") as cache:
        run = functools.partial(run_requests, backend=backend, cache=cache, progress=False)
        table = generate_feedback(attach_texts(plan, PERSONAS, PROMPTS), cfg, run)
    return table, backend


def test_originals_are_made_once_per_prompt_and_shared_across_personas(made) -> None:
    table, backend = made
    kinds = pd.Series([kind(r) for r in backend.calls]).value_counts().to_dict()
    # 3 prompts -> 3 originals; 4 pairs with a usable original -> 4 critiques; 3 parse -> 3 revisions, 3 checks
    assert kinds == {"original": 3, "critique": 4, "revision": 3, "verify": 3}
    assert list(table.columns) == FEEDBACK_COLUMNS
    assert len(table) == 6
    assert table["split"].tolist() == ["train", "test_seen", "test_unseen"] * 2
    cars = table[table["prompt_id"] == "q1"]
    assert cars["original"].nunique() == 1 and len(cars) == 2


def test_failures_are_recorded_and_pairs_are_revision_over_original(made) -> None:
    table, _ = made
    by = table.set_index(["persona_id", "prompt_id"])
    assert by.loc[("pA", "h1"), "failure"] == "degenerate: original repeats the prompt"
    assert by.loc[("pB", "h1"), "failure"] == "degenerate: original repeats the prompt"
    assert (
        by.loc[("pB", "q2"), "failure"]
        == "unparseable: the critique's EVALUATION and SUGGESTIONS parts are empty"
    )
    assert by.loc[("pB", "q2"), "critique_raw"] == "EVALUATION:\nSUGGESTIONS:"
    assert failure_counts(table) == {"degenerate": 2, "unparseable": 1}
    assert failure_counts(table, detail=True) == {
        "degenerate: original repeats the prompt": 2,
        "unparseable: the critique's EVALUATION and SUGGESTIONS parts are empty": 1,
    }
    pair = by.loc[("pA", "q1")]
    assert pair["failure"] == ""
    assert pair["chosen"] == pair["revision"] == "A short take on cars."
    assert (
        pair["rejected"]
        == pair["original"]
        == (
            "Here is a long and balanced answer with many considerations about: Should cities ban cars from their centres?"
        )
    )
    assert (
        pair["critique"] == "EVALUATION: 'age: 70' suggests a preference for brevity.\nSUGGESTIONS: Be brief."
    )
    assert pair["original_tokens"] == estimate_tokens(pair["original"])
    assert pair["revision_tokens"] == estimate_tokens("A short take on cars.")
    provenance = json.loads(pair["provenance"])
    assert (
        provenance["model"] == "rules-1" and provenance["calls"] == 2 and len(provenance["request_keys"]) == 2
    )
    assert provenance["principle"] == "persona" and len(provenance["original_key"]) == 32


def test_verification_records_the_order_shown_and_what_was_chosen(made) -> None:
    table, _ = made
    pairs = table[table["failure"] == ""]
    assert len(pairs) == 3
    assert (pairs["verification_choice"] == "A").all()
    # the verifier picked A, i.e. the first answer of the recorded order
    assert pairs["verification"].tolist() == [o.split(",")[0] for o in pairs["order_shown"]]
    assert table.loc[table["failure"] != "", "verification"].isna().all()
    assert position_bias(table).share == 1.0
    expected = sum(o.startswith("revision") for o in pairs["order_shown"]) / 3
    assert verification_rate(table).share == pytest.approx(expected)


def test_the_order_shown_is_a_seeded_fair_coin() -> None:
    orders = [order_shown(0, f"p{i}", "q1") for i in range(2000)]
    assert set(orders) == {"original,revision", "revision,original"}
    assert 900 <= orders.count("revision,original") <= 1100
    assert orders == [order_shown(0, f"p{i}", "q1") for i in range(2000)]
    assert orders != [order_shown(1, f"p{i}", "q1") for i in range(2000)]


def test_the_plan_has_one_original_per_prompt_two_dpf_calls_and_one_check_per_pair() -> None:
    cfg = load_config("tiny", feedback={"n_personas": 2})
    plan = sampling_plan(["pA", "pB"], ["q1", "q2"], ["h1"], seed=0, sizes=(1, 1, 1))
    by_role = plan_requests(attach_texts(plan, PERSONAS, PROMPTS), cfg)
    assert [len(by_role[k]) for k in ("originals", "dpf", "verification")] == [3, 12, 6]
    assert [r.max_tokens for r in by_role["originals"]] == [64, 64, 64]
    assert {r.max_tokens for r in by_role["dpf"]} == {64, 48}
    assert all(r.choices == ("A", "B") for r in by_role["verification"])


# -- statistics -------------------------------------------------------------------------------------------------
def _stats_table() -> pd.DataFrame:
    rows = [
        # persona, original tokens, revision tokens, verification, first-shown choice
        ("pA", 100, 40, "revision", "A"),  # -60: 50+ shorter
        ("pA", 100, 90, "revision", "B"),  # -10: within 10
        ("pB", 50, 70, "original", "A"),  # +20: 10-49 longer
        ("pB", 80, 60, None, None),  # -20: 10-49 shorter, not verified
    ]
    return pd.DataFrame(
        {
            "persona_id": [r[0] for r in rows],
            "prompt_id": ["q1", "q2", "q1", "q2"],
            "split": ["train"] * 4,
            "failure": [""] * 4,
            "original_tokens": pd.array([r[1] for r in rows], dtype="Int64"),
            "revision_tokens": pd.array([r[2] for r in rows], dtype="Int64"),
            "verification": [r[3] for r in rows],
            "verification_choice": [r[4] for r in rows],
        }
    )


def test_verification_rate_position_bias_and_groups() -> None:
    t = _stats_table()
    rate = verification_rate(t, n_boot=500)
    assert (rate.share, rate.n) == (pytest.approx(2 / 3), 3)
    assert 0 <= rate.low <= rate.share <= rate.high <= 1
    assert position_bias(t).share == pytest.approx(2 / 3)
    groups = rate_by_group(t, PERSONAS, ["age", "sex", "religion"], n_boot=500)
    assert groups[["group", "value", "share", "n"]].to_dict("records") == [
        {"group": "age", "value": "18-29", "share": 0.0, "n": 1},
        {"group": "age", "value": "65+", "share": 1.0, "n": 2},
        {"group": "sex", "value": "Female", "share": 0.0, "n": 1},
        {"group": "sex", "value": "Male", "share": 1.0, "n": 2},
    ]


def test_bootstrap_share_is_seeded_and_exact_at_the_extremes() -> None:
    assert bootstrap_share([True] * 5).to_dict() == {"share": 1.0, "ci_low": 1.0, "ci_high": 1.0, "n": 5}
    assert bootstrap_share([]).n == 0 and np.isnan(bootstrap_share([]).share)
    values = [True] * 96 + [False] * 4
    a, b = bootstrap_share(values, seed=3), bootstrap_share(values, seed=3)
    assert a == b and a.share == 0.96 and 0.9 <= a.low < 0.96 < a.high <= 1.0


def test_length_bias_bins_and_summary() -> None:
    t = _stats_table()
    lengths = length_table(t)
    assert lengths["diff"].tolist() == [-60, -10, 20, -20]
    assert lengths["bin"].tolist() == ["50+ shorter", "within 10", "10-49 longer", "10-49 shorter"]
    by_bin = rate_by_length(t, n_boot=200).set_index("bin")
    assert by_bin["pairs"].to_dict() == {
        "50+ shorter": 1,
        "10-49 shorter": 1,
        "within 10": 1,
        "10-49 longer": 1,
        "50+ longer": 0,
    }
    assert by_bin.loc["50+ shorter", "share"] == 1.0 and by_bin.loc["10-49 longer", "share"] == 0.0
    assert by_bin.loc["10-49 shorter", "n"] == 0  # the pair is not verified
    summary = length_summary(t)
    assert summary["pairs"] == 4
    assert summary["mean_original_tokens"] == 82.5 and summary["mean_revision_tokens"] == 65.0
    assert summary["share_shorter"] == 0.75
    # diffs -60, -10, 20 against chose-revision 1, 1, 0: Sxy = -110/3, Sxx = 9800/3, Syy = 2/3,
    # r = Sxy / sqrt(Sxx Syy) = -(110/3) / sqrt(19600/9) = -110/140 = -0.7857
    assert summary["corr_diff_chose_revision"] == -0.7857


def test_the_length_bias_figure_names_the_local_model(made) -> None:
    from persona_lab.charts import feedback_length_bias_chart

    table, _ = made
    spec = feedback_length_bias_chart(table, backend="local", n_boot=200).to_dict()
    assert spec["title"]["subtitle"][1] == "local SmolLM2-135M: proves the pipeline, not the science"
    assert spec["title"]["subtitle"][0].startswith("3 pairs of 6 planned;")


# -- exports ----------------------------------------------------------------------------------------------------
def test_the_hf_dataset_has_the_three_splits_with_the_pairs(made) -> None:
    table, _ = made
    dd = hf_dataset(table, PERSONAS)
    assert list(dd) == ["train", "test_seen", "test_unseen"]
    assert [dd[s].num_rows for s in dd] == [2, 1, 0]  # pB's seen pair and both unseen pairs failed
    assert dd["test_unseen"].features == dd["train"].features
    row = dd["train"][0]
    assert row["persona"] == PERSONAS.loc[0, "text"] and row["chosen"] == row["revision"]
    assert dd["train"].features["original_tokens"].dtype == "int64"


def test_dpo_parquet_loads_with_datasets_in_trls_conversational_format(made, tmp_path) -> None:
    table, _ = made
    path = tmp_path / "dpo.parquet"
    pq.write_table(dpo_table(table, PERSONAS), path)
    ds = datasets.load_dataset("parquet", data_files=str(path), split="train")
    assert ds.column_names == ["prompt", "chosen", "rejected"]
    assert ds.num_rows == 2  # the train pairs
    message = {"role": datasets.Value("string"), "content": datasets.Value("string")}
    for column in ("prompt", "chosen", "rejected"):
        assert ds.features[column] == datasets.List(message)
    first = ds[0]
    train = table[(table["split"] == "train") & (table["failure"] == "")].iloc[0]
    persona_text = PERSONAS.set_index("persona_id").loc[train["persona_id"], "text"]
    assert first["prompt"] == [
        {"role": "system", "content": persona_text},
        {"role": "user", "content": train["prompt"]},
    ]
    assert first["chosen"] == [{"role": "assistant", "content": train["revision"]}]
    assert first["rejected"] == [{"role": "assistant", "content": train["original"]}]
    empty = dpo_table(table.iloc[0:0], PERSONAS)
    assert empty.num_rows == 0 and empty.schema.field("prompt").type == pa.list_(
        pa.struct([("role", pa.string()), ("content", pa.string())])
    )


# -- the released dataset ---------------------------------------------------------------------------------------
def _release_frame(shared) -> pd.DataFrame:
    personas = json.loads((shared / "persona" / "personas_sample100.json").read_text(encoding="utf-8"))
    rows = []
    for i, persona in enumerate(personas):
        for j, qtype in enumerate(("train", "test_seen", "Test Unseen")):
            pool = "H" if j == 2 else "Q"
            rows.append(
                {
                    "persona": persona,
                    "instruction": f"{pool}{(i + j) % 5}: what do you think?",
                    "original": f"Original {i}-{j}, a long answer.",
                    "critique": f"EVALUATION: long.\nSUGGESTIONS: cut {i}-{j}.",
                    "data": f"Short {i}-{j}.",
                    "question type": qtype,
                }
            )
    return pd.DataFrame(rows)


def test_load_release_reads_the_released_schema_into_our_tables(shared, tmp_path) -> None:
    df = _release_frame(shared)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "train-00000-of-00001.parquet")
    release = load_release(tmp_path)
    fb = release.feedback
    assert list(fb.columns) == FEEDBACK_COLUMNS and len(fb) == 300
    assert fb["split"].value_counts().to_dict() == {"train": 100, "test_seen": 100, "test_unseen": 100}
    assert len(release.personas) == 100 and release.personas["persona_id"].iloc[0] == "p00001"
    assert release.personas["text"].tolist() == list(dict.fromkeys(df["persona"]))
    assert len(release.prompts) == 10
    assert release.prompts.set_index("text")["split"].to_dict()["H3: what do you think?"] == "heldout"
    assert release.prompts.set_index("text")["split"].to_dict()["Q3: what do you think?"] == "train"
    first = fb.iloc[0]
    assert (first["chosen"], first["rejected"], first["revision"]) == (
        "Short 0-0.",
        "Original 0-0, a long answer.",
        "Short 0-0.",
    )
    assert first["original_tokens"] == estimate_tokens("Original 0-0, a long answer.")
    # the analyses run on it as on our own pairs
    assert length_summary(fb)["pairs"] == 300
    assert hf_dataset(fb, release.personas)["test_unseen"].num_rows == 100


def test_load_release_names_a_missing_column_and_an_unknown_question_type(shared, tmp_path) -> None:
    df = _release_frame(shared)
    path = tmp_path / "no_critique.parquet"
    pq.write_table(pa.Table.from_pandas(df.drop(columns="critique"), preserve_index=False), path)
    with pytest.raises(
        PersonaLabError, match=r"no_critique.parquet: the PERSONA release needs column\(s\) \['critique'\]"
    ):
        load_release(path)
    bad = df.copy()
    bad.loc[4, "question type"] = "validation"
    path = tmp_path / "bad_type.parquet"
    pq.write_table(pa.Table.from_pandas(bad, preserve_index=False), path)
    with pytest.raises(PersonaLabError, match=r"bad_type.parquet: row 4: unknown question type 'validation'"):
        load_release(path)
    with pytest.raises(PersonaLabError, match="no such file"):
        load_release(tmp_path / "missing.parquet")
