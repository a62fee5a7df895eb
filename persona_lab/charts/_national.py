"""Personas against the United States (national margins) and against PERSONA's released personas.

* :func:`fig13_persona_vs_national`: our personas' share of each category of every raked item (over the item's
  own universe) beside the published ACS national margins, one panel per item, TVD in each title; the
  attributes no margin covers (place of birth, ...) are named as not raked.
* :func:`personas_vs_release`: our personas beside PERSONA's released personas (Castricato et al. 2024), per
  attribute, after reconciling the two label vocabularies with :data:`RELEASE_ALIASES` and the PUMS code
  groups of the national margins. A label neither maps is counted per attribute ("unmapped"), never dropped
  silently.
"""

from __future__ import annotations

from collections.abc import Callable

import altair as alt
import numpy as np
import pandas as pd

from persona_lab.census import (
    AGE_GROUPS,
    INCOME_GROUPS,
    margin_label_groups,
    national_comparison,
    national_tvd,
    not_raked,
)

UNMAPPED = "(unmapped)"
"""The category of a label the reconciliation does not know."""

NOT_APPLICABLE_GROUP = "Not applicable"

RELEASE_ALIASES: dict[str, dict[str, str]] = {
    "race": {
        "white": "White alone",
        "black or african american": "Black or African American alone",
        "filipino": "Asian alone",
        "asian": "Asian alone",
    },
    "education": {
        "pre-school": "Less than 9th grade",
        "preschool": "Less than 9th grade",
        "too young for education": NOT_APPLICABLE_GROUP,
        "not applicable": NOT_APPLICABLE_GROUP,
    },
    "employment status": {
        "employed": "Civilian employed",
        "part-time": "Civilian employed",
        "full-time": "Civilian employed",
        "too young for employment": NOT_APPLICABLE_GROUP,
        "not applicable": NOT_APPLICABLE_GROUP,
    },
    "marital status": {
        "never married": "Never married",
        "single": "Never married",
        "under 15 years old": "Never married",
    },
    "citizenship": {
        "us citizen by naturalization": "Foreign born naturalized U.S. citizen",
        "naturalized citizen": "Foreign born naturalized U.S. citizen",
        "not a u.s. citizen": "Foreign born not a U.S. citizen",
        "not a us citizen": "Foreign born not a U.S. citizen",
    },
    "veteran status": {
        "non-veteran": "Nonveteran",
        "not a veteran": "Nonveteran",
        "veteran": "Veteran",
        "not applicable": NOT_APPLICABLE_GROUP,
    },
    "health insurance": {
        "private": "With health insurance coverage",
        "public": "With health insurance coverage",
    },
    "household language": {"english": "English only"},
    "disability": {"none": "Without a disability", "no disability": "Without a disability"},
}
"""Released-persona wording (lower case) -> reconciled category, for labels that are not PUMS labels. The
release writes "White" beside "White alone", "Never married" and "Single" beside "Never married or under 15 years
old", "Employed" and "Part-time" beside "Civilian employed, at work", "Private" for a kind of health insurance.
"US Citizen" is left unmapped: it does not say whether the person was born a citizen."""

_VARIABLES: dict[str, str] = {
    "race": "RAC2P",
    "education": "SCHL",
    "employment status": "ESR",
    "marital status": "MAR",
    "citizenship": "CIT",
    "veteran status": "MIL",
    "health insurance": "HICOV",
    "household language": "HHL",
}
"""Attribute -> the PUMS variable whose code groups (the national margins' categories) reconcile it."""

_EXTRA_GROUPS: dict[str, dict[str, str]] = {
    "education": {
        "no schooling completed": "Less than 9th grade",
        "nursery school, preschool": "Less than 9th grade",
    },
    "veteran status": {"now on active duty": "Active duty"},
    "disability": {"with a disability": "With a disability"},
    "sex": {"female": "Female", "male": "Male"},
}

RELEASE_ATTRIBUTES: tuple[str, ...] = (
    "age",
    "sex",
    "race",
    "education",
    "employment status",
    "marital status",
    "citizenship",
    "veteran status",
    "health insurance",
    "household language",
    "disability",
    "income",
)
"""The attributes :func:`personas_vs_release` compares."""


