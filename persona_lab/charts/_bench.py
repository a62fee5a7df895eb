"""PERSONA Bench figures (Castricato et al. 2024, Sec. 5): Fig. 10 accuracy per model x mode, Fig. 11 attributes
the persona summaries drop, Fig. 12 pass@k, plus leave-one-out, intersections and chain-of-thought subtlety.

Each function takes a table made by ``persona_lab.bench`` (``mode_accuracy``, ``dropped_attribute_counts``,
``pass_at_k_table``, ``leave_one_out_table``, ``intersection_table``, ``cot_subtlety``) and returns an Altair chart.
Error bars are +-1 bootstrap standard error, as in the paper's Fig. 10.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

MODE_LABELS: dict[str, str] = {
    "baseline": "baseline (no persona)",
    "output_only": "output only",
    "chain_of_thought": "chain of thought",
    "persona_summary": "persona summary",
}
"""Readable mode names, in the paper's order."""


def _title(title: str, subtitle: str) -> alt.TitleParams:
    return alt.TitleParams(title, subtitle=subtitle or alt.Undefined, anchor="start")


def _with_bounds(df: pd.DataFrame, value: str) -> pd.DataFrame:
    out = df.copy()
    se = out["se"].fillna(0.0) if "se" in out else 0.0
    out["low"] = (out[value] - se).clip(lower=0.0)
    out["high"] = (out[value] + se).clip(upper=1.0)
    return out


def _labels(base: alt.Chart, value: str) -> alt.Chart:
    """The value and the item count above each bar, so a bar at 0 % is still visible as "0% n=6"."""
    return base.mark_text(dy=-6, fontSize=9, baseline="bottom", color="#333").encode(
        y="high:Q", text="label:N"
    )


def _label_column(df: pd.DataFrame, value: str, count: str = "n") -> pd.DataFrame:
    out = df.copy()
    out["label"] = [
        "n=0" if pd.isna(v) else f"{v:.0%} n={int(c)}" for v, c in zip(out[value], out[count], strict=True)
    ]
    out["high"] = out["high"].fillna(0.0)
    return out


def _empty(title: str, subtitle: str, message: str) -> alt.Chart:
    return (
        alt.Chart(pd.DataFrame({"text": [message]}))
        .mark_text(fontSize=13, color="#666")
        .encode(text="text:N")
        .properties(width=420, height=80, title=_title(title, subtitle))
    )


def bench_modes_chart(
    accuracy: pd.DataFrame, *, subtitle: str = ""
) -> alt.Chart | alt.LayerChart | alt.FacetChart:
    """Fig. 10: accuracy (share of answers needing no revision) per model and mode, +-1 bootstrap SE.

    Args:
        accuracy: ``persona_lab.bench.mode_accuracy`` (``model``, ``mode``, ``accuracy``, ``se``, ``n``, ...).
        subtitle: e.g. which critic judged, or that the local model made it.
    """
    title = "PERSONA Bench: accuracy per mode"
    df = accuracy[accuracy["accuracy"].notna()] if len(accuracy) else accuracy
    if df.empty:
        return _empty(title, subtitle, "no scored answer")
    df = _label_column(_with_bounds(df, "accuracy"), "accuracy")
    df["mode_label"] = [MODE_LABELS.get(m, m) for m in df["mode"]]
    order = [MODE_LABELS.get(m, m) for m in MODE_LABELS if m in set(df["mode"])]
    x = alt.X("mode_label:N", sort=order, title=None, axis=alt.Axis(labelAngle=-20, labelLimit=160))
    tooltip = [
        alt.Tooltip("model:N"),
        alt.Tooltip("mode_label:N", title="mode"),
        alt.Tooltip("accuracy:Q", format=".1%"),
        alt.Tooltip("se:Q", title="bootstrap SE", format=".1%"),
        alt.Tooltip("n:Q", title="scored items"),
        alt.Tooltip("failed:Q", title="failed answers (scored 0)"),
        alt.Tooltip("unscored:Q", title="unscored items"),
    ]
    base = alt.Chart(df).encode(
        x=x, xOffset=alt.XOffset("model:N"), color=alt.Color("model:N", title="model")
    )
    bars = base.mark_bar().encode(
        y=alt.Y(
            "accuracy:Q",
            title="accuracy (no revision needed)",
            scale=alt.Scale(domain=[0, 1]),
            axis=alt.Axis(format="%"),
        ),
        tooltip=tooltip,
    )
    errors = base.mark_rule(color="black").encode(y="low:Q", y2="high:Q")
    width = 110 * len(order) * max(1, df["model"].nunique()) ** 0.5
    return alt.layer(bars, errors, _labels(base, "accuracy")).properties(
        width=width, height=260, title=_title(title, subtitle)
    )


