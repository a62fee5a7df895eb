"""Critique and revise the unwanted turn with Direct Principle Feedback; keep the revisions that avoid the Pink
Elephant.

Suppressing Pink Elephants (Castricato et al. 2024, arXiv 2402.07896, Sec. 3): the last assistant turn of each cut
dialogue (the unwanted turn) is critiqued under the principle "do not mention or imply the Pink Elephant; steer to
the Grey Elephant" and revised; revisions that still mention or imply it are dropped. The critique and revision
are the DPF engine's (``persona_lab.dpf``, principle ``pink_elephant``). Each cut dialogue is one row of the dpf
table with ``dropped_at`` (``None`` when kept):

* ``dpf_failure``: the engine made no revision, or one it rejects (a failed or unparseable call, a degenerate
  critique or revision, a revision identical to the original); its ``failure`` and raw texts are kept.
* ``still_mentions``: the revision names the Pink Elephant or an alias (:func:`~persona_lab.elephants.mentions`,
  or the engine's own check of the principle's forbidden value).
* ``still_implies``: the LLM judge says the revision still mentions or refers to it (with ``judge`` on).

``revised`` counts the rows with a revision that is not ``dpf_failure``; ``kept`` the rows left at the end.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from persona_lab.elephants._common import (
    Runner,
    judge_request,
    judge_verdict,
    placeholder,
    send,
    to_messages,
    with_none,
)
from persona_lab.elephants._mentions import mentions

PRINCIPLE = "pink_elephant"
"""The DPF principle of Pink Elephants."""

DPF_COLUMNS = [
    "dialogue_id",
    "pair_id",
    "domain",
    "grey",
    "pink",
    "pink_aliases",
    "split",
    "context",
    "original",
    "critique",
    "revision",
    "chosen",
    "rejected",
    "revised",
    "judge_implies",
    "kept",
    "dropped_at",
    "failure",
    "critique_raw",
    "revision_raw",
    "provenance",
]


def dpf_items(dialogues: pd.DataFrame) -> list[Any]:
    """One ``persona_lab.dpf.DPFItem`` per kept (cut) dialogue: its context, its unwanted turn and the entities."""
    from persona_lab.dpf import DPFItem

    kept = dialogues[dialogues["kept"].astype(bool)]
    return [
        DPFItem(
            id=row.dialogue_id,
            context=to_messages(row.context),
            original=row.unwanted,
            variables={"pink": row.pink, "grey": row.grey},
        )
        for row in kept.itertuples(index=False)
    ]


def planned_dpf_requests(
    pairs: pd.DataFrame, *, plans_per_pair: int, exchanges: int, turn_max_tokens: int, **dpf: Any
) -> list[Any]:
    """The DPF requests of the dry run: every planned dialogue cut at its last exchange, with placeholder turns
    of ``turn_max_tokens`` (an upper bound: the cut drops some dialogues and cuts others earlier)."""
    from persona_lab.dpf import DPFItem, dpf_requests, load_principle

    turn = placeholder(turn_max_tokens)
    context = []
    for _ in range(exchanges - 1):
        context += [{"role": "user", "content": turn}, {"role": "assistant", "content": turn}]
    context.append({"role": "user", "content": turn})
    items = [
        DPFItem(
            id=f"{pair.pair_id}/dialogue{k:02d}",
            context=to_messages(context),
            original=turn,
            variables={"pink": pair.pink, "grey": pair.grey},
        )
        for pair in pairs.itertuples(index=False)
        for k in range(plans_per_pair)
    ]
    return dpf_requests(items, load_principle(PRINCIPLE), **dpf) if items else []


def revise_dialogues(
    dialogues: pd.DataFrame,
    run: Runner,
    *,
    judge: bool = True,
    judge_run: Runner | None = None,
    single_call: bool = False,
    max_tokens: int | None = None,
    temperature: float = 0.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Critique and revise the unwanted turn of every kept dialogue, then filter the revisions (module docstring).

    Args:
        dialogues: the cut dialogues (``cut_dialogues``).
        run: the runner of the critique and revision calls.
        judge: ask the LLM judge whether each revision that passes the string match still implies the entity.
        judge_run: the runner of the judge calls (default ``run``).
        single_call: the DPF ablation with one call per item.
        max_tokens: output budget of critiques and revisions (``None``: the principle's).
        temperature: sampling temperature of the DPF calls.
        seed: their seed.

    Returns:
        The dpf table (:data:`DPF_COLUMNS`), one row per kept dialogue.
    """
    from persona_lab.dpf import critique_and_revise, load_principle

    kept = dialogues[dialogues["kept"].astype(bool)].reset_index(drop=True)
    items = dpf_items(kept)
    results = (
        critique_and_revise(
            items,
            load_principle(PRINCIPLE),
            run,
            single_call=single_call,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            desc="elephants:",
        )
        if items
        else []
    )
    rows = []
    for dialogue, result in zip(kept.to_dict("records"), results, strict=True):
        aliases = list(dialogue["pink_aliases"])
        row = {c: dialogue.get(c) for c in DPF_COLUMNS}
        row.update(
            original=dialogue["unwanted"],
            critique=result.critique,
            revision=result.revision,
            chosen=None,
            rejected=None,
            failure=result.failure,
            critique_raw=result.critique_raw,
            revision_raw=result.revision_raw,
            provenance=json.dumps(result.provenance, default=str),
            judge_implies=None,
            dropped_at=None,
        )
        forbidden = result.failure.startswith("forbidden")
        row["revised"] = result.revision is not None and (result.ok or forbidden)
        if not row["revised"]:
            row["dropped_at"] = "dpf_failure"
        elif forbidden or mentions(result.revision, dialogue["pink"], aliases):
            row["dropped_at"] = "still_mentions"
            row["failure"] = result.failure or f"the revision still mentions {dialogue['pink']!r}"
        rows.append(row)
    out = with_none(pd.DataFrame(rows, columns=DPF_COLUMNS))
    if judge and len(out):
        live = out.index[out["dropped_at"].isna()]
        requests = [
            judge_request(
                out.at[i, "revision"], out.at[i, "pink"], list(out.at[i, "pink_aliases"]), tag=str(i)
            )
            for i in live
        ]
        verdicts = send(judge_run or run, requests, "elephants: judge revisions")
        for i, verdict in zip(live, verdicts, strict=True):
            # a failed judge call leaves judge_implies None: the revision stays, as the string match found nothing
            implies, _ = judge_verdict(verdict)
            out.at[i, "judge_implies"] = implies
            if implies:
                out.at[i, "dropped_at"] = "still_implies"
                out.at[i, "failure"] = f"the judge says the revision still refers to {out.at[i, 'pink']!r}"
    out["kept"] = out["dropped_at"].isna() if len(out) else pd.Series(dtype=bool)
    keep = out["kept"].astype(bool)
    out["chosen"] = out["revision"].where(keep, None)
    out["rejected"] = out["original"].where(keep, None)
    return out
