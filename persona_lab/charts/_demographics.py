"""Fig. 2 (persona demographics), Fig. 13 (the same panels from the census) and their comparison.

PERSONA shows histograms of its personas' demographics (Fig. 2) and of the census microdata they were drawn
from (Fig. 13, App. E) and says the two "correlate strongly". Here both figures use the same panels, computed by
:func:`demographic_shares`, and :func:`demographics_comparison_chart` puts them side by side with the total
variation distance (TVD) per panel, so the claim becomes a number.
"""

from __future__ import annotations

from collections.abc import Callable

import altair as alt
import numpy as np
import pandas as pd

from persona_lab.census import total_variation

AGE_BANDS = ("Under 18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
INCOME_BANDS = (
    "None or loss",
    "$1-9,999",
    "$10k-24,999",
    "$25k-49,999",
    "$50k-74,999",
    "$75k-99,999",
    "$100k+",
)
RACE_GROUPS = (
    "White",
    "Black",
    "American Indian / Alaska Native",
    "Asian",
    "Native Hawaiian / Pacific Islander",
    "Some other race",
    "Two or more races",
)
EDUCATION_GROUPS = (
    "Less than high school",
    "High school or GED",
    "Some college",
    "Associate's",
    "Bachelor's",
    "Graduate or professional",
)
MARITAL_GROUPS = ("Never married", "Married", "Separated", "Divorced", "Widowed")


def _age_band(age: object) -> str | None:
    a = pd.to_numeric(age, errors="coerce")
    if pd.isna(a):
        return None
    edges = (18, 25, 35, 45, 55, 65)
    return AGE_BANDS[int(np.searchsorted(edges, a, side="right"))]


def _income_band(income: object) -> str | None:
    x = pd.to_numeric(income, errors="coerce")
    if pd.isna(x):
        return None
    if x <= 0:
        return "None or loss"
    edges = (10_000, 25_000, 50_000, 75_000, 100_000)
    return INCOME_BANDS[1 + int(np.searchsorted(edges, x, side="right"))]


_AIAN = (
    "american indian",
    "alaska",
    "apache",
    "blackfeet",
    "cherokee",
    "cheyenne",
    "chickasaw",
    "chippewa",
    "choctaw",
    "comanche",
    "creek",
    "crow",
    "iroquois",
    "lumbee",
    "navajo",
    "osage",
    "paiute",
    "pima",
    "potawatomi",
    "pueblo",
    "puget sound salish",
    "seminole",
    "sioux",
    "tohono",
    "yakama",
    "yaqui",
    "yuman",
    "aleut",
    "inupiat",
    "tlingit",
    "yup'ik",
    "eskimo",
    "tribe",
)
_NHPI = (
    "hawaiian",
    "pacific",
    "samoan",
    "tongan",
    "guamanian",
    "chamorro",
    "marshallese",
    "fijian",
    "polynesian",
    "micronesian",
    "melanesian",
)
_ASIAN = (
    "asian",
    "chinese",
    "filipino",
    "japanese",
    "korean",
    "vietnamese",
    "cambodian",
    "hmong",
    "laotian",
    "thai",
    "bangladeshi",
    "bhutanese",
    "burmese",
    "indonesian",
    "malaysian",
    "mongolian",
    "nepalese",
    "pakistani",
    "sri lankan",
    "taiwanese",
    "indian",
)


def _race_group(label: object) -> str | None:
    """Group RAC1P labels (``White alone``) and RAC2P detailed labels (``Korean alone``) into 7 groups."""
    s = str(label).lower()
    if not s or s in ("nan", "none"):
        return None
    if (
        "two or more" in s
        or " and " in s
        and "alone" not in s
        and "tribes" not in s
        and "not specified" not in s
    ):
        return "Two or more races"
    if "white" in s:
        return "White"
    if "black" in s:
        return "Black"
    # AIAN before Asian: "American Indian" contains "indian"
    for keys, group in (
        (_AIAN, "American Indian / Alaska Native"),
        (_NHPI, "Native Hawaiian / Pacific Islander"),
        (_ASIAN, "Asian"),
    ):
        if any(k in s for k in keys):
            return group
    return "Some other race"


def _education_group(label: object) -> str | None:
    s = str(label).lower()
    if not s or s in ("nan", "none"):
        return None
    if any(k in s for k in ("master", "professional degree", "doctorate")):
        return "Graduate or professional"
    if "bachelor" in s:
        return "Bachelor's"
    if "associate" in s:
        return "Associate's"
    if "college" in s:
        return "Some college"
    if "high school diploma" in s or "ged" in s:
        return "High school or GED"
    return "Less than high school"


def _marital_group(label: object) -> str | None:
    s = str(label).lower()
    if not s or s in ("nan", "none"):
        return None
    for key, group in (
        ("never", "Never married"),
        ("under 15", "Never married"),
        ("separated", "Separated"),
        ("divorced", "Divorced"),
        ("widowed", "Widowed"),
        ("married", "Married"),
    ):
        if key in s:
            return group
    return "Never married"


Panel = tuple[str, str, Callable[[object], str | None], tuple[str, ...] | None]
PANELS: tuple[Panel, ...] = (
    ("Age", "age", _age_band, AGE_BANDS),
    ("Sex", "sex", lambda v: None if pd.isna(v) else str(v), ("Female", "Male")),
    ("Race", "race", _race_group, RACE_GROUPS),
    ("Education", "education", _education_group, EDUCATION_GROUPS),
    ("Personal income", "income", _income_band, INCOME_BANDS),
    ("Marital status", "marital status", _marital_group, MARITAL_GROUPS),
)
"""(panel title, persona attribute, value -> category, category order) for every demographic panel."""


def panel_categories(values: pd.Series, to_category: Callable[[object], str | None]) -> pd.Series:
    """``values.map(to_category)``, computed once per distinct value (the panels' columns hold a few dozen
    distinct values over 100,000 census rows)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.asarray([to_category(u) for u in uniques] + [to_category(None)], dtype=object)
    return pd.Series(mapped[codes], index=values.index, dtype=object)


def demographic_shares(df: pd.DataFrame, weight: str | None = None) -> pd.DataFrame:
    """Share of each category in each panel, weighted by column ``weight`` if given.

    Returns a long table with columns ``panel, category, share, order``; shares sum to 1 within a panel
    (rows whose value is missing for a panel are left out of that panel).
    """
    w = df[weight].to_numpy(float) if weight else np.ones(len(df))
    rows = []
    for title, column, to_category, order in PANELS:
        cats = panel_categories(df[column], to_category)
        keep = cats.notna().to_numpy()
        sums = pd.Series(w[keep]).groupby(cats[keep].to_numpy()).sum()
        categories = list(order) if order else sorted(sums.index)
        total = sums.sum()
        for i, cat in enumerate(categories):
            rows.append((title, cat, float(sums.get(cat, 0.0) / total) if total else 0.0, i))
    return pd.DataFrame(rows, columns=["panel", "category", "share", "order"])


def panel_tvd(
    personas: pd.DataFrame, census: pd.DataFrame, census_weight: str | None = "weight"
) -> pd.Series:
    """TVD per demographic panel between personas (unweighted) and the census (weighted by ``census_weight``)."""
    a = demographic_shares(personas).set_index(["panel", "category"])["share"]
    b = demographic_shares(census, census_weight).set_index(["panel", "category"])["share"]
    return pd.Series({panel: total_variation(a[panel], b[panel]) for panel, *_ in PANELS}, name="tvd")


def _encodings() -> dict:
    return {
        "y": alt.Y(
            "category:N", sort=alt.EncodingSortField("order"), title=None, axis=alt.Axis(labelLimit=220)
        ),
        "x": alt.X("share:Q", title="share", axis=alt.Axis(format="%")),
    }


def _facet(
    chart: alt.Chart | alt.LayerChart | alt.FacetChart, panels: list[str], title: str, subtitle: str
) -> alt.FacetChart:
    return (
        chart.properties(width=230, height=150)
        .facet(facet=alt.Facet("panel:N", sort=panels, title=None), columns=3)
        .resolve_scale(y="independent", x="independent")
        .properties(title=alt.TitleParams(title, subtitle=subtitle, anchor="start"))
    )


def _panel_grid(shares: pd.DataFrame, color: str, title: str, subtitle: str) -> alt.FacetChart:
    bars = (
        alt.Chart(shares)
        .mark_bar(color=color)
        .encode(**_encodings(), tooltip=["panel", "category", alt.Tooltip("share:Q", format=".1%")])
    )
    return _facet(bars, [p[0] for p in PANELS], title, subtitle)


def persona_demographics_chart(personas: pd.DataFrame, subtitle: str = "") -> alt.FacetChart:
    """Fig. 2: demographics of the sampled personas (each persona counts once)."""
    shares = demographic_shares(personas)
    sub = subtitle or f"{len(personas):,} personas"
    return _panel_grid(shares, "#4c78a8", "Persona demographics (Fig. 2)", sub)


def census_demographics_chart(
    census: pd.DataFrame, weight: str | None = "weight", subtitle: str = ""
) -> alt.FacetChart:
    """Fig. 13: the same panels computed from the census microdata (weighted by the person weight)."""
    shares = demographic_shares(census, weight)
    sub = subtitle or f"{len(census):,} census person records" + (f", weighted by {weight}" if weight else "")
    return _panel_grid(shares, "#f58518", "Census demographics (Fig. 13)", sub)


def demographics_comparison_chart(
    personas: pd.DataFrame,
    census: pd.DataFrame,
    census_weight: str | None = "weight",
    census_label: str = "census",
) -> alt.FacetChart:
    """Personas (bars) beside the census (black ticks), panel by panel, with the TVD in each panel's title."""
    tvd = panel_tvd(personas, census, census_weight)
    a = demographic_shares(personas).rename(columns={"share": "personas"})
    b = demographic_shares(census, census_weight).rename(columns={"share": "census"})
    shares = a.merge(b, on=["panel", "category", "order"])
    shares["panel"] = shares["panel"].map(lambda p: f"{p} (TVD {tvd[p]:.3f})")
    enc = _encodings()
    tooltip = ["category", alt.Tooltip("personas:Q", format=".1%"), alt.Tooltip("census:Q", format=".1%")]
    x_axis = alt.Axis(format="%")
    bars = (
        alt.Chart()
        .mark_bar(color="#4c78a8")
        .encode(y=enc["y"], x=alt.X("personas:Q", title="share", axis=x_axis), tooltip=tooltip)
    )
    ticks = (
        alt.Chart()
        .mark_tick(color="black", thickness=2.5, size=14)
        .encode(y=enc["y"], x=alt.X("census:Q", title="share", axis=x_axis), tooltip=tooltip)
    )
    subtitle = (
        f"bars: {len(personas):,} personas; black ticks: {census_label}"
        + (f" weighted by {census_weight}" if census_weight else "")
        + "; "
        f"max TVD {tvd.max():.3f}"
    )
    layered = alt.layer(bars, ticks, data=shares)
    return _facet(layered, [f"{p} (TVD {tvd[p]:.3f})" for p, *_ in PANELS], "Personas vs census", subtitle)