def summary_dropped_chart(dropped: pd.DataFrame, *, subtitle: str = "") -> alt.Chart:
    """Fig. 11: how often the persona summaries drop each attribute, per model ("phrase frequency").

    Args:
        dropped: ``persona_lab.bench.dropped_attribute_counts`` (``model``, ``attribute``, ``summaries``,
            ``dropped``, ``share_dropped``, ``source``); both sources (matcher, judge) become columns.
    """
    title = "Persona attributes the summaries drop"
    if dropped.empty:
        return _empty(title, subtitle, "no persona summary")
    df = dropped.copy()
    order = df.groupby("attribute")["share_dropped"].mean().sort_values(ascending=False).index.tolist()
    chart = (
        alt.Chart(df)
        .mark_bar()
        .encode(
            y=alt.Y("attribute:N", sort=order, title=None, axis=alt.Axis(labelLimit=200)),
            x=alt.X(
                "share_dropped:Q",
                title="share of summaries that drop it",
                scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%"),
            ),
            yOffset=alt.YOffset("model:N"),
            color=alt.Color("model:N", title="model"),
            tooltip=[
                alt.Tooltip("model:N"),
                alt.Tooltip("attribute:N"),
                alt.Tooltip("dropped:Q", title="summaries dropping it"),
                alt.Tooltip("summaries:Q", title="summaries of personas with it"),
                alt.Tooltip("share_dropped:Q", title="share", format=".0%"),
                alt.Tooltip("source:N", title="decided by"),
            ],
        )
        .properties(width=260, height=alt.Step(14))
    )
    if df["source"].nunique() > 1:
        return chart.facet(column=alt.Column("source:N", title=None)).properties(
            title=_title(title, subtitle)
        )
    return chart.properties(title=_title(title, subtitle))


