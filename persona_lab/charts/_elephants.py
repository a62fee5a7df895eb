"""Pink Elephants (Castricato et al. 2024, arXiv 2402.07896, Sec. 4): mention rates without and with the avoid
instruction, the paper's rows beside ours, as a dot chart and as a table figure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd

CONDITION_COLORS = {"without instruction": "#e45756", "with instruction": "#4c78a8"}
PAPER_MARK = "(paper)"
TABLE_WIDTH = 900
COLUMN_X = (0, 130, 560, 740)
"""Left edges of the table figure's columns (source, model and judge, the two rates), in pixels."""


def _label(row: dict) -> str:
    paper = row["source"] != "ours"
    return f"{row['model']} · {row['judge']}" + (f" {PAPER_MARK}" if paper else "")


def _long(results: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in results.to_dict("records"):
        for condition, key in (("without instruction", "without"), ("with instruction", "with")):
            rate = r[f"rate_{key}"]
            n = r[f"n_{key}"]
            missing = rate is None or (isinstance(rate, float) and math.isnan(rate))
            rows.append(
                {
                    "row": _label(r),
                    "source": "paper (as reported)" if r["source"] != "ours" else "ours",
                    "condition": condition,
                    "rate": None if missing else float(rate),
                    "lo": None if missing or pd.isna(r[f"lo_{key}"]) else float(r[f"lo_{key}"]),
                    "hi": None if missing or pd.isna(r[f"hi_{key}"]) else float(r[f"hi_{key}"]),
                    "n": "" if n is None or pd.isna(n) else str(int(n)),
                    "note": "no judged reply" if missing else "",
                }
            )
    return pd.DataFrame(rows)


def _subtitle(lines: str | Sequence[str]) -> list[str]:
    return [lines] if isinstance(lines, str) else list(lines)


def elephants_mention_rates_chart(
    results: pd.DataFrame, *, subtitle: str | Sequence[str] = ""
) -> alt.TopLevelMixin:
    """Mention rate of the Pink Elephant per model (and judge), without and with the avoid instruction.

    Dots are the rates (red without, blue with the instruction), coloured bars their 95 % Wilson intervals (ours
    only: the paper reports none), a grey line joins a row's two conditions; rows marked "(paper)" are the paper's reported numbers (diamonds). A row of ours with no
    judged reply says so instead of a dot.

    Args:
        results: the results table (``persona_lab.elephants.results_table``).
        subtitle: one line or several (e.g. which model ran and what the funnel kept).
    """
    df = _long(results)
    order = list(dict.fromkeys(df["row"]))
    y = alt.Y("row:N", sort=order, title=None, axis=alt.Axis(labelLimit=360))
    x_scale = alt.Scale(domain=[0, 1])
    color = alt.Color(
        "condition:N",
        scale=alt.Scale(domain=list(CONDITION_COLORS), range=list(CONDITION_COLORS.values())),
        legend=alt.Legend(title=None, orient="bottom"),
    )
    shape = alt.Shape(
        "source:N",
        scale=alt.Scale(domain=["ours", "paper (as reported)"], range=["circle", "diamond"]),
        legend=alt.Legend(title=None, orient="bottom"),
    )
    rated = df[df["rate"].notna()]
    wide = rated.pivot_table(index="row", columns="condition", values="rate", aggfunc="first").reset_index()
    layers: list[alt.Chart] = []
    if {"without instruction", "with instruction"} <= set(wide.columns):
        wide = wide.rename(columns={"without instruction": "without", "with instruction": "with"})
        layers.append(
            alt.Chart(wide).mark_rule(color="#bbbbbb", strokeWidth=2).encode(y=y, x="without:Q", x2="with:Q")
        )
    intervals = rated[rated["lo"].notna()]
    if len(intervals):
        layers.append(
            alt.Chart(intervals)
            .mark_rule(strokeWidth=1.5, opacity=0.8)
            .encode(y=y, x=alt.X("lo:Q", scale=x_scale), x2="hi:Q", color=color)
        )
    tooltip = [
        alt.Tooltip("row:N", title="model · judge"),
        alt.Tooltip("condition:N"),
        alt.Tooltip("rate:Q", format=".2f"),
        alt.Tooltip("lo:Q", format=".2f", title="95% low"),
        alt.Tooltip("hi:Q", format=".2f", title="95% high"),
        alt.Tooltip("n:N", title="judged replies"),
    ]
    base = rated if len(rated) else df.head(0)
    layers.append(
        alt.Chart(base)
        .mark_point(size=90, filled=True, opacity=0.95)
        .encode(
            y=y,
            x=alt.X("rate:Q", scale=x_scale, title="mention rate of the Pink Elephant (lower is better)"),
            color=color,
            shape=shape,
            tooltip=tooltip,
        )
    )
    empty = df[df["rate"].isna()].drop_duplicates("row")
    if len(empty):
        layers.append(
            alt.Chart(empty.assign(x=0.01))
            .mark_text(align="left", fontStyle="italic", color="#666666")
            .encode(y=y, x=alt.X("x:Q", scale=x_scale), text="note:N")
        )
    return alt.layer(*layers).properties(
        width=460,
        height=alt.Step(30),
        title=alt.TitleParams(
            "Pink Elephants: mention rate without and with the avoid instruction",
            subtitle=_subtitle(subtitle),
            anchor="start",
        ),
    )


def _fmt(rate: Any, lo: Any, hi: Any, n: Any) -> str:
    if rate is None or pd.isna(rate):
        return "n/a"
    text = f"{float(rate):.2f}"
    if lo is not None and not pd.isna(lo):
        text += f" [{float(lo):.2f}, {float(hi):.2f}]"
    if n is not None and not pd.isna(n):
        text += f"  n={int(n)}"
    return text


def elephants_results_table_chart(
    results: pd.DataFrame, *, subtitle: str | Sequence[str] = ""
) -> alt.VConcatChart:
    """The results table as a figure: one line per (source, model, judge), the two rates with intervals."""
    rows = []
    for i, r in enumerate(results.to_dict("records")):
        cells = {
            "source": "paper (as reported)" if r["source"] != "ours" else "ours",
            "model · judge": f"{r['model']} · {r['judge']}",
            "without instruction": _fmt(r["rate_without"], r["lo_without"], r["hi_without"], r["n_without"]),
            "with instruction": _fmt(r["rate_with"], r["lo_with"], r["hi_with"], r["n_with"]),
        }
        for j, (column, text) in enumerate(cells.items()):
            rows.append(
                {"line": i, "column": column, "order": j, "text": text, "paper": r["source"] != "ours"}
            )
    df = pd.DataFrame(rows)
    columns = ["source", "model · judge", "without instruction", "with instruction"]
    x_at = dict(zip(columns, COLUMN_X, strict=True))
    df["x"] = df["column"].map(x_at)
    x = alt.X("x:Q", scale=alt.Scale(domain=[0, TABLE_WIDTH]), axis=None)
    header = (
        alt.Chart(pd.DataFrame({"column": columns, "x": COLUMN_X}))
        .mark_text(fontWeight="bold", align="left")
        .encode(x=x, text="column:N")
        .properties(width=TABLE_WIDTH, height=20)
    )
    body = (
        alt.Chart(df)
        .mark_text(align="left")
        .encode(
            x=x,
            y=alt.Y("line:O", axis=None),
            text="text:N",
            color=alt.condition("datum.paper", alt.value("#777777"), alt.value("#111111")),
        )
        .properties(width=TABLE_WIDTH, height=alt.Step(20))
    )
    return alt.vconcat(header, body, spacing=2).properties(
        title=alt.TitleParams(
            "Pink Elephants: mention rate of the Pink Elephant (lower is better), 95% Wilson intervals",
            subtitle=_subtitle(subtitle),
            anchor="start",
        )
    )
