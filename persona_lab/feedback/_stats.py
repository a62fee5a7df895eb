"""How the feedback pairs look: verification rate with a bootstrap interval, per group, position bias, length bias.

PERSONA (Castricato et al. 2024, Sec. 3.3) reports that a role-playing evaluator preferred the revision 96 % of
the time. Two things can inflate that number: the order the answers are shown in (position bias: how often the
first-shown answer wins, 50 % without bias) and length (revisions are asked to be shorter, and a persona that
"prefers short answers" may pick the shorter answer whatever it says), so a reward model trained on the pairs
must be checked for length bias.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

PAPER_VERIFICATION_RATE = 0.96
"""Share of role-play verifications that chose the revision in PERSONA (Sec. 3.3)."""

AGE_BANDS: tuple[tuple[int, int, str], ...] = (
    (0, 17, "under 18"),
    (18, 29, "18-29"),
    (30, 44, "30-44"),
    (45, 64, "45-64"),
    (65, 200, "65+"),
)
"""Age bands for the per-group verification rate (inclusive bounds)."""

LENGTH_BINS: tuple[tuple[float, float, str], ...] = (
    (-np.inf, -50, "50+ shorter"),
    (-50, -10, "10-49 shorter"),
    (-10, 10, "within 10"),
    (10, 50, "10-49 longer"),
    (50, np.inf, "50+ longer"),
)
"""Bins of revision minus original length in tokens, ``[low, high)``."""


@dataclass(frozen=True)
class Share:
    """A share with its percentile bootstrap confidence interval."""

    share: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, float | int | None]:
        def num(x: float) -> float | None:
            return None if np.isnan(x) else round(float(x), 4)

        return {"share": num(self.share), "ci_low": num(self.low), "ci_high": num(self.high), "n": self.n}


def bootstrap_share(
    values: Sequence[bool] | np.ndarray, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> Share:
    """The share of True values and its percentile bootstrap interval (``n_boot`` resamples, seeded).

    Resampling ``n`` binary values with replacement gives a mean distributed as Binomial(n, share) / n, so the
    resampled means are drawn from that binomial directly: the same bootstrap, in constant memory for the
    paper's 317,200 pairs. Returns NaNs for no values. Examples:
        >>> bootstrap_share([True, True, True]).to_dict()
        {'share': 1.0, 'ci_low': 1.0, 'ci_high': 1.0, 'n': 3}
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return Share(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    means = rng.binomial(n, float(x.mean()), size=n_boot) / n
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return Share(float(x.mean()), float(low), float(high), n)


def verified(feedback: pd.DataFrame) -> pd.DataFrame:
    """The pairs the role-play verifier judged (``verification`` is ``revision`` or ``original``)."""
    return feedback[feedback["verification"].isin(["revision", "original"])]


def verification_rate(feedback: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0) -> Share:
    """Share of verified pairs whose revision the role-playing persona chose."""
    v = verified(feedback)
    return bootstrap_share((v["verification"] == "revision").to_numpy(), n_boot=n_boot, seed=seed)


def position_bias(feedback: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0) -> Share:
    """Share of verified pairs where the first-shown answer (A) won; 0.5 without position bias."""
    v = verified(feedback)
    return bootstrap_share((v["verification_choice"] == "A").to_numpy(), n_boot=n_boot, seed=seed)


def age_band(age: object) -> str | None:
    """The :data:`AGE_BANDS` label of an age (``None`` when not a number)."""
    a = pd.to_numeric(pd.Series([age]), errors="coerce").iloc[0]
    if pd.isna(a):
        return None
    for low, high, label in AGE_BANDS:
        if low <= a <= high:
            return label
    return None


def rate_by_group(
    feedback: pd.DataFrame,
    personas: pd.DataFrame,
    groups: Sequence[str],
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """The verification rate per value of each persona attribute in ``groups`` (``age`` in :data:`AGE_BANDS`).

    Returns:
        Columns ``group``, ``value``, ``share``, ``ci_low``, ``ci_high``, ``n``; attributes the personas table
        lacks are left out.
    """
    v = verified(feedback)
    rows: list[dict[str, object]] = []
    if v.empty:
        return pd.DataFrame(columns=["group", "value", "share", "ci_low", "ci_high", "n"])
    joined = v.merge(personas, on="persona_id", how="left", suffixes=("", "_persona"))
    for group in groups:
        if group not in personas.columns:
            continue
        values = joined[group].map(age_band) if group == "age" else joined[group]
        for value, part in joined.groupby(values.fillna("(missing)").astype(str), sort=True):
            s = bootstrap_share((part["verification"] == "revision").to_numpy(), n_boot=n_boot, seed=seed)
            rows.append({"group": group, "value": value, **s.to_dict()})
    return pd.DataFrame(rows, columns=["group", "value", "share", "ci_low", "ci_high", "n"])


def length_bin(diff: float) -> str:
    """The :data:`LENGTH_BINS` label of a length difference in tokens."""
    for low, high, label in LENGTH_BINS:
        if low <= diff < high:
            return label
    raise ValueError(diff)  # pragma: no cover - the bins cover the real line


def length_table(feedback: pd.DataFrame) -> pd.DataFrame:
    """One row per pair with both lengths: ``original_tokens``, ``revision_tokens``, ``diff`` (revision minus
    original), ``bin`` and ``verification``."""
    has = (
        feedback["original_tokens"].notna()
        & feedback["revision_tokens"].notna()
        & (feedback["failure"] == "")
    )
    df = feedback.loc[
        has, ["persona_id", "prompt_id", "split", "original_tokens", "revision_tokens", "verification"]
    ]
    df = df.astype({"original_tokens": int, "revision_tokens": int})
    df["diff"] = df["revision_tokens"] - df["original_tokens"]
    df["bin"] = [length_bin(d) for d in df["diff"]]
    return df.reset_index(drop=True)


def rate_by_length(feedback: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The verification rate per length-difference bin (all :data:`LENGTH_BINS`, empty ones with n = 0)."""
    df = length_table(feedback)
    rows = []
    for order, (_, _, label) in enumerate(LENGTH_BINS):
        part = df[(df["bin"] == label) & df["verification"].isin(["revision", "original"])]
        s = bootstrap_share((part["verification"] == "revision").to_numpy(), n_boot=n_boot, seed=seed)
        rows.append({"bin": label, "order": order, "pairs": int((df["bin"] == label).sum()), **s.to_dict()})
    return pd.DataFrame(rows)


def length_summary(feedback: pd.DataFrame) -> dict[str, float | int | None]:
    """Mean token lengths of originals and revisions, the share of revisions shorter than their original and
    the correlation between length difference and choosing the revision (``None`` when undefined)."""
    df = length_table(feedback)
    if df.empty:
        return {"pairs": 0, "mean_original_tokens": None, "mean_revision_tokens": None, "share_shorter": None}
    v = df[df["verification"].isin(["revision", "original"])]
    corr = None
    if len(v) > 2 and v["diff"].nunique() > 1 and v["verification"].nunique() > 1:
        corr = round(float(np.corrcoef(v["diff"], (v["verification"] == "revision").astype(float))[0, 1]), 4)
    return {
        "pairs": len(df),
        "mean_original_tokens": round(float(df["original_tokens"].mean()), 2),
        "mean_revision_tokens": round(float(df["revision_tokens"].mean()), 2),
        "share_shorter": round(float((df["diff"] < 0).mean()), 4),
        "corr_diff_chose_revision": corr,
    }
