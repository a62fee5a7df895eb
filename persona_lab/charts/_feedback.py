"""Length bias of PERSONA's feedback pairs (``feedback_length_bias``).

PERSONA (Castricato et al. 2024, Sec. 3.3) asks for revisions shorter than the originals and reports that a
role-playing evaluator preferred the revision 96 % of the time; the figure shows how much shorter the revisions
are and whether the evaluator's choice follows the length difference.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from persona_lab.feedback import (
    LENGTH_BINS,
    PAPER_VERIFICATION_RATE,
    length_summary,
    length_table,
    rate_by_length,
    verification_rate,
)

LOCAL_CAVEAT = "local SmolLM2-135M: proves the pipeline, not the science"
"""Subtitle line of figures made with the local model."""

_CHOICE_COLORS = {"revision": "#4c78a8", "original": "#f58518", "not verified": "#bab0ac"}


def feedback_length_bias_chart(
    feedback: pd.DataFrame, *, backend: str = "", n_boot: int = 2000, seed: int = 0
) -> alt.HConcatChart:
    """Two panels: pairs per bin of revision-minus-original length (tokens), coloured by the role-play choice;
    and the share choosing the revision per bin with its 95 % bootstrap interval, PERSONA's 96 % as a rule.

    Args:
        feedback: the feedback table (``feedback.parquet`` or ``load_release(...).feedback``).
        backend: the backend spec that made the pairs; ``local`` adds the local-model caveat to the subtitle.
        n_boot: bootstrap resamples of the intervals.
        seed: bootstrap seed.
    """
    labels = [label for _, _, label in LENGTH_BINS]
    lengths = length_table(feedback)
    lengths["choice"] = lengths["verification"].fillna("not verified")
    counts = (
        lengths.groupby(["bin", "choice"]).size().reset_index(name="pairs")
        if len(lengths)
        else pd.DataFrame(
            {"bin": pd.Series(dtype=str), "choice": pd.Series(dtype=str), "pairs": pd.Series(dtype=int)}
        )
    )
    x = alt.X(
        "bin:N",
        sort=labels,
        scale=alt.Scale(domain=labels),
        title="revision minus original length (tokens)",
        axis=alt.Axis(labelAngle=-30),
    )
    left = (
        alt.Chart(counts)
        .mark_bar()
        .encode(
            x=x,
            y=alt.Y("pairs:Q", title="pairs", axis=alt.Axis(tickMinStep=1)),
            color=alt.Color(
                "choice:N",
                title="role-play choice",
                scale=alt.Scale(domain=list(_CHOICE_COLORS), range=list(_CHOICE_COLORS.values())),
            ),
            tooltip=["bin:N", "choice:N", "pairs:Q"],
        )
        .properties(width=300, height=220, title="Pairs by length difference")
    )
    rates = rate_by_length(feedback, n_boot=n_boot, seed=seed)
    rated = rates[rates["n"] > 0]
    y = alt.Y(
        "share:Q",
        title="share choosing the revision",
        scale=alt.Scale(domain=[0, 1]),
        axis=alt.Axis(format="%"),
    )
    points = (
        alt.Chart(rated)
        .mark_point(filled=True, size=60, color="#4c78a8")
        .encode(x=x, y=y, tooltip=["bin:N", alt.Tooltip("share:Q", format=".1%"), "n:Q"])
    )
    bars = alt.Chart(rated).mark_rule(color="#4c78a8").encode(x=x, y="ci_low:Q", y2="ci_high:Q")
    labels_n = (
        alt.Chart(rated)
        .mark_text(dy=-12, fontSize=10)
        .encode(x=x, y="share:Q", text=alt.Text("n:Q", format="d"))
    )
    paper = (
        alt.Chart(pd.DataFrame({"paper": [PAPER_VERIFICATION_RATE], "note": ["PERSONA: 96 %"]}))
        .mark_rule(color="black", strokeDash=[4, 3])
        .encode(y="paper:Q", tooltip=["note:N"])
    )
    right = alt.layer(paper, bars, points, labels_n).properties(
        width=300, height=220, title="Verification rate by length difference (n above points)"
    )
    summary = length_summary(feedback)
    rate = verification_rate(feedback, n_boot=n_boot, seed=seed)
    parts = [f"{summary['pairs']:,} pairs of {len(feedback):,} planned"]
    if not summary["pairs"] and "failure" in feedback.columns:
        failed = feedback["failure"].astype(str)
        kinds = failed[failed != ""].str.split(":").str[0].value_counts()
        if len(kinds):
            parts.append("failures: " + ", ".join(f"{k} {v}" for k, v in kinds.items()))
    if summary["pairs"]:
        parts.append(
            f"mean length {summary['mean_original_tokens']:.0f} -> {summary['mean_revision_tokens']:.0f} tokens, "
            f"{summary['share_shorter']:.0%} of revisions shorter"
        )
    if rate.n:
        parts.append(
            f"revision chosen {rate.share:.0%} (95 % CI {rate.low:.0%}-{rate.high:.0%}, n = {rate.n})"
        )
    subtitle = ["; ".join(parts) + "."]
    if backend.split(":")[0] == "local":
        subtitle.append(LOCAL_CAVEAT)
    return alt.hconcat(left, right).properties(
        title=alt.TitleParams(
            "Feedback pairs: length bias of the revisions", subtitle=subtitle, anchor="start"
        )
    )