def _reconciler(attribute: str) -> Callable[[object], str]:
    known: dict[str, str] = {}
    if attribute in _VARIABLES:
        for label, group in margin_label_groups(_VARIABLES[attribute]).items():
            known[label.lower()] = group if group is not None else "Active duty"
    known.update(_EXTRA_GROUPS.get(attribute, {}))
    aliases = RELEASE_ALIASES.get(attribute, {})

    def reconcile(value: object) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return NOT_APPLICABLE_GROUP
        s = str(value).strip().lower()
        if s in aliases:
            return aliases[s]
        if s in known:
            return known[s]
        if s.startswith("not applicable"):
            return NOT_APPLICABLE_GROUP
        if attribute == "race" and f"{s} alone" in known:
            return known[f"{s} alone"]
        return UNMAPPED

    return reconcile


def _age_group(age: object) -> str:
    a = pd.to_numeric(age, errors="coerce")
    if pd.isna(a):
        return UNMAPPED
    return next(label for start, label in reversed(AGE_GROUPS) if a >= start)


def _income_group(income: object) -> str:
    x = pd.to_numeric(income, errors="coerce")
    if pd.isna(x):
        return UNMAPPED
    if x == 0:
        return "No income"
    if x < 0:
        return INCOME_GROUPS[0][1]
    return next((label for upper, label in INCOME_GROUPS if x < upper), "$75000 or more")


_MARGIN_ITEM: dict[str, str] = {
    "sex": "sex",
    "race": "race",
    "education": "education_25plus",
    "employment status": "employment_16plus",
    "marital status": "marital_15plus",
    "citizenship": "nativity",
    "veteran status": "veteran_civilian_18plus",
    "health insurance": "health_insurance",
    "household language": "language_5plus",
    "income": "income_15plus",
}


def _category_order(attribute: str) -> list[str]:
    """Reconciled categories in the published order of the attribute's national margin."""
    from persona_lab.census import load_national_margins

    if attribute == "age":
        return [label for _, label in AGE_GROUPS]
    if attribute == "disability":
        return ["With a disability", "Without a disability"]
    item = _MARGIN_ITEM.get(attribute)
    cats = list(load_national_margins()[item].categories) if item else []
    return [*cats, "Active duty", NOT_APPLICABLE_GROUP]


def _label(value: object) -> str:
    """How an unmapped value is listed: its text, or ``<missing>`` (a label the persona parser could not read
    as a number, such as the release's income "0-20000" or "Not Applicable", arrives missing)."""
    return "<missing>" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def reconciled_categories(personas: pd.DataFrame, attribute: str) -> pd.Series:
    """Each persona's reconciled category of ``attribute`` (computed once per distinct label)."""
    if attribute == "age":
        fn: Callable[[object], str] = _age_group
    elif attribute == "income":
        fn = _income_group
    else:
        fn = _reconciler(attribute)
    codes, uniques = pd.factorize(personas[attribute], use_na_sentinel=True)
    mapped = np.asarray([fn(u) for u in uniques] + [fn(None)], dtype=object)
    return pd.Series(mapped[codes], index=personas.index, dtype=object)


