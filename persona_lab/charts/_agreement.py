"""PERSONA Figs. 5-9: leave-one-out kappas, and the persona x persona kappa heatmaps and histograms between
people and models (Castricato et al. 2024, Sec. 4).

Heatmaps show the upper triangle (diagonal included: the same persona) on one colour scale from -1 to 1 for
every panel, so panels compare at a glance; undefined cells are grey with their reason in the tooltip. A panel
without data is a text panel that says why (a run without human labels says so where the people's panels would
be), never an empty or substituted plot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from persona_lab.charts._demographics import PANELS, panel_categories
from persona_lab.charts._feedback import LOCAL_CAVEAT

KAPPA_SCALE = alt.Scale(domain=[-1, 1], scheme="redblue")
"""The one colour scale of every kappa heatmap."""
NO_STUDY_PAIRS = ("No study pairs: the feedback stage", "produced no usable pair.")
"""What a panel says when the run's study is empty."""
NO_HUMAN_LABELS = (
    "No human labels in this run.",
    "Collect them with notebooks/04_annotate.py",
    "or import a CSV (agreement.human_csv), then rerun",
    "persona-lab run agreement --force.",
)
"""What a people panel says when the run has no human labels."""
POLITICAL_LEAN = "Political lean"
_SAME = {True: "same persona", False: "different personas"}


def persona_groups(personas: pd.DataFrame) -> pd.DataFrame:
    """Each persona's group in every Fig. 2 panel (age band, sex, race, education, income band, marital status)
    and its political lean (``persona_lab.personas.classify_lean`` of ``political views``).

    Returns:
        ``persona_id`` and one column per panel title (``Age``, ``Sex``, ..., ``Political lean``); None where a
        persona has no value.
    """
    from persona_lab.personas import classify_lean

    out = pd.DataFrame({"persona_id": personas["persona_id"].astype(str).to_numpy()})
    for title, column, to_category, _ in PANELS:
        values = personas[column] if column in personas.columns else pd.Series([None] * len(personas))
        out[title] = panel_categories(values.reset_index(drop=True), to_category).to_numpy()
    views = (
        personas["political views"]
        if "political views" in personas.columns
        else pd.Series([None] * len(personas))
    )
    leans = [classify_lean(v) for v in views]
    out[POLITICAL_LEAN] = [None if lean == "missing" else lean for lean in leans]
    return out


def caveat_subtitle(backend: str, text: str = "") -> list[str]:
    """Subtitle lines: ``text`` plus the local-model caveat when ``backend`` is the local model."""
    lines = [text] if text else []
    if backend.split(":")[0] == "local":
        lines.append(LOCAL_CAVEAT)
    return lines


def message_panel(lines: Sequence[str], title: str, *, width: int = 220, height: int = 220) -> alt.Chart:
    """A panel that says something instead of plotting (e.g. :data:`NO_HUMAN_LABELS`)."""
    df = pd.DataFrame({"line": list(lines), "row": range(len(lines))})
    return (
        alt.Chart(df)
        .mark_text(fontSize=12, color="#444", align="center")
        .encode(y=alt.Y("row:O", axis=None), text="line:N")
        .properties(width=width, height=height, title=alt.TitleParams(title, anchor="start"))
    )


def _side(n: int) -> int:
    return int(max(180, min(420, 22 * n)))


def kappa_heatmap(
    cells: pd.DataFrame, personas: Sequence[str], title: str
) -> alt.LayerChart | alt.FacetChart:
    """One persona x persona heatmap (upper triangle) of a panel's cells (``persona_a, persona_b, kappa, low,
    high, n_items, reason``)."""
    order = [str(p) for p in personas]
    df = cells.copy()
    short = {"one class only": "one class", "no shared items": "no items"}
    df["kappa_text"] = [
        f"{k:.2f}" if np.isfinite(k) else short.get(r, "n/a")
        for k, r in zip(df["kappa"].astype(float), df["reason"], strict=True)
    ]
    df["interval"] = [
        f"[{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) and np.isfinite(hi) else "n/a"
        for lo, hi in zip(df["low"].astype(float), df["high"].astype(float), strict=True)
    ]
    df["why"] = df["reason"].replace("", "defined")
    x = alt.X(
        "persona_b:N", sort=order, scale=alt.Scale(domain=order), title=None, axis=alt.Axis(labelAngle=-60)
    )
    y = alt.Y("persona_a:N", sort=order, scale=alt.Scale(domain=order), title=None)
    tooltip = [
        alt.Tooltip("persona_a:N", title="row persona"),
        alt.Tooltip("persona_b:N", title="column persona"),
        alt.Tooltip("kappa:Q", format=".3f"),
        alt.Tooltip("interval:N", title="95% bootstrap CI"),
        alt.Tooltip("n_items:Q", title="questions"),
        alt.Tooltip("why:N", title="status"),
    ]
    base = alt.Chart(df)
    defined = (
        base.transform_filter("isValid(datum.kappa) && isFinite(datum.kappa)")
        .mark_rect()
        .encode(
            x=x, y=y, color=alt.Color("kappa:Q", scale=KAPPA_SCALE, title="Cohen's kappa"), tooltip=tooltip
        )
    )
    undefined = (
        base.transform_filter("!isValid(datum.kappa) || !isFinite(datum.kappa)")
        .mark_rect(color="#dddddd")
        .encode(x=x, y=y, tooltip=tooltip)
    )
    layers = [undefined, defined]
    if len(order) <= 12:
        layers.append(base.mark_text(fontSize=9).encode(x=x, y=y, text="kappa_text:N"))
    diag = df[df["persona_a"] == df["persona_b"]]["kappa"].astype(float)
    diag = diag[np.isfinite(diag)]
    sub = (
        f"same persona: mean kappa {diag.mean():.2f} over {len(diag)}"
        if len(diag)
        else "same persona: no kappa defined"
    )
    undefined = df.loc[~np.isfinite(df["kappa"].astype(float)), "reason"].value_counts()
    if len(undefined):
        sub += "; undefined: " + ", ".join(f"{n} {reason}" for reason, n in undefined.items())
    side = _side(len(order))
    return alt.layer(*layers).properties(
        width=side, height=side, title=alt.TitleParams(title, subtitle=sub, anchor="start")
    )


