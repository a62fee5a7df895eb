"""The bench run: items, the answers of every model in every mode, the critic's verdicts, the judges, the table.

One bench run (PERSONA Sec. 5) is three experiments over the same (persona, prompt) items:

- ``modes``: each model answers each item once in each configured mode (Fig. 10);
- ``pass_at_k``: each model answers the first ``pass_at_k_items`` items ``pass_at_k_samples`` times in one mode,
  at ``pass_at_k_temperature``, each sample with its own ``sample_index`` and seed (Fig. 12); the critic judges
  (question, answer_i) for every sample i (the official scorer judged the wrong pair: it put each answer in the
  question's place);
- ``leave_one_out``: each model answers the first ``loo_items`` items for the full persona, the persona without
  each configured attribute, and the baseline persona without all of them.

Every answer goes through the critic; ``chain_of_thought`` and ``output_only`` answers of the ``modes``
experiment also go through the subtlety judge, and optionally the ``persona_summary`` summaries through the
summary judge. All calls are built as ``LLMRequest``s and sent by one ``send(requests, backend, desc)`` function
(the stage passes its ``RunContext.run_requests``, so every call goes through the run's cache).

Items are drawn as in the paper's feedback pairing (personas and prompts paired at random): the personas of
``persona_split`` (the first ``n_personas`` in table order, which the personas stage already drew at random) and
the kept prompts of ``prompt_split`` (the first ``n_prompts``) are crossed, and ``n_samples`` distinct pairs are
drawn with the run's seed (all pairs, shuffled, when there are fewer).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from persona_lab.bench._critic import (
    critic_request,
    parse_subtlety,
    parse_summary_judgement,
    parse_verdict,
    subtlety_request,
    summary_judge_request,
)
from persona_lab.bench._groups import (
    FULL,
    drop_attributes,
    loo_variants,
)
from persona_lab.bench._items import (
    bench_models,
    bench_personas,
    bench_prompts,
    check_config,
    check_personas,
    critic_spec,
    select_items,
)
from persona_lab.bench._modes import answer_request, get_mode, parse_answer
from persona_lab.bench._summaries import applicable, summary_attributes
from persona_lab.config import BenchConfig, RunConfig
from persona_lab.errors import PersonaLabError
from persona_lab.llm import LLMFailure, LLMRequest, LLMResponse

Result = LLMResponse | LLMFailure
Send = Callable[[Sequence[LLMRequest], str, str], list[Result]]
"""``send(requests, backend_spec, desc)`` -> one result per request, in order."""

EXPERIMENTS: tuple[str, ...] = ("modes", "pass_at_k", "leave_one_out")
"""The three experiments of a bench run, the values of the ``experiment`` column."""

DIRECT_MODE = "output_only"
"""The direct (no reasoning) mode the chain-of-thought subtlety is compared with."""
SUBTLETY_MODES: tuple[str, ...] = ("chain_of_thought", DIRECT_MODE)
"""Modes whose answers the subtlety judge reads."""

MODEL_FAILURE_KINDS: tuple[str, ...] = ("degenerate", "unparseable", "refusal")
"""Failure kinds that are the model's own: such an answer scores 0. Any other failure (quota, network, server,
a critic that could not give a verdict) leaves the item unscored."""

BENCH_COLUMNS: tuple[str, ...] = (
    "experiment",
    "model",
    "mode",
    "variant",
    "dropped",
    "persona_id",
    "prompt_id",
    "sample",
    "temperature",
    "persona",
    "question",
    "answer",
    "reasoning",
    "answer_failure",
    "raw_answer",
    "critic",
    "needs_revision",
    "critic_rationale",
    "critic_failure",
    "score",
    "failure",
    "on_the_nose",
    "subtlety_rationale",
    "subtlety_failure",
)
"""Columns of ``bench.parquet``: one row per answer. ``persona`` is the text the model under test saw (empty for
the baseline mode, reduced for leave-one-out variants), ``reasoning`` the chain of thought or summary the critic
never sees, ``score`` 1.0 (no revision needed), 0.0 (needs revision, or the model's answer failed) or NaN
(unscored), ``failure`` why the answer or the verdict failed (``""`` when neither did)."""


# -- configuration ------------------------------------------------------------------------------------------------
def bench_tasks(items: pd.DataFrame, cfg: RunConfig) -> pd.DataFrame:
    """One row per answer to produce: every experiment, model, mode, variant and sample.

    Returns:
        Columns ``experiment``, ``model``, ``mode``, ``variant``, ``dropped``, ``persona_id``, ``prompt_id``,
        ``sample``, ``temperature``, ``seed``, ``persona`` (shown to the model), ``full_persona`` (shown to the
        critic), ``question``.
    """
    b = cfg.bench
    rows: list[dict[str, Any]] = []
    records = items.to_dict("records")

    def add(experiment: str, model: str, mode: str, item: Mapping[str, Any], **kw: Any) -> None:
        shown = kw.pop("shown", item["persona"])
        rows.append(
            {
                "experiment": experiment,
                "model": model,
                "mode": mode,
                "variant": kw.pop("variant", FULL),
                "dropped": kw.pop("dropped", ""),
                "persona_id": item["persona_id"],
                "prompt_id": item["prompt_id"],
                "sample": kw.pop("sample", 0),
                "temperature": kw.pop("temperature", cfg.llm.temperature),
                "seed": kw.pop("seed", cfg.seed),
                "persona": shown if get_mode(mode).uses_persona else "",
                "full_persona": item["persona"],
                "question": item["question"],
            }
        )

    for model in bench_models(cfg):
        for mode in b.modes:
            for item in records:
                add("modes", model, mode, item)
        if b.pass_at_k_items:
            for item in records[: b.pass_at_k_items]:
                for s in range(b.pass_at_k_samples):
                    add(
                        "pass_at_k",
                        model,
                        b.pass_at_k_mode,
                        item,
                        sample=s,
                        temperature=b.pass_at_k_temperature,
                        seed=cfg.seed + s,
                    )
        if b.loo_attributes:
            for item in records[: b.loo_items]:
                for variant, dropped in loo_variants(b.loo_attributes):
                    shown = drop_attributes(item["persona"], dropped, source=f"persona {item['persona_id']}")
                    add(
                        "leave_one_out",
                        model,
                        b.loo_mode,
                        item,
                        variant=variant,
                        dropped=", ".join(dropped),
                        shown=shown,
                    )
    columns = [
        "experiment",
        "model",
        "mode",
        "variant",
        "dropped",
        "persona_id",
        "prompt_id",
        "sample",
        "temperature",
        "seed",
        "persona",
        "full_persona",
        "question",
    ]
    return pd.DataFrame(rows, columns=columns)


def _tag(row: Mapping[str, Any]) -> str:
    return f"{row['persona_id']}/{row['prompt_id']}/{row['mode']}/{row['sample']}"


def answer_requests(tasks: pd.DataFrame, cfg: RunConfig) -> list[LLMRequest]:
    """The requests of the model under test for ``tasks`` (one per row, in order)."""
    b = cfg.bench
    return [
        answer_request(
            r["mode"],
            r["persona"],
            r["question"],
            words=b.answer_words,
            max_tokens=b.max_tokens,
            temperature=float(r["temperature"]),
            seed=int(r["seed"]),
            sample_index=int(r["sample"]),
            tag=_tag(r),
        )
        for r in tasks.to_dict("records")
    ]


def critic_requests(answers: pd.DataFrame, cfg: RunConfig) -> list[LLMRequest]:
    """The critic's request for every answered row: (full persona, question, that row's answer), nothing else.

    Each sampled answer of a pass@k item gets its own request with the item's question in the question's place
    and the sample's answer in the answer's place (the official pass@k scorer put each answer where the question
    belongs and judged the last answer every time).

    Args:
        answers: rows with ``full_persona`` (or ``persona``), ``question``, ``answer`` and the tag columns
            ``persona_id``, ``prompt_id``, ``mode``, ``sample``.
        cfg: the run configuration (``bench.critic_max_tokens``, ``seed``).
    """
    persona_col = "full_persona" if "full_persona" in answers.columns else "persona"
    return [
        critic_request(
            str(r[persona_col]),
            str(r["question"]),
            str(r["answer"]),
            max_tokens=cfg.bench.critic_max_tokens,
            seed=cfg.seed,
            tag=_tag(r),
        )
        for r in answers.to_dict("records")
    ]


# -- the plan (dry run) -------------------------------------------------------------------------------------------
def placeholder_answer(cfg: BenchConfig) -> str:
    """A stand-in answer of ``answer_words`` words, for estimating the critic's input before any answer exists."""
    return " ".join(["answer"] * cfg.answer_words)


