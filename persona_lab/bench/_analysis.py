"""The bench's analyses over ``bench.parquet``: accuracy per mode, pass@k, leave-one-out, intersections,
chain-of-thought subtlety, dropped summary attributes (PERSONA Sec. 5, Figs. 10-12)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from persona_lab.bench._groups import intersection_accuracy, loo_accuracy
from persona_lab.bench._modes import MODE_NAMES
from persona_lab.bench._passk import pass_at_k_curves
from persona_lab.bench._run import DIRECT_MODE
from persona_lab.bench._stats import bootstrap_mean
from persona_lab.config import BenchConfig
from persona_lab.errors import PersonaLabError


def _experiment(table: pd.DataFrame, name: str) -> pd.DataFrame:
    if "experiment" not in table.columns:
        raise PersonaLabError(
            "bench table lacks column 'experiment'; read it from a bench stage's bench.parquet"
        )
    return table[table["experiment"] == name]


def mode_accuracy(table: pd.DataFrame, cfg: BenchConfig | None = None, *, seed: int = 0) -> pd.DataFrame:
    """Fig. 10: accuracy per model x mode with bootstrap SE and interval (see ``accuracy_table``)."""
    from persona_lab.bench._stats import accuracy_table

    b = cfg or BenchConfig()
    rows = _experiment(table, "modes")
    models = list(dict.fromkeys(rows["model"]))
    return accuracy_table(
        rows,
        by=("model", "mode"),
        n_boot=b.bootstrap,
        seed=seed,
        confidence=b.confidence,
        order={"model": models, "mode": list(MODE_NAMES)},
    )


def pass_at_k_table(table: pd.DataFrame, cfg: BenchConfig | None = None, *, seed: int = 0) -> pd.DataFrame:
    """Fig. 12: pass@k for k = 1..max_k per model, unbiased and empirical, with bootstrap SE over items.

    An answer passes when its score is 1.0; a failed answer or an unscored verdict is not a pass.
    """
    b = cfg or BenchConfig()
    rows = _experiment(table, "pass_at_k")
    if rows.empty:
        return pass_at_k_curves(
            pd.DataFrame(columns=["model", "mode", "persona_id", "prompt_id", "sample", "passed"]), []
        )
    outcomes = rows.assign(passed=rows["score"].astype(float).eq(1.0))
    n = int(outcomes.groupby(["model", "persona_id", "prompt_id"]).size().min())
    ks = list(range(1, min(b.max_k, n) + 1))
    return pass_at_k_curves(outcomes, ks, n_boot=b.bootstrap, seed=seed, confidence=b.confidence)


def leave_one_out_table(
    table: pd.DataFrame, cfg: BenchConfig | None = None, *, seed: int = 0
) -> pd.DataFrame:
    """Leave-one-out accuracy per model and variant (full, baseline, without <a>), with intervals."""
    b = cfg or BenchConfig()
    rows = _experiment(table, "leave_one_out")
    attrs = list(b.loo_attributes) or [
        v.removeprefix("without ") for v in dict.fromkeys(rows["variant"]) if str(v).startswith("without ")
    ]
    return loo_accuracy(rows, attrs, by=("model",), n_boot=b.bootstrap, seed=seed, confidence=b.confidence)


def intersection_table(
    table: pd.DataFrame, personas: pd.DataFrame, cfg: BenchConfig | None = None, *, seed: int = 0
) -> pd.DataFrame:
    """Accuracy per model x mode x demographic intersection (and ``all``), with intervals."""
    b = cfg or BenchConfig()
    rows = _experiment(table, "modes")
    return intersection_accuracy(
        rows, personas, b.intersections, n_boot=b.bootstrap, seed=seed, confidence=b.confidence
    )


def cot_subtlety(
    table: pd.DataFrame,
    cfg: BenchConfig | None = None,
    *,
    seed: int = 0,
    modes: Sequence[str] = ("chain_of_thought", DIRECT_MODE),
) -> pd.DataFrame:
    """Share of answers the judge finds too on-the-nose, chain of thought vs direct (output only), per model.

    Each mode's share is computed from that mode's own rows of the ``modes`` experiment (the official comparison
    script read the chain-of-thought logs for both sides). Answers without a verdict are left out and counted.

    Returns:
        Columns ``model``, ``mode``, ``share_on_the_nose``, ``se``, ``lo``, ``hi``, ``n`` (judged answers),
        ``unjudged``, ``difference`` (this mode minus the direct mode, in the same model).
    """
    b = cfg or BenchConfig()
    rows = _experiment(table, "modes")
    out = []
    for model in dict.fromkeys(rows["model"]):
        for mode in modes:
            sub = rows[(rows["model"] == model) & (rows["mode"] == mode)]
            flags = (
                sub["on_the_nose"].astype("boolean") if "on_the_nose" in sub else pd.Series(dtype="boolean")
            )
            values = flags.astype("Float64").to_numpy(dtype=float, na_value=float("nan"))
            stats = bootstrap_mean(values, n_boot=b.bootstrap, seed=seed, confidence=b.confidence)
            out.append(
                {
                    "model": model,
                    "mode": mode,
                    "share_on_the_nose": stats["mean"],
                    "se": stats["se"],
                    "lo": stats["lo"],
                    "hi": stats["hi"],
                    "n": stats["n"],
                    "unjudged": int(len(sub) - stats["n"]),
                }
            )
    res = pd.DataFrame(out, columns=["model", "mode", "share_on_the_nose", "se", "lo", "hi", "n", "unjudged"])
    direct = res[res["mode"] == DIRECT_MODE].set_index("model")["share_on_the_nose"]
    res["difference"] = [
        s - direct.get(m, float("nan")) for m, s in zip(res["model"], res["share_on_the_nose"], strict=True)
    ]
    return res
