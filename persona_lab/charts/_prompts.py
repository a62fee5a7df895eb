"""PERSONA Fig. 3: the distribution of prompt topics, with the filter funnel that produced the prompts."""

from __future__ import annotations

import altair as alt
import pandas as pd

from persona_lab.prompts import STAGE_LABELS, funnel_counts

PAPER_COUNTS: dict[str, int] = {"loaded": 8011, "controversial": 3868}
"""PERSONA's published counts (Sec. 3.2): 8,011 PRISM opening prompts in, 3,868 kept by the GPT-4 filter."""

SPLIT_COLORS = {"train": "#4c78a8", "heldout": "#f58518", "unused": "#bab0ac", "unsplit": "#9ecae9"}


def funnel_chart(
    funnel: pd.DataFrame, *, reference: dict[str, int] | None = None, title: str = ""
) -> alt.LayerChart | alt.FacetChart:
    """Horizontal bars: prompts remaining after each filter stage, labelled with count and share of input.

    Args:
        funnel: the output of ``persona_lab.prompts.funnel_counts`` (``stage``, ``count``).
        reference: published counts per stage to mark with a black tick (e.g. :data:`PAPER_COUNTS`).
        title: chart title (default: "Prompt filter funnel").
    """
    df = funnel.copy()
    total = int(df["count"].iloc[0]) if len(df) else 0
    df["label"] = [STAGE_LABELS.get(s, s) for s in df["stage"]]
    df["order"] = range(len(df))
    df["share"] = df["count"] / total if total else 0.0
    df["text"] = [f"{c:,} ({s:.0%})" for c, s in zip(df["count"], df["share"], strict=True)]
    df["dropped"] = (df["count"].shift(1).fillna(df["count"]) - df["count"]).astype(int)
    y = alt.Y("label:N", sort=list(df["label"]), title=None, axis=alt.Axis(labelLimit=260))
    tooltip = [
        alt.Tooltip("label:N", title="stage"),
        alt.Tooltip("count:Q", title="remaining", format=","),
        alt.Tooltip("dropped:Q", title="dropped here", format=","),
        alt.Tooltip("share:Q", title="of input", format=".1%"),
    ]
    base = alt.Chart(df)
    bars = base.mark_bar(color="#4c78a8").encode(
        y=y,
        x=alt.X("count:Q", title="prompts remaining", axis=alt.Axis(format=",d", tickMinStep=1)),
        tooltip=tooltip,
    )
    text = base.mark_text(align="left", dx=4, fontSize=11).encode(y=y, x="count:Q", text="text:N")
    layers: list[alt.Chart] = [bars, text]
    if reference:
        ref = pd.DataFrame(
            [
                {"label": STAGE_LABELS.get(s, s), "paper": n, "note": f"PERSONA: {n:,}"}
                for s, n in reference.items()
                if s in set(df["stage"])
            ]
        )
        if len(ref):
            layers.append(
                alt.Chart(ref)
                .mark_tick(color="black", thickness=2, size=22)
                .encode(y=alt.Y("label:N", sort=list(df["label"])), x="paper:Q", tooltip=["note:N"])
            )
    return alt.layer(*layers).properties(
        width=420,
        height=alt.Step(26),
        title=alt.TitleParams(title or "Prompt filter funnel", anchor="start"),
    )


def _topic_counts(prompts: pd.DataFrame, topics: pd.DataFrame | None) -> pd.DataFrame:
    kept = prompts[prompts["kept"].astype(bool)] if "kept" in prompts.columns else prompts
    kept = kept[kept["topic_name"].notna()] if "topic_name" in kept.columns else kept[:0]
    if kept.empty:
        return pd.DataFrame(columns=["topic_name", "split", "n", "total", "share", "label"])
    split = (
        kept["split"].fillna("unsplit") if "split" in kept.columns else pd.Series("unsplit", index=kept.index)
    )
    counts = (
        pd.DataFrame({"topic_name": kept["topic_name"].astype(str), "split": split.astype(str)})
        .groupby(["topic_name", "split"])
        .size()
        .rename("n")
        .reset_index()
    )
    totals = counts.groupby("topic_name")["n"].sum()
    counts["total"] = counts["topic_name"].map(totals)
    counts["share"] = counts["total"] / max(int(totals.sum()), 1)
    fallback: set[str] = set()
    if topics is not None and "name_source" in topics.columns:
        fallback = set(topics.loc[topics["name_source"] != "llm", "topic_name"].astype(str))
    counts["label"] = [f"{t} *" if t in fallback else t for t in counts["topic_name"]]
    return counts