def plan_parts(tasks: pd.DataFrame, cfg: RunConfig) -> list[tuple[str, str, list[LLMRequest]]]:
    """Every request the bench would send, as ``(part, backend spec, requests)``.

    Parts: ``answers: <experiment>`` per model and ``critic: <experiment>``, ``subtlety judge`` and
    ``summary judge`` on the critic's backend. Critic and judge requests hold a placeholder answer of
    ``answer_words`` words (their real input is only known after the answers).
    """
    b = cfg.bench
    critic = critic_spec(cfg)
    answer = placeholder_answer(b)
    parts: list[tuple[str, str, list[LLMRequest]]] = []
    for experiment in EXPERIMENTS:
        sub = tasks[tasks["experiment"] == experiment]
        if sub.empty:
            continue
        for model, group in sub.groupby("model", sort=False):
            parts.append((f"answers: {experiment}", str(model), answer_requests(group, cfg)))
        parts.append(
            (
                f"critic: {experiment}",
                critic,
                [
                    critic_request(
                        r["full_persona"],
                        r["question"],
                        answer,
                        max_tokens=b.critic_max_tokens,
                        seed=cfg.seed,
                        tag=_tag(r),
                    )
                    for r in sub.to_dict("records")
                ],
            )
        )
    modes = tasks[tasks["experiment"] == "modes"]
    if b.subtlety_judge:
        judged = modes[modes["mode"].isin(SUBTLETY_MODES)]
        if len(judged):
            parts.append(
                (
                    "subtlety judge",
                    critic,
                    [
                        subtlety_request(
                            r["full_persona"],
                            r["question"],
                            answer,
                            max_tokens=b.critic_max_tokens,
                            seed=cfg.seed,
                            tag=_tag(r),
                        )
                        for r in judged.to_dict("records")
                    ],
                )
            )
    if b.summary_judge:
        summaries = modes[modes["mode"] == "persona_summary"]
        if len(summaries):
            reqs = []
            for r in summaries.to_dict("records"):
                attrs = _applicable_attributes(r["persona"])
                reqs.append(
                    summary_judge_request(
                        r["persona"],
                        answer,
                        attrs,
                        max_tokens=b.critic_max_tokens,
                        seed=cfg.seed,
                        tag=_tag(r),
                    )
                )
            parts.append(("summary judge", critic, reqs))
    return parts