def _heatmap_or_message(
    panels: pd.DataFrame, name: str, personas: Sequence[str], message: Sequence[str]
) -> alt.TopLevelMixin:
    cells = panels[panels["panel"] == name] if len(panels) else panels
    side = _side(len(personas))
    width = max(side, 300)
    if cells is None or not len(cells):
        return message_panel(message, name, width=width, height=side)
    return kappa_heatmap(cells, personas, name)


def kappa_heatmaps_figure(
    panels: pd.DataFrame,
    names: Sequence[str],
    personas: Sequence[str],
    *,
    title: str,
    subtitle: Sequence[str] = (),
    missing: Sequence[str] = NO_HUMAN_LABELS,
    columns: int = 3,
) -> alt.ConcatChart:
    """Figs. 6 and 8: one heatmap per panel name, one shared colour scale; a panel without cells shows
    ``missing`` instead.

    Args:
        panels: ``KappaPanels.table`` (or any frame with its columns).
        names: the panels to draw, in order (e.g. every ``people vs <model>`` then ``people vs people``).
        personas: persona order of every panel.
        title: figure title.
        subtitle: subtitle lines.
        missing: what a panel without cells says (e.g. :data:`NO_HUMAN_LABELS`, :data:`NO_STUDY_PAIRS`).
        columns: panels per row.
    """
    charts: list[Any] = [_heatmap_or_message(panels, n, personas, missing) for n in names]
    if not charts:
        charts = [message_panel(["No model annotators were configured."], title)]
    return (
        alt.concat(*charts, columns=columns)
        .resolve_scale(color="shared")
        .properties(title=alt.TitleParams(title, subtitle=list(subtitle), anchor="start"))
    )


def kappa_histogram(cells: pd.DataFrame, title: str) -> alt.Chart:
    """Histogram of one panel's defined kappas, coloured by same persona (diagonal) vs different personas."""
    df = cells[np.isfinite(cells["kappa"].astype(float))].copy()
    df["cells"] = df["same_persona"].map(_SAME)
    undefined = len(cells) - len(df)
    sub = f"{len(df)} kappas" + (f"; {undefined} undefined cells left out" if undefined else "")
    return (
        alt.Chart(df)
        .mark_bar(opacity=0.85)
        .encode(
            x=alt.X(
                "kappa:Q",
                bin=alt.Bin(extent=[-1, 1], step=0.1),
                title="Cohen's kappa",
                scale=alt.Scale(domain=[-1, 1]),
            ),
            y=alt.Y("count():Q", title="persona pairs", stack=True, axis=alt.Axis(tickMinStep=1)),
            color=alt.Color(
                "cells:N",
                scale=alt.Scale(domain=list(_SAME.values()), range=["#4c78a8", "#bab0ac"]),
                title=None,
            ),
            tooltip=["cells:N", alt.Tooltip("count():Q", title="pairs")],
        )
        .properties(width=230, height=160, title=alt.TitleParams(title, subtitle=sub, anchor="start"))
    )


def kappa_histograms_figure(
    panels: pd.DataFrame,
    names: Sequence[str],
    *,
    title: str,
    subtitle: Sequence[str] = (),
    missing: Sequence[str] = NO_HUMAN_LABELS,
    columns: int = 3,
) -> alt.ConcatChart:
    """Figs. 7 and 9: the histograms of the heatmaps' kappas, one per panel; a panel without cells shows
    ``missing``."""
    charts = []
    for n in names:
        cells = panels[panels["panel"] == n] if len(panels) else panels
        charts.append(
            kappa_histogram(cells, n) if len(cells) else message_panel(missing, n, width=230, height=160)
        )
    if not charts:
        charts = [message_panel(["No model annotators were configured."], title)]
    return alt.concat(*charts, columns=columns).properties(
        title=alt.TitleParams(title, subtitle=list(subtitle), anchor="start")
    )


