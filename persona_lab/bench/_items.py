"""What a bench run evaluates: the models and the critic it calls, the checks of its configuration before any
call, and the (persona, prompt) items it draws (PERSONA Sec. 5)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from persona_lab.bench._groups import check_attribute_names, check_attributes_present, check_intersections
from persona_lab.bench._modes import MODE_NAMES, get_mode
from persona_lab.config import BenchConfig, RunConfig
from persona_lab.errors import PersonaLabError
from persona_lab.llm import parse_spec

OPEN_ENDED_ATTRIBUTES: tuple[str, ...] = (
    "detailed job description",
    "defining quirks",
    "mannerisms",
    "personal time",
    "lifestyle",
    "ideology",
    "political views",
)
"""Attributes an LLM writes in the personas stage: their values are unknown before the stage has run."""


def bench_models(cfg: RunConfig) -> list[str]:
    """The backend specs of the models under test (``bench.models``, default ``[llm.backend]``)."""
    return list(dict.fromkeys(cfg.bench.models)) or [cfg.llm.backend]


def critic_spec(cfg: RunConfig) -> str:
    """The critic's backend spec (``bench.critic``, default ``llm.backend``)."""
    return cfg.bench.critic or cfg.llm.backend


def check_config(cfg: RunConfig) -> None:
    """Refuse a bench configuration that cannot run, before any call (each error one line naming the setting).

    Checks the modes, the pass@k sizes, the backend specs and the attribute names; the values of intersections
    and the presence of leave-one-out attributes need the personas (:func:`check_personas`).
    """
    b: BenchConfig = cfg.bench
    if not b.modes:
        raise PersonaLabError(f"bench.modes is empty; choose among {', '.join(MODE_NAMES)}")
    for mode in b.modes:
        get_mode(mode, setting="bench.modes")
    if b.pass_at_k_items:
        get_mode(b.pass_at_k_mode, setting="bench.pass_at_k_mode")
        if b.max_k > b.pass_at_k_samples:
            raise PersonaLabError(
                f"bench.max_k = {b.max_k} is larger than bench.pass_at_k_samples = {b.pass_at_k_samples} samples "
                "per item; lower max_k or sample more answers per item"
            )
        if b.pass_at_k_samples > 1 and b.pass_at_k_temperature == 0:
            raise PersonaLabError(
                f"bench.pass_at_k_temperature = 0 with {b.pass_at_k_samples} samples per item: greedy decoding "
                "repeats one answer; set a temperature above 0 (the paper samples)"
            )
    if b.loo_attributes:
        get_mode(b.loo_mode, setting="bench.loo_mode")
        check_attribute_names(b.loo_attributes, "bench.loo_attributes")
    for name, where in b.intersections.items():
        if not where:
            raise PersonaLabError(
                f"bench.intersections.{name}: no condition; give an attribute and its values"
            )
        check_attribute_names(where, f"bench.intersections.{name}")
    for spec in [*b.models, *([b.critic] if b.critic else [])]:
        parse_spec(spec)


def check_personas(cfg: RunConfig, personas: pd.DataFrame, *, enriched: bool = True) -> None:
    """Refuse leave-one-out attributes or intersections the personas cannot satisfy.

    Args:
        cfg: the run configuration.
        personas: the personas the bench draws from (the split of :func:`bench_personas`).
        enriched: whether the open-ended attributes are filled; before the personas stage has run they are not,
            and only their names are checked.
    """
    b = cfg.bench
    skip = () if enriched else OPEN_ENDED_ATTRIBUTES
    loo = [a for a in b.loo_attributes if a not in skip]
    if loo:
        check_attributes_present(personas, loo, "bench.loo_attributes")
    check_intersections(personas, b.intersections, skip_values=skip)


# -- items and tasks ----------------------------------------------------------------------------------------------
def bench_personas(personas: pd.DataFrame, cfg: BenchConfig, *, limit: bool = True) -> pd.DataFrame:
    """The personas the bench draws from: the configured split, the first ``n_personas`` in table order
    (all of the split with ``limit=False``: the personas intersections and leave-one-out are checked against)."""
    for col in ("persona_id", "text"):
        if col not in personas.columns:
            raise PersonaLabError(f"personas table lacks column {col!r}; run the personas stage first")
    df = personas
    if cfg.persona_split != "all":
        if "split" not in df.columns:
            raise PersonaLabError(
                f"bench.persona_split = {cfg.persona_split!r} but the personas table has no 'split' column; "
                "set bench.persona_split = 'all'"
            )
        df = df[df["split"] == cfg.persona_split]
    df = df[df["text"].fillna("").astype(str).str.strip() != ""]
    if limit and cfg.n_personas is not None:
        df = df.head(cfg.n_personas)
    if df.empty:
        raise PersonaLabError(
            f"no persona in split {cfg.persona_split!r} of the personas table; set bench.persona_split = 'all'"
        )
    return df.reset_index(drop=True)


def bench_prompts(prompts: pd.DataFrame, cfg: BenchConfig) -> pd.DataFrame:
    """The prompts the bench draws from: kept prompts of the configured split, the first ``n_prompts``."""
    for col in ("prompt_id", "text"):
        if col not in prompts.columns:
            raise PersonaLabError(f"prompts table lacks column {col!r}; run the prompts stage first")
    df = prompts[prompts["kept"].fillna(False).astype(bool)] if "kept" in prompts.columns else prompts
    if cfg.prompt_split != "all":
        if "split" not in df.columns:
            raise PersonaLabError(
                f"bench.prompt_split = {cfg.prompt_split!r} but the prompts table has no 'split' column; "
                "set bench.prompt_split = 'all'"
            )
        df = df[df["split"] == cfg.prompt_split]
    if cfg.n_prompts is not None:
        df = df.head(cfg.n_prompts)
    if df.empty:
        raise PersonaLabError(
            f"no kept prompt in split {cfg.prompt_split!r} of the prompts table; set bench.prompt_split = 'all' "
            "or check the prompts stage's funnel"
        )
    return df.reset_index(drop=True)


def select_items(personas: pd.DataFrame, prompts: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` distinct (persona, prompt) pairs drawn at random (seeded), or all pairs shuffled when fewer.

    Returns:
        Columns ``item`` (0..), ``persona_id``, ``prompt_id``, ``persona`` (PERSONA text), ``question``.
    """
    n_pairs = len(personas) * len(prompts)
    rng = np.random.default_rng([seed, 5])
    flat = rng.permutation(n_pairs) if n >= n_pairs else rng.choice(n_pairs, size=n, replace=False)
    p_idx, q_idx = np.divmod(flat, len(prompts))
    return pd.DataFrame(
        {
            "item": np.arange(len(flat)),
            "persona_id": personas["persona_id"].astype(str).to_numpy()[p_idx],
            "prompt_id": prompts["prompt_id"].astype(str).to_numpy()[q_idx],
            "persona": personas["text"].astype(str).to_numpy()[p_idx],
            "question": prompts["text"].astype(str).to_numpy()[q_idx],
        }
    )