def plan_requests(tasks: pd.DataFrame, cfg: RunConfig) -> dict[str, list[LLMRequest]]:
    """The bench's plan by backend spec (what the stage's ``plan`` returns for the dry run)."""
    out: dict[str, list[LLMRequest]] = {}
    for _, spec, reqs in plan_parts(tasks, cfg):
        out.setdefault(spec, []).extend(reqs)
    return out


def plan_table(tasks: pd.DataFrame, cfg: RunConfig) -> pd.DataFrame:
    """The plan priced per part and backend: calls, input tokens, output-token upper bound, USD.

    Prices follow ``llm.prices`` and ``llm.batch`` (provider batch APIs bill half), as the dry run does.
    """
    from persona_lab.llm import estimate_cost

    rows = []
    for part, spec, reqs in plan_parts(tasks, cfg):
        est = estimate_cost(reqs, spec, prices=cfg.llm.prices, batch=cfg.llm.batch)
        rows.append(
            {
                "part": part,
                "backend": spec,
                "calls": est.calls,
                "input_tokens": est.input_tokens,
                "max_output_tokens": est.output_tokens,
                "usd": est.usd if est.priced else np.nan,
            }
        )
    return pd.DataFrame(
        rows, columns=["part", "backend", "calls", "input_tokens", "max_output_tokens", "usd"]
    )