def prompt_topics_chart(
    prompts: pd.DataFrame, topics: pd.DataFrame | None = None, *, title: str = ""
) -> alt.LayerChart | alt.FacetChart:
    """Horizontal bars: kept prompts per topic, largest first, split into train / held-out, with count and share.

    Args:
        prompts: the prompts table (``kept``, ``topic_name``, optional ``split``).
        topics: the topics table; names that are TF-IDF terms (``name_source != "llm"``) get a ``*``.
        title: chart title (default: "Prompt topics").
    """
    counts = _topic_counts(prompts, topics)
    if (
        counts.empty
    ):  # every prompt dropped (or every classifier call failed): say so instead of an empty plot
        note = pd.DataFrame(
            {"text": ["No prompt survived the filters: there is nothing to cluster into topics."]}
        )
        return alt.layer(
            alt.Chart(note).mark_text(align="left", fontSize=13, color="#b00").encode(text="text:N")
        ).properties(width=420, height=40, title=alt.TitleParams(title or "Prompt topics", anchor="start"))
    order = (
        counts.drop_duplicates("label")
        .sort_values(["total", "label"], ascending=[False, True])["label"]
        .tolist()
    )
    splits = [s for s in SPLIT_COLORS if s in set(counts["split"])]
    y = alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=300))
    bars = (
        alt.Chart(counts)
        .mark_bar()
        .encode(
            y=y,
            x=alt.X(
                "sum(n):Q", title="kept prompts", stack="zero", axis=alt.Axis(format=",d", tickMinStep=1)
            ),
            color=alt.Color(
                "split:N",
                scale=alt.Scale(domain=splits, range=[SPLIT_COLORS[s] for s in splits]),
                legend=alt.Legend(title="split", orient="bottom-right", fillColor="white", padding=6),
            ),
            order=alt.Order("split:N", sort="descending"),
            tooltip=[
                alt.Tooltip("topic_name:N", title="topic"),
                alt.Tooltip("split:N"),
                alt.Tooltip("n:Q", title="prompts"),
                alt.Tooltip("share:Q", title="topic share", format=".1%"),
            ],
        )
    )
    totals = counts.drop_duplicates("label")[["label", "total", "share"]].copy()
    totals["text"] = [f"{n:,} ({s:.1%})" for n, s in zip(totals["total"], totals["share"], strict=True)]
    text = (
        alt.Chart(totals).mark_text(align="left", dx=4, fontSize=11).encode(y=y, x="total:Q", text="text:N")
    )
    return alt.layer(bars, text).properties(
        width=420,
        height=alt.Step(20),
        title=alt.TitleParams(title or "Prompt topics", anchor="start"),
    )


def prompt_topics_figure(prompts: pd.DataFrame, topics: pd.DataFrame | None = None) -> alt.VConcatChart:
    """Fig. 3 (``fig03_prompt_topics``): the filter funnel above the topic distribution, with a caption.

    PERSONA's own counts (8,011 in, 3,868 kept) are marked on the funnel when the input is the full PRISM
    list of 8,011 prompts.
    """
    funnel = funnel_counts(prompts)
    reference = (
        PAPER_COUNTS if len(funnel) and int(funnel["count"].iloc[0]) == PAPER_COUNTS["loaded"] else None
    )
    kept = int(prompts["kept"].sum()) if "kept" in prompts.columns else len(prompts)
    parts = [f"{kept:,} kept prompts"]
    if topics is not None and len(topics):
        method = str(topics["method"].iloc[0]) if "method" in topics.columns else ""
        how = {"tfidf": "TF-IDF + SVD + k-means", "embeddings": "MiniLM embeddings + k-means"}.get(
            method, method
        )
        parts.append(f"{len(topics)} topics ({how})")
        if "name_source" in topics.columns and (topics["name_source"] != "llm").any():
            parts.append("* name = top TF-IDF terms (no LLM name)")
    if "split" in prompts.columns:
        sizes = prompts["split"].value_counts()
        parts.append(
            f"split {int(sizes.get('train', 0)):,} train / {int(sizes.get('heldout', 0)):,} held-out"
        )
    if reference:
        parts.append("black ticks: PERSONA's counts")
    caption = "; ".join(parts) + "."
    sources = set(prompts["source"].astype(str)) if "source" in prompts.columns else set()
    what = (
        "the embedded value-laden questions"
        if sources == {"embedded"}
        else "the curated PRISM opening prompts"
    )
    return alt.vconcat(
        funnel_chart(funnel, reference=reference), prompt_topics_chart(prompts, topics)
    ).properties(
        title=alt.TitleParams(
            f"Fig. 3: prompt topics of {what}",
            subtitle=caption,
            anchor="start",
            fontSize=15,
        )
    )