def release_comparison(ours: pd.DataFrame, release: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reconciled shares of our personas and the released ones per attribute, and the unmapped labels.

    Returns ``(shares, unmapped)``: ``shares`` has ``attribute, category, ours, release``; ``unmapped`` has
    ``attribute, side, label, count`` for every label the reconciliation could not map (its personas stay in
    the shares as the category ``"(unmapped)"``).
    """
    rows, missing = [], []
    for attribute in RELEASE_ATTRIBUTES:
        if attribute not in ours or attribute not in release:
            continue
        a = reconciled_categories(ours, attribute)
        b = reconciled_categories(release, attribute)
        pa, pb = a.value_counts(normalize=True), b.value_counts(normalize=True)
        order = _category_order(attribute)
        rank = {c: i for i, c in enumerate(order)}
        present = sorted(
            set(pa.index) | set(pb.index), key=lambda c: (c == UNMAPPED, rank.get(c, len(rank)), c)
        )
        for i, cat in enumerate(present):
            rows.append((attribute, cat, float(pa.get(cat, 0.0)), float(pb.get(cat, 0.0)), i))
        for side, frame, cats in (("ours", ours, a), ("release", release, b)):
            values = frame.loc[(cats == UNMAPPED).to_numpy(), attribute]
            labels = pd.Series([_label(v) for v in values], dtype=object).value_counts()
            missing += [(attribute, side, label, int(n)) for label, n in labels.items()]
    shares = pd.DataFrame(rows, columns=["attribute", "category", "ours", "release", "order"])
    unmapped = pd.DataFrame(missing, columns=["attribute", "side", "label", "count"])
    return shares, unmapped


def personas_vs_release(
    ours: pd.DataFrame, release: pd.DataFrame, *, ours_label: str = "our personas", release_label: str = ""
) -> alt.FacetChart:
    """Our personas (bars) vs PERSONA's released personas (black ticks) per attribute, labels reconciled.

    Each panel title gives the TVD between the two reconciled distributions and how many personas of each side
    hold a label the reconciliation could not map (counted in the category ``"(unmapped)"``).
    """
    shares, unmapped = release_comparison(ours, release)
    tvd = (0.5 * (shares["ours"] - shares["release"]).abs()).groupby(shares["attribute"], sort=False).sum()
    counts = unmapped.groupby(["attribute", "side"])["count"].sum()

    def title(attribute: str) -> str:
        n_ours = int(counts.get((attribute, "ours"), 0))
        n_rel = int(counts.get((attribute, "release"), 0))
        return f"{attribute} (TVD {tvd[attribute]:.3f}; unmapped {n_ours} / {n_rel})"

    shares["panel"] = shares["attribute"].map(title)
    panels = [title(a) for a in dict.fromkeys(shares["attribute"])]
    release_label = release_label or f"{len(release):,} released PERSONA personas"
    subtitle = (
        f"bars: {len(ours):,} {ours_label}; black ticks: {release_label}; unmapped: ours / release personas "
        f"whose label the documented mapping does not reconcile"
    )
    return _bars_and_ticks(shares, "ours", "release", panels, "Our personas vs PERSONA's release", subtitle)


def fig13_persona_vs_national(
    personas: pd.DataFrame, *, source_label: str = "", weight: str | None = None
) -> alt.FacetChart:
    """Our personas (bars) vs the published ACS national margins (black ticks), one panel per raked item.

    Shares are over each item's own universe (education over 25+, marital status over 15+, ...); every panel
    title carries its TVD. The subtitle says which population, year and weighting the personas come from
    (``source_label``) and which attributes no margin covers, place of birth first.
    """
    weights = personas[weight].to_numpy(float) if weight else None
    comparison = national_comparison(personas, weights)
    tvd = national_tvd(comparison)
    titles = comparison.drop_duplicates("item").set_index("item")["title"]
    comparison["panel"] = comparison["item"].map(lambda i: f"{titles[i]} (TVD {tvd[i]:.3f})")
    panels = [f"{titles[i]} (TVD {tvd[i]:.3f})" for i in titles.index]
    skipped = [k for k in not_raked() if not k.startswith("margin ")]
    skipped = sorted(skipped, key=lambda k: (k != "place of birth", k))
    subtitle = [
        f"bars: {len(personas):,} personas" + (f" from the {source_label}" if source_label else "")
        + f"; black ticks: ACS 2018 national margins; max TVD {tvd.max():.3f}",
        "not raked (no national margin): " + ", ".join(skipped) + "; Hispanic origin is a margin but no persona attribute",
    ]  # fmt: skip
    return _bars_and_ticks(
        comparison.rename(columns={"share": "personas", "margin": "national"}),
        "personas",
        "national",
        panels,
        "Personas vs the United States (national margins)",
        subtitle,
    )


def _bars_and_ticks(
    shares: pd.DataFrame, bar: str, tick: str, panels: list[str], title: str, subtitle: str | list[str]
) -> alt.FacetChart:
    y = alt.Y("category:N", sort=alt.EncodingSortField("order"), title=None, axis=alt.Axis(labelLimit=240))
    axis = alt.Axis(format="%")
    tooltip = ["category", alt.Tooltip(f"{bar}:Q", format=".1%"), alt.Tooltip(f"{tick}:Q", format=".1%")]
    bars = alt.Chart().mark_bar(color="#4c78a8").encode(y=y, x=alt.X(f"{bar}:Q", title="share", axis=axis))
    ticks = (
        alt.Chart()
        .mark_tick(color="black", thickness=2.5, size=14)
        .encode(y=y, x=alt.X(f"{tick}:Q", title="share", axis=axis), tooltip=tooltip)
    )
    return (
        alt.layer(bars, ticks, data=shares)
        .properties(width=230, height=150)
        .facet(facet=alt.Facet("panel:N", sort=panels, title=None), columns=3)
        .resolve_scale(y="independent", x="independent")
        .properties(title=alt.TitleParams(title, subtitle=subtitle, anchor="start"))
    )
