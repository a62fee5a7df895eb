"""A run directory for the agreement tests: real personas (the released PERSONA sample) and real PRISM prompts
from ../shared/data, and a feedback table written here, in the columns the feedback stage writes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from persona_lab.config import load_config, to_toml
from persona_lab.io import write_table, write_text
from persona_lab.personas import read_personas, table_from_personas
from persona_lab.prompts import load_prompts

ORIGINAL = (
    "There are good arguments on several sides. Some people weigh tradition and stability most, others "
    "fairness and change; it helps to look at the evidence, talk with people you trust and decide what fits "
    "your own values."
)
"""The original answer of every test pair (an answer written without a persona)."""


def revision_for(persona_id: str, prompt_id: str) -> str:
    return f"In short: do what fits your own life ({persona_id} / {prompt_id})."


def make_run(
    root: Path,
    shared: Path,
    *,
    n_personas: int = 4,
    n_prompts: int = 6,
    agreement: dict | None = None,
    failed: tuple[tuple[int, int], ...] = (),
) -> Path:
    """Write ``root/run`` with config.toml, personas, prompts and feedback (every persona x every prompt; the
    (persona index, prompt index) pairs in ``failed`` carry a failure) and return it."""
    run = root / "run"
    personas = table_from_personas(
        read_personas(shared / "persona" / "personas_sample100.json")[:n_personas], 0
    )
    prism = load_prompts(shared / "prism" / "prism_opening_prompts.json")
    prism = prism[prism["text"].str.contains("?", regex=False) & (prism["text"].str.split().str.len() >= 8)]
    prompts = prism.head(n_prompts).assign(kept=True, split="train", topic=0).reset_index(drop=True)
    rows = []
    for i, pid in enumerate(personas["persona_id"]):
        for j, qid in enumerate(prompts["prompt_id"]):
            bad = (i, j) in failed
            revision = None if bad else revision_for(pid, qid)
            rows.append(
                {
                    "persona_id": pid,
                    "prompt_id": qid,
                    "split": "train",
                    "prompt": prompts.loc[j, "text"],
                    "original": ORIGINAL,
                    "revision": revision,
                    "chosen": revision,
                    "rejected": None if bad else ORIGINAL,
                    "failure": "identical: the revision repeats the original" if bad else "",
                }
            )
    cfg = load_config("tiny", name="run", runs_dir=root)
    if agreement:
        cfg = cfg.model_copy(update={"agreement": cfg.agreement.model_copy(update=agreement)})
    write_text(run / "config.toml", to_toml(cfg))
    write_table(personas, run / "personas.parquet", table="personas")
    write_table(prompts, run / "prompts.parquet", table="prompts")
    write_table(pd.DataFrame(rows), run / "feedback.parquet", table="feedback")
    return run