def pass_at_k_chart(
    passk: pd.DataFrame, *, subtitle: str = ""
) -> alt.Chart | alt.LayerChart | alt.FacetChart:
    """Fig. 12: pass@k for k = 1..K per model: the unbiased estimator (solid) and the empirical any-of-the-first-k
    rate (dashed), +-1 bootstrap SE over items.

    Args:
        passk: ``persona_lab.bench.pass_at_k_table`` (``model``, ``estimator``, ``k``, ``value``, ``se``, ...).
    """
    title = "pass@k: an item passes if one of k answers needs no revision"
    if passk.empty:
        return _empty(title, subtitle, "no pass@k samples")
    df = _with_bounds(passk, "value")
    df["curve"] = df["model"].astype(str) + " · " + df["estimator"].astype(str)
    x = alt.X("k:Q", title="k (answers per item)", axis=alt.Axis(tickMinStep=1), scale=alt.Scale(nice=False))
    base = alt.Chart(df).encode(
        x=x,
        color=alt.Color("model:N", title="model"),
        strokeDash=alt.StrokeDash(
            "estimator:N",
            title="estimator",
            sort=["unbiased", "empirical"],
            scale=alt.Scale(domain=["unbiased", "empirical"], range=[[1, 0], [5, 3]]),
        ),
        detail="curve:N",
    )
    line = base.mark_line(point=True).encode(
        y=alt.Y("value:Q", title="pass@k", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        tooltip=[
            alt.Tooltip("model:N"),
            alt.Tooltip("estimator:N"),
            alt.Tooltip("k:Q"),
            alt.Tooltip("value:Q", title="pass@k", format=".1%"),
            alt.Tooltip("se:Q", title="bootstrap SE", format=".1%"),
            alt.Tooltip("items:Q"),
            alt.Tooltip("n:Q", title="answers per item"),
        ],
    )
    band = base.mark_area(opacity=0.12).encode(
        y="low:Q", y2="high:Q", color=alt.Color("model:N", legend=None), strokeDash=alt.value([1, 0])
    )
    return alt.layer(band, line).properties(width=420, height=260, title=_title(title, subtitle))


def bench_leave_one_out_chart(
    loo: pd.DataFrame, *, subtitle: str = ""
) -> alt.Chart | alt.LayerChart | alt.FacetChart:
    """Leave-one-out: accuracy for the full persona, without each attribute, and for the baseline persona with
    all of them dropped, +-1 bootstrap SE.

    Args:
        loo: ``persona_lab.bench.leave_one_out_table`` (``model``, ``variant``, ``accuracy``, ``se``, ...).
    """
    title = "Leave-one-out: accuracy without each attribute"
    df = loo[loo["accuracy"].notna()] if len(loo) else loo
    if df.empty:
        return _empty(title, subtitle, "no scored leave-one-out answer")
    df = _label_column(_with_bounds(df, "accuracy"), "accuracy")
    order = list(dict.fromkeys(df["variant"]))
    base = alt.Chart(df).encode(
        x=alt.X("variant:N", sort=order, title="persona shown to the model", axis=alt.Axis(labelAngle=-30)),
        xOffset=alt.XOffset("model:N"),
        color=alt.Color("model:N", title="model"),
    )
    bars = base.mark_bar().encode(
        y=alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        tooltip=[
            alt.Tooltip("model:N"),
            alt.Tooltip("variant:N"),
            alt.Tooltip("accuracy:Q", format=".1%"),
            alt.Tooltip("se:Q", title="bootstrap SE", format=".1%"),
            alt.Tooltip("delta_vs_full:Q", title="minus full persona", format="+.1%"),
            alt.Tooltip("n:Q", title="scored items"),
        ],
    )
    errors = base.mark_rule(color="black").encode(y="low:Q", y2="high:Q")
    return alt.layer(bars, errors, _labels(base, "accuracy")).properties(
        width=alt.Step(70), height=240, title=_title(title, subtitle)
    )


def bench_intersections_chart(
    inter: pd.DataFrame, *, subtitle: str = ""
) -> alt.Chart | alt.LayerChart | alt.FacetChart:
    """Accuracy per demographic intersection (and ``all`` items) and mode, +-1 bootstrap SE; one row of panels
    per model when there are several.

    Args:
        inter: ``persona_lab.bench.intersection_table`` (``model``, ``mode``, ``intersection``, ``accuracy``,
            ``se``, ``n``, ``personas``).
    """
    title = "Accuracy per demographic intersection"
    if inter.empty:
        return _empty(title, subtitle, "no intersection configured")
    df = _with_bounds(inter, "accuracy")
    df["mode_label"] = [MODE_LABELS.get(m, m) for m in df["mode"]]
    df["label"] = ["" if pd.isna(v) else f"{v:.0%}" for v in df["accuracy"]]
    df["high"] = df["high"].fillna(0.0)
    order = list(dict.fromkeys(df["intersection"]))
    base = alt.Chart(df).encode(
        x=alt.X("intersection:N", sort=order, title=None, axis=alt.Axis(labelAngle=-20, labelLimit=180)),
        xOffset=alt.XOffset("mode_label:N", sort=list(MODE_LABELS.values())),
        color=alt.Color("mode_label:N", title="mode", sort=list(MODE_LABELS.values())),
    )
    bars = base.mark_bar().encode(
        y=alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        tooltip=[
            alt.Tooltip("model:N"),
            alt.Tooltip("intersection:N"),
            alt.Tooltip("mode_label:N", title="mode"),
            alt.Tooltip("accuracy:Q", format=".1%"),
            alt.Tooltip("se:Q", title="bootstrap SE", format=".1%"),
            alt.Tooltip("n:Q", title="scored items"),
            alt.Tooltip("personas:Q", title="personas in the intersection"),
        ],
    )
    errors = base.mark_rule(color="black").encode(y="low:Q", y2="high:Q")
    layer = alt.layer(bars, errors, _labels(base, "accuracy")).properties(width=alt.Step(26), height=220)
    if df["model"].nunique() > 1:
        return layer.facet(row=alt.Row("model:N", title=None)).properties(title=_title(title, subtitle))
    return layer.properties(title=_title(title, subtitle))


def cot_subtlety_chart(
    subtlety: pd.DataFrame, *, subtitle: str = ""
) -> alt.Chart | alt.LayerChart | alt.FacetChart:
    """Chain-of-thought subtlety: the share of answers a judge finds too on-the-nose, chain of thought vs direct
    (output only), per model, +-1 bootstrap SE.

    Args:
        subtlety: ``persona_lab.bench.cot_subtlety`` (``model``, ``mode``, ``share_on_the_nose``, ``se``, ``n``).
    """
    title = "Too on-the-nose: chain of thought vs direct answers"
    df = subtlety[subtlety["share_on_the_nose"].notna()] if len(subtlety) else subtlety
    if df.empty:
        return _empty(title, subtitle, "no judged answer")
    df = _label_column(_with_bounds(df, "share_on_the_nose"), "share_on_the_nose")
    df["mode_label"] = [MODE_LABELS.get(m, m) for m in df["mode"]]
    base = alt.Chart(df).encode(
        x=alt.X("model:N", title=None, axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("mode_label:N"),
        color=alt.Color("mode_label:N", title="mode"),
    )
    bars = base.mark_bar().encode(
        y=alt.Y(
            "share_on_the_nose:Q",
            title="share judged on-the-nose",
            scale=alt.Scale(domain=[0, 1]),
            axis=alt.Axis(format="%"),
        ),
        tooltip=[
            alt.Tooltip("model:N"),
            alt.Tooltip("mode_label:N", title="mode"),
            alt.Tooltip("share_on_the_nose:Q", title="share", format=".1%"),
            alt.Tooltip("se:Q", title="bootstrap SE", format=".1%"),
            alt.Tooltip("n:Q", title="judged answers"),
            alt.Tooltip("unjudged:Q", title="answers without a verdict"),
        ],
    )
    errors = base.mark_rule(color="black").encode(y="low:Q", y2="high:Q")
    return alt.layer(bars, errors, _labels(base, "share_on_the_nose")).properties(
        width=alt.Step(160), height=220, title=_title(title, subtitle)
    )