def _applicable_attributes(persona: str) -> list[str]:
    from persona_lab.personas import parse_persona

    return [k for k, v in parse_persona(persona, source="persona").attributes().items() if applicable(v)]


# -- the run -------------------------------------------------------------------------------------------------------
@dataclass
class BenchResult:
    """What :func:`run_bench` returns.

    Attributes:
        table: ``bench.parquet``'s rows (:data:`BENCH_COLUMNS`).
        summaries: the persona-summary coverage (one row per summary and applicable attribute; see
            ``summary_attributes``).
        items: the (persona, prompt) items.
        calls: requests sent per part (before the cache: replayed answers count too).
    """

    table: pd.DataFrame
    summaries: pd.DataFrame
    items: pd.DataFrame
    calls: dict[str, int] = field(default_factory=dict)


def _kind(failure: str) -> str:
    return failure.split(":", 1)[0].strip()


def _send(send: Send, requests: list[LLMRequest], spec: str, desc: str) -> list[Result]:
    if not requests:
        return []
    results = send(requests, spec, desc)
    if len(results) != len(requests):
        raise PersonaLabError(f"{desc}: {len(results)} results for {len(requests)} requests")
    return results


def run_bench(personas: pd.DataFrame, prompts: pd.DataFrame, cfg: RunConfig, send: Send) -> BenchResult:
    """Run the whole bench: answers, critic, judges; return the table.

    Args:
        personas: the personas table (``persona_id``, ``text``, ``split``, attribute columns).
        prompts: the prompts table (``prompt_id``, ``text``, ``kept``, ``split``).
        cfg: the run configuration (``bench``, ``seed``, ``llm.backend``, ``llm.temperature``).
        send: sends requests to a backend (see :data:`Send`).

    Raises:
        PersonaLabError: a bad configuration (before any call).
    """
    b = cfg.bench
    check_config(cfg)
    check_personas(cfg, bench_personas(personas, b, limit=False))
    pool = bench_personas(personas, b)
    items = select_items(pool, bench_prompts(prompts, b), b.n_samples, cfg.seed)
    tasks = bench_tasks(items, cfg)
    calls: dict[str, int] = {}

    # 1. the models under test
    answers: list[Any] = [None] * len(tasks)
    for model, group in tasks.groupby("model", sort=False):
        reqs = answer_requests(group, cfg)
        calls[f"answers {model}"] = len(reqs)
        for pos, res in zip(
            group.index, _send(send, reqs, str(model), f"bench answers ({model})"), strict=True
        ):
            answers[pos] = res
    parsed = [
        parse_answer(res, m, q) for res, m, q in zip(answers, tasks["mode"], tasks["question"], strict=True)
    ]
    table = tasks.drop(columns=["seed"]).copy()
    table["answer"] = pd.Series([p.answer for p in parsed], index=table.index, dtype=object)
    table["reasoning"] = [p.aside for p in parsed]
    table["answer_failure"] = [p.failure for p in parsed]
    table["raw_answer"] = [p.raw if p.failure else "" for p in parsed]

    # 2. the critic, on the answer only, against the full persona
    critic = critic_spec(cfg)
    ok = [i for i, p in enumerate(parsed) if p.ok]
    reqs = critic_requests(table.loc[ok], cfg)
    calls["critic"] = len(reqs)
    verdicts = {
        i: parse_verdict(res, answer=parsed[i].answer or "", question=table.at[i, "question"])
        for i, res in zip(ok, _send(send, reqs, critic, "bench critic"), strict=True)
    }
    table["critic"] = critic
    table["needs_revision"] = pd.array(
        [verdicts[i].value if i in verdicts else None for i in range(len(table))], dtype="boolean"
    )
    table["critic_rationale"] = [verdicts[i].rationale if i in verdicts else "" for i in range(len(table))]
    table["critic_failure"] = [verdicts[i].failure if i in verdicts else "" for i in range(len(table))]
    table["score"] = [score_answer(table.at[i, "answer_failure"], verdicts.get(i)) for i in range(len(table))]
    table["failure"] = [
        a or (f"critic: {c}" if c else "")
        for a, c in zip(table["answer_failure"], table["critic_failure"], strict=True)
    ]

    # 3. the subtlety judge on chain-of-thought and direct answers
    table["on_the_nose"] = pd.array([None] * len(table), dtype="boolean")
    table["subtlety_rationale"] = ""
    table["subtlety_failure"] = ""
    if b.subtlety_judge:
        judged = [
            i for i in ok if table.at[i, "experiment"] == "modes" and table.at[i, "mode"] in SUBTLETY_MODES
        ]
        reqs = [
            subtlety_request(
                table.at[i, "full_persona"],
                table.at[i, "question"],
                parsed[i].answer or "",
                max_tokens=b.critic_max_tokens,
                seed=cfg.seed,
                tag=_tag(table.loc[i]),
            )
            for i in judged
        ]
        calls["subtlety judge"] = len(reqs)
        for i, res in zip(judged, _send(send, reqs, critic, "bench subtlety judge"), strict=True):
            v = parse_subtlety(res, answer=parsed[i].answer or "", question=table.at[i, "question"])
            table.at[i, "on_the_nose"] = v.value
            table.at[i, "subtlety_rationale"] = v.rationale
            table.at[i, "subtlety_failure"] = v.failure

    # 4. the persona summaries: the matcher, and optionally the judge
    summary_rows = table[
        (table["experiment"] == "modes")
        & (table["mode"] == "persona_summary")
        & (table["answer_failure"] == "")
    ]
    judged_attrs: dict[int, list[str]] | None = None
    judge_failures: dict[int, str] = {}
    if b.summary_judge and len(summary_rows):
        judged_attrs = {}
        attrs = {i: _applicable_attributes(table.at[i, "persona"]) for i in summary_rows.index}
        reqs = [
            summary_judge_request(
                table.at[i, "persona"],
                table.at[i, "reasoning"],
                attrs[i],
                max_tokens=b.critic_max_tokens,
                seed=cfg.seed,
                tag=_tag(table.loc[i]),
            )
            for i in summary_rows.index
        ]
        calls["summary judge"] = len(reqs)
        for i, res in zip(summary_rows.index, _send(send, reqs, critic, "bench summary judge"), strict=True):
            names, failure = parse_summary_judgement(res, attrs[i])
            if names is None:
                judge_failures[i] = failure
            else:
                judged_attrs[i] = names
    summaries = summary_attributes(summary_rows, judged_attrs)
    if judge_failures:
        failed = pd.DataFrame(
            [
                {
                    "model": table.at[i, "model"],
                    "persona_id": table.at[i, "persona_id"],
                    "prompt_id": table.at[i, "prompt_id"],
                    "judge_failure": f,
                }
                for i, f in judge_failures.items()
            ]
        )
        summaries = summaries.merge(failed, on=["model", "persona_id", "prompt_id"], how="left")
    if "judge_failure" not in summaries.columns:
        summaries["judge_failure"] = ""
    summaries["judge_failure"] = summaries["judge_failure"].fillna("")

    table = table.drop(columns=["full_persona"])[list(BENCH_COLUMNS)]
    return BenchResult(table=table.reset_index(drop=True), summaries=summaries, items=items, calls=calls)


def score_answer(answer_failure: str, verdict: Any) -> float:
    """The score of one answer: 1.0 when the critic finds no revision needed, 0.0 when it needs revision or when
    the model's own answer failed (:data:`MODEL_FAILURE_KINDS`: degenerate, unparseable, refusal), NaN
    (unscored) when the call failed for another reason or the critic gave no usable verdict.

    Args:
        answer_failure: ``""`` or the answer's failure (``"<kind>: <reason>"``).
        verdict: the critic's :class:`~persona_lab.bench.Verdict` (``None`` when the critic was not asked).
    """
    if answer_failure:
        return 0.0 if _kind(answer_failure) in MODEL_FAILURE_KINDS else float("nan")
    if verdict is None or verdict.value is None:
        return float("nan")
    return 0.0 if verdict.value else 1.0


def empty_bench_table() -> pd.DataFrame:
    """A bench table with no rows (the stage's preview)."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in BENCH_COLUMNS})
