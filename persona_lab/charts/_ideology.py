"""The political lean of the personas' ideology and political views, ours beside PERSONA's release.

Not a figure of the paper: a check on the LLM enrichment. The released PERSONA personas lean left (in the
100 we measured: 48 left vs 29 right on ideology, 48 vs 28 on political views, see
``tests/test_personas_quality.py``). The leans come from the lexicon of
:func:`persona_lab.personas.classify_lean`. Saved by ``reproduce`` as
``personas_ideology_distribution``.
"""

from __future__ import annotations

import math

import altair as alt
import pandas as pd

from persona_lab.personas import LEANS, lean_distribution

FIGURE_NAME = "personas_ideology_distribution"
"""Stable file name of this chart in ``figures/``."""

_FIELDS = ("ideology", "political views")


def ideology_distribution(
    personas: pd.DataFrame,
    released: pd.DataFrame | None = None,
    *,
    label: str = "ours",
    released_label: str = "PERSONA release",
) -> pd.DataFrame:
    """Tidy lean shares of one or two personas tables (``source``, ``field``, ``lean``, ``count``,
    ``share``, ``order``), as plotted by :func:`ideology_chart`."""
    parts = [lean_distribution(personas, source=label)]
    if released is not None:
        parts.append(lean_distribution(released, source=released_label))
    out = pd.concat(parts, ignore_index=True)
    out["order"] = out["lean"].map({lean: i for i, lean in enumerate(LEANS)})
    return out


def _ratio(dist: pd.DataFrame, source: str, field: str) -> str:
    d = dist[(dist["source"] == source) & (dist["field"] == field)].set_index("lean")["count"]
    left, right = int(d.get("left", 0)), int(d.get("right", 0))
    if right == 0:
        return "left:right n/a" if left == 0 else "left:right inf"
    ratio = left / right
    return "left:right n/a" if math.isnan(ratio) else f"left:right {ratio:.2f}"


def ideology_chart(
    personas: pd.DataFrame,
    released: pd.DataFrame | None = None,
    *,
    label: str = "ours",
    released_label: str = "PERSONA release",
) -> alt.FacetChart:
    """Share of personas per political lean, for ideology and political views, ours beside the release.

    Args:
        personas: our personas table (columns ``ideology`` and ``political views``).
        released: the released PERSONA personas as a table (e.g. ``table_from_personas(read_personas(
            path))``), or ``None`` to show ours alone.
        label: legend label of ``personas``.
        released_label: legend label of ``released``.

    Returns:
        One panel per field; grouped bars per lean (shares of all personas of that source, so each
        source's bars in a panel sum to 1); the panel titles give each source's left:right ratio.
    """
    dist = ideology_distribution(personas, released, label=label, released_label=released_label)
    sources = list(dict.fromkeys(dist["source"]))
    n = {label: len(personas)} | ({released_label: len(released)} if released is not None else {})
    titles = {
        field: f"{field} (" + "; ".join(f"{s}: {_ratio(dist, s, field)}" for s in sources) + ")"
        for field in _FIELDS
    }
    dist["panel"] = dist["field"].map(titles)
    bars = (
        alt.Chart(dist)
        .mark_bar()
        .encode(
            y=alt.Y("lean:N", sort=list(LEANS), title=None),
            yOffset=alt.YOffset("source:N", sort=sources),
            x=alt.X("share:Q", title="share of personas", axis=alt.Axis(format="%")),
            color=alt.Color(
                "source:N",
                sort=sources,
                scale=alt.Scale(range=["#4c78a8", "#f58518"]),
                legend=alt.Legend(title=None, orient="bottom"),
            ),
            tooltip=["source", "field", "lean", "count", alt.Tooltip("share:Q", format=".1%")],
        )
        .properties(width=300, height=220)
    )
    subtitle = ", ".join(f"{s}: {n[s]:,} personas" for s in sources) + "; leans from a small lexicon"
    return bars.facet(
        facet=alt.Facet("panel:N", sort=[titles[f] for f in _FIELDS], title=None), columns=2
    ).properties(title=alt.TitleParams("Political lean of the personas", subtitle=subtitle, anchor="start"))