def leave_one_out_chart(
    kappa: pd.DataFrame, *, eligible: Mapping[str, int] | None = None, subtitle: Sequence[str] = ()
) -> alt.TopLevelMixin:
    """Fig. 5: the distribution of the twins' kappas per attribute (one dot per persona pair, the median as a
    bar); lower means adding the attribute changed the persona's choices more. Each attribute is labelled with
    the number of pairs whose kappa is defined; an attribute no persona was eligible for (``eligible`` gives 0)
    is listed as such rather than left out.

    Args:
        kappa: the leave-one-out kappas (``attribute, pair, value, kappa, n_items``).
        eligible: attribute -> eligible personas (``LeaveOneOut.eligible``).
        subtitle: subtitle lines.
    """
    title = "Leave-one-out: kappa between persona twins per attribute (Fig. 5)"
    df = kappa.copy() if kappa is not None else pd.DataFrame(columns=["attribute", "pair", "kappa"])
    attributes = list(eligible) if eligible else list(pd.unique(df["attribute"]))
    if not attributes:
        return message_panel(
            ["No leave-one-out pairs in this run", "(agreement.loo_pairs = 0, or no usable question)."], title
        )
    df["kappa"] = df["kappa"].astype(float)
    label = {}
    for a in attributes:
        mine = df[df["attribute"] == a]
        if len(mine):
            label[a] = f"{a} ({int(np.isfinite(mine['kappa']).sum())} of {len(mine)} pairs defined)"
        elif eligible is not None and eligible.get(a, 0) == 0:
            label[a] = f"{a} (no eligible persona)"
        else:
            label[a] = f"{a} (no pair judged)"
    order = [label[a] for a in attributes]
    df["label"] = df["attribute"].map(label)
    defined = df[np.isfinite(df["kappa"])]
    y = alt.Y("label:N", sort=order, scale=alt.Scale(domain=order), title=None, axis=alt.Axis(labelLimit=300))
    x = alt.X("kappa:Q", scale=alt.Scale(domain=[-1, 1]), title="Cohen's kappa between the twins' choices")
    dots = (
        alt.Chart(defined)
        .mark_circle(size=60, opacity=0.7, color="#4c78a8")
        .encode(
            x=x,
            y=y,
            tooltip=["attribute:N", "pair:Q", "value:N", alt.Tooltip("kappa:Q", format=".3f"), "n_items:Q"],
        )
    )
    median = (
        alt.Chart(defined).mark_tick(color="black", thickness=2, size=18).encode(x="median(kappa):Q", y=y)
    )
    height = max(120, 26 * len(order))
    return alt.layer(dots, median).properties(
        width=420, height=height, title=alt.TitleParams(title, subtitle=list(subtitle), anchor="start")
    )


def group_kappa_chart(groups: pd.DataFrame, *, subtitle: Sequence[str] = ()) -> alt.TopLevelMixin:
    """Per-demographic kappa of each model annotator with the reference: points with bootstrap intervals, one
    panel per grouping."""
    title = "Agreement with the reference by persona group"
    if groups is None or not len(groups):
        return message_panel(["No model annotator to compare with the reference."], title)
    df = groups.copy()
    for c in ("kappa", "low", "high"):
        df[c] = df[c].astype(float)
    df["label"] = [f"{g} ({n})" for g, n in zip(df["group"], df["n_items"], strict=True)]
    df = df[np.isfinite(df["kappa"])]
    if not len(df):
        return message_panel(["No group has a defined kappa."], title)
    base = alt.Chart(df)
    y = alt.Y("label:N", title=None, axis=alt.Axis(labelLimit=220))
    x = alt.X("kappa:Q", scale=alt.Scale(domain=[-1, 1]), title="Cohen's kappa")
    color = alt.Color("annotator:N", title="annotator")
    offset = alt.YOffset("annotator:N")
    bars = base.mark_rule().encode(x="low:Q", x2="high:Q", y=y, yOffset=offset, color=color)
    points = base.mark_point(filled=True, size=50).encode(
        x=x,
        y=y,
        yOffset=offset,
        color=color,
        tooltip=[
            "annotator",
            "grouping",
            "group",
            "n_items",
            alt.Tooltip("kappa:Q", format=".3f"),
            alt.Tooltip("low:Q", format=".2f"),
            alt.Tooltip("high:Q", format=".2f"),
        ],
    )
    return (
        alt.layer(bars, points)
        .properties(width=260, height=alt.Step(14))
        .facet(row=alt.Row("grouping:N", title=None, sort=list(pd.unique(df["grouping"]))))
        .resolve_scale(y="independent")
        .properties(title=alt.TitleParams(title, subtitle=list(subtitle), anchor="start"))
    )
