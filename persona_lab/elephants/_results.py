"""The results table: the paper's mention rates beside ours.

Suppressing Pink Elephants (Castricato et al. 2024, arXiv 2402.07896, Sec. 4, as reported) gives, for the rate at
which the final reply mentions the Pink Elephant (lower is better), without -> with the avoid instruction:
OpenHermes-7B 0.33 -> 0.36, OpenHermes-13B 0.34 -> 0.34, Llama-2-13B-Chat 0.33 -> 0.25, GPT-4 0.33 -> 0.13 (GPT-4
judges). Our rows give each evaluated model twice, once per judge (string matcher, LLM judge), with 95 % Wilson
intervals and the number of judged replies; the paper's rows have no interval or count, as none is reported.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

PAPER_SOURCE = "Castricato et al. 2024 (paper)"
OURS = "ours"

PAPER_RATES: tuple[tuple[str, float, float], ...] = (
    ("OpenHermes-7B", 0.33, 0.36),
    ("OpenHermes-13B", 0.34, 0.34),
    ("Llama-2-13B-Chat", 0.33, 0.25),
    ("GPT-4", 0.33, 0.13),
)
"""(model, mention rate without the instruction, with it), as the paper reports them (GPT-4 as judge)."""

RESULT_COLUMNS = [
    "source",
    "model",
    "judge",
    "n_without",
    "rate_without",
    "lo_without",
    "hi_without",
    "n_with",
    "rate_with",
    "lo_with",
    "hi_with",
]

JUDGE_LABELS = {"string": "string match", "llm": "LLM judge"}


def paper_results() -> pd.DataFrame:
    """The paper's rows in the results-table layout (no counts, no intervals)."""
    rows = [
        {
            "source": PAPER_SOURCE,
            "model": model,
            "judge": "GPT-4",
            "n_without": None,
            "rate_without": without,
            "lo_without": math.nan,
            "hi_without": math.nan,
            "n_with": None,
            "rate_with": with_,
            "lo_with": math.nan,
            "hi_with": math.nan,
        }
        for model, without, with_ in PAPER_RATES
    ]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def results_table(rates: pd.DataFrame, judge_model: str = "") -> pd.DataFrame:
    """The paper's rows, then ours: one row per (model, judge) of ``mention_rates``.

    Args:
        rates: the output of ``mention_rates``.
        judge_model: the LLM judge's backend, shown as ``LLM judge (<spec>)``.
    """
    rows = []
    for (model, judge), cell in rates.groupby(["model", "judge"], sort=False):
        by = cell.set_index("condition")
        label = JUDGE_LABELS.get(str(judge), str(judge))
        if judge == "llm" and judge_model:
            label = f"{label} ({judge_model})"
        row = {"source": OURS, "model": model, "judge": label}
        for condition in ("without", "with"):
            c = by.loc[condition]
            row |= {
                f"n_{condition}": int(c["n"]),
                f"rate_{condition}": c["rate"],
                f"lo_{condition}": c["lo"],
                f"hi_{condition}": c["hi"],
            }
        rows.append(row)
    ours = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    paper = paper_results()
    return pd.concat([paper, ours], ignore_index=True) if len(ours) else paper


def _cell(rate: float, lo: float, hi: float, n: Any) -> str:
    if rate is None or (isinstance(rate, float) and math.isnan(rate)):
        return "n/a (0 replies)" if n == 0 else "n/a"
    text = f"{rate:.2f}"
    if not math.isnan(lo):
        text += f" [{lo:.2f}, {hi:.2f}]"
    if n is not None and not (isinstance(n, float) and math.isnan(n)):
        text += f" (n={int(n)})"
    return text


def results_markdown(results: pd.DataFrame, note: str = "") -> str:
    """The results table as a markdown document (rates with 95 % Wilson intervals and counts where we have them).

    Args:
        results: the output of :func:`results_table`.
        note: a paragraph printed under the table (e.g. which model ran and what the funnel kept).
    """
    lines = [
        "# Pink Elephants: mention rate of the Pink Elephant (lower is better)",
        "",
        "| source | model | judge | without instruction | with instruction |",
        "|---|---|---|---|---|",
    ]
    for r in results.to_dict("records"):
        lines.append(
            f"| {r['source']} | {r['model']} | {r['judge']} | "
            f"{_cell(r['rate_without'], r['lo_without'], r['hi_without'], r['n_without'])} | "
            f"{_cell(r['rate_with'], r['lo_with'], r['hi_with'], r['n_with'])} |"
        )
    lines += [
        "",
        f"Rows marked *{PAPER_SOURCE}* are the paper's reported rates (GPT-4 as judge; no counts or intervals "
        "reported). Our rates carry 95 % Wilson intervals and the number of judged replies.",
    ]
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"
