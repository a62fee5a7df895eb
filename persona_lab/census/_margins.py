"""Published national margins (ACS 2018 1-year, United States) and the persona attributes they constrain.

``data/acs2018_national_margins.json`` (shipped with the package) holds the Census Bureau's published
estimates for the United States, each item a distribution over its own universe with the table and variable
IDs of every category: sex and sex by age (DP05, B01001), race alone (B02001), Hispanic origin (DP05),
educational attainment of persons 25+ (DP02), marital status 15+ (DP02), employment status 16+ (DP03),
nativity and citizenship (DP02), veteran status of civilians 18+ (DP02), health insurance of the civilian
noninstitutionalized population (DP03), language spoken at home 5+ (DP02) and income of persons 15+ (B06010).

:data:`RAKED_ITEMS` says, per item, which persona records are in its universe and which margin category each
record's label falls in. Labels are matched through the PUMS code of the label, read off the shipped 2018
data dictionary (with the persona wording of :mod:`persona_lab.census._decode`), so the mapping covers every
code, not the labels a sample happens to show. A label the mapping does not know, inside an item's universe,
is an error naming the attribute and the label, never a silent drop.

Approximations, stated where they are made:

* language: the persona attribute is the *household* language (HHL, PERSONA's key), the margin is the
  language each person 5+ speaks at home (DP02); persons 5+ in households are raked to it, persons in group
  quarters (no household language) are outside its universe;
* health insurance: the margin's universe is the civilian noninstitutionalized population; the persona
  frame tells civilians (not on active duty) but not institutionalized residents (about 1.2 % of the
  population: 327.2 million residents, 322.2 million civilian noninstitutionalized, 1.0 million in the Armed
  Forces), who stay inside;
* Hispanic origin is not a persona attribute, and place of birth (and the other attributes) has no national
  margin here: they are reported as not raked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from persona_lab.errors import PersonaLabError

MARGINS_DIR = Path(__file__).resolve().parent / "data"
"""Where the national margins ship."""

MARGIN_YEARS: tuple[int, ...] = (2018,)
"""ACS years whose national margins ship with the package."""


@dataclass(frozen=True)
class Margin:
    """One published distribution: categories with person counts over the item's universe.

    Attributes:
        item: Item name (``"education_25plus"``).
        universe: The universe in the Census Bureau's words (``"population 25 years and over"``).
        universe_total: Persons in the universe (the counts add up to it).
        categories: Category labels, in the published order.
        counts: Persons per category.
        tables: Table and variable IDs per category (``"DP02_0064"``).
    """

    item: str
    universe: str
    universe_total: int
    categories: tuple[str, ...]
    counts: tuple[int, ...]
    tables: tuple[str, ...]

    @property
    def shares(self) -> pd.Series:
        """Share of each category in the universe (counts / universe total)."""
        return pd.Series(
            np.asarray(self.counts, dtype=float) / self.universe_total, index=list(self.categories)
        )


@dataclass(frozen=True)
class NationalMargins:
    """The published national margins of one ACS year.

    Attributes:
        year: ACS year.
        geography: ``"United States (GEO_ID 0100000US)"``.
        source: Survey and tables, for figure captions and summaries.
        items: Item name -> :class:`Margin`, in the published order.
        path: The file they were read from.
    """

    year: int
    geography: str
    source: str
    items: Mapping[str, Margin]
    path: Path

    def __getitem__(self, item: str) -> Margin:
        if item not in self.items:
            raise PersonaLabError(f"{self.path}: no national margin {item!r}; items: {', '.join(self.items)}")
        return self.items[item]


def margins_path(year: int) -> Path:
    """The shipped margins file of ``year``."""
    return MARGINS_DIR / f"acs{year}_national_margins.json"


@cache
def load_national_margins(year: int = 2018) -> NationalMargins:
    """The published ACS national margins of ``year`` shipped with the package.

    Raises:
        PersonaLabError: no margins ship for ``year``, or the file is not a consistent margins document
            (a count that does not add up to its universe names the item).
    """
    if year not in MARGIN_YEARS:
        raise PersonaLabError(
            f"national margins ship for ACS {', '.join(map(str, MARGIN_YEARS))} only, not {year}; "
            f"set census.year to {MARGIN_YEARS[-1]} or census.population to 'states'"
        )
    path = margins_path(year)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        items: dict[str, Margin] = {}
        for it in doc["items"]:
            cats = it["categories"]
            margin = Margin(
                item=str(it["item"]),
                universe=str(it["universe"]),
                universe_total=int(it["universe_total"]),
                categories=tuple(str(c["category"]) for c in cats),
                counts=tuple(int(c["count"]) for c in cats),
                tables=tuple(str(c["table"]) for c in cats),
            )
            if sum(margin.counts) != margin.universe_total:
                raise ValueError(
                    f"item {margin.item!r}: counts add up to {sum(margin.counts)}, not the universe total "
                    f"{margin.universe_total}"
                )
            items[margin.item] = margin
        tables = sorted({t.split("_")[0] for m in items.values() for t in m.tables})
        return NationalMargins(
            year=int(doc["year"]),
            geography=str(doc["geography"]),
            source=f"ACS {doc['year']} 1-year estimates for the United States ({', '.join(tables)})",
            items=items,
            path=path,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PersonaLabError(
            f"{path}: not a valid national margins file ({type(exc).__name__}: {exc})"
        ) from exc


# --------------------------------------------------------------------------------------------------------
# Persona labels -> margin categories, through the PUMS codes of the 2018 data dictionary
# --------------------------------------------------------------------------------------------------------

_CODE_GROUPS: dict[str, tuple[tuple[int, int, str | None], ...]] = {
    "RAC2P": (
        (1, 1, "White alone"),
        (2, 2, "Black or African American alone"),
        (3, 37, "American Indian and Alaska Native alone"),
        (38, 59, "Asian alone"),
        (60, 66, "Native Hawaiian and Other Pacific Islander alone"),
        (67, 67, "Some Other Race alone"),
        (68, 68, "Two or More Races"),
    ),
    "SCHL": (
        (1, 11, "Less than 9th grade"),
        (12, 15, "9th to 12th grade no diploma"),
        (16, 17, "High school graduate (includes equivalency)"),
        (18, 19, "Some college no degree"),
        (20, 20, "Associate's degree"),
        (21, 21, "Bachelor's degree"),
        (22, 24, "Graduate or professional degree"),
    ),
    "MAR": (
        (1, 1, "Now married except separated"),
        (2, 2, "Widowed"),
        (3, 3, "Divorced"),
        (4, 4, "Separated"),
        (5, 5, "Never married"),
    ),
    "ESR": (
        (1, 2, "Civilian employed"),
        (3, 3, "Unemployed"),
        (4, 5, "Armed Forces"),
        (6, 6, "Not in labor force"),
    ),
    "CIT": (
        (1, 3, "Native"),
        (4, 4, "Foreign born naturalized U.S. citizen"),
        (5, 5, "Foreign born not a U.S. citizen"),
    ),
    "MIL": ((1, 1, None), (2, 2, "Veteran"), (3, 4, "Nonveteran")),
    "HICOV": ((1, 1, "With health insurance coverage"), (2, 2, "No health insurance coverage")),
    "HHL": (
        (1, 1, "English only"),
        (2, 2, "Spanish"),
        (3, 3, "Other Indo-European languages"),
        (4, 4, "Asian and Pacific Island languages"),
        (5, 5, "Other languages"),
    ),
}
"""PUMS code ranges -> margin category (``None``: outside the item's universe, e.g. MIL 1 "Now on active
duty" for civilian items). RAC2P 01-68 nest in the B02001 races (RAC1P); "All combinations of Asian races
only" is Asian alone, as in B02001. SCHL groups follow DP02_0059-0065; MIL 2 "On active duty in the past,
but not now" is a veteran, training-only service (3) is not (DP02 veteran status)."""

ACTIVE_DUTY = "Now on active duty"
"""The veteran-status label (MIL 1) of persons in the Armed Forces, outside the civilian universes."""


@cache
def margin_label_groups(variable: str) -> dict[str, str | None]:
    """Persona label -> margin category for one PUMS variable, from the shipped 2018 data dictionary.

    The label is the persona wording (:data:`persona_lab.census._decode.WORDING`) of the dictionary label;
    both the 2018 wording and the persona wording are keys (the codes are the same in 2018-2021).
    """
    from persona_lab.census._decode import WORDING
    from persona_lab.census._dictionary import SHIPPED_DICTIONARY_DIR, read_dictionary

    d = read_dictionary(SHIPPED_DICTIONARY_DIR / "PUMS_Data_Dictionary_2018.csv")
    out: dict[str, str | None] = {}
    for code, label in d[variable].codes.items():
        if not code.isdigit():
            continue
        group = next((g for lo, hi, g in _CODE_GROUPS[variable] if lo <= int(code) <= hi), "?")
        if group == "?":
            raise PersonaLabError(f"{variable} code {code} ({label!r}) falls in no national margin category")
        out[label] = group
        out[WORDING.get(variable, {}).get(label, label)] = group
        if variable == "RAC2P" and label == "Guamanian or Chamorro alone":
            out["Chamorro alone"] = group
    return out


AGE_GROUPS: tuple[tuple[int, str], ...] = (
    (0, "under 18"),
    (18, "18-24"),
    (25, "25-34"),
    (35, "35-44"),
    (45, "45-54"),
    (55, "55-64"),
    (65, "65+"),
)
"""B01001 age groups (first age, label)."""

INCOME_GROUPS: tuple[tuple[float, str], ...] = (
    (10_000, "$1 to $9999 or loss"),
    (15_000, "$10000 to $14999"),
    (25_000, "$15000 to $24999"),
    (35_000, "$25000 to $34999"),
    (50_000, "$35000 to $49999"),
    (65_000, "$50000 to $64999"),
    (75_000, "$65000 to $74999"),
)
"""B06010 income bands (upper bound exclusive, label) below the top band "$75000 or more"."""


def _age(frame: pd.DataFrame) -> np.ndarray:
    age = pd.to_numeric(frame["age"], errors="coerce").to_numpy(dtype=float)
    if np.isnan(age).any():
        row = int(np.flatnonzero(np.isnan(age))[0])
        raise PersonaLabError(
            f"persona frame row {row}, column 'age': not a number; every person needs an age"
        )
    return age


def _outside_as_none(values: np.ndarray, inside: np.ndarray) -> np.ndarray:
    out = np.asarray(values, dtype=object).copy()
    out[~inside] = None
    return out


def _mapped(frame: pd.DataFrame, column: str, variable: str, universe: np.ndarray) -> np.ndarray:
    """Margin category of ``column`` per row (looked up once per distinct label), ``None`` outside."""
    codes, uniq = pd.factorize(frame[column], use_na_sentinel=True)
    groups = margin_label_groups(variable)
    mapped = np.asarray([groups.get(str(u), "?") for u in uniq] + ["?"], dtype=object)[codes]
    unknown = universe & (mapped == "?")
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise PersonaLabError(
            f"persona frame row {row}, column {column!r}: label {frame[column].iloc[row]!r} has no {variable} "
            f"code of the 2018 data dictionary, so no national margin category; build the frame with "
            f"load_persona_frame"
        )
    return _outside_as_none(mapped, universe & (mapped != "?"))


def _sex(frame: pd.DataFrame) -> np.ndarray:
    sex = frame["sex"].astype(object).to_numpy()
    bad = (sex != "Male") & (sex != "Female")
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise PersonaLabError(
            f"persona frame row {row}, column 'sex': {sex[row]!r}, expected 'Male' or 'Female'"
        )
    return sex


def _age_sex(frame: pd.DataFrame) -> np.ndarray:
    starts = np.asarray([a for a, _ in AGE_GROUPS])
    band = np.searchsorted(starts, _age(frame), "right") - 1
    labels = np.asarray([f"{s} {b}" for s in ("Female", "Male") for _, b in AGE_GROUPS], dtype=object)
    return labels[(_sex(frame) == "Male") * len(starts) + band]


def _income(frame: pd.DataFrame) -> np.ndarray:
    age = _age(frame)
    income = pd.to_numeric(frame["income"], errors="coerce").to_numpy(dtype=float)
    universe = age >= 15
    missing = universe & np.isnan(income)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise PersonaLabError(
            f"persona frame row {row}, column 'income': missing for a person aged 15 or over"
        )
    uppers = np.asarray([u for u, _ in INCOME_GROUPS])
    labels = np.asarray([b for _, b in INCOME_GROUPS] + ["$75000 or more"], dtype=object)
    band = labels[np.searchsorted(uppers, np.nan_to_num(income), side="right")]
    band = np.where(income < 0, "$1 to $9999 or loss", np.where(income == 0, "No income", band))
    return _outside_as_none(band, universe)


def _civilian(frame: pd.DataFrame) -> np.ndarray:
    return (frame["veteran status"].astype(str) != ACTIVE_DUTY).to_numpy()


def _item(column: str, variable: str, universe: Callable[[pd.DataFrame], np.ndarray]) -> Callable:
    return lambda frame: _mapped(frame, column, variable, universe(frame))


def _not_in_group_quarters(frame: pd.DataFrame) -> np.ndarray:
    from persona_lab.census._decode import GROUP_QUARTERS

    return (frame["household language"].astype(str) != GROUP_QUARTERS).to_numpy()


@dataclass(frozen=True)
class RakedItem:
    """How one national margin constrains persona records.

    Attributes:
        item: The margin's item name.
        title: Panel title.
        attributes: The persona attributes the item reads.
        universe: Who is in the universe, in the persona frame's terms.
        categories: ``frame -> category per row`` (``None`` outside the universe).
    """

    item: str
    title: str
    attributes: tuple[str, ...]
    universe: str
    categories: Callable[[pd.DataFrame], np.ndarray]


RAKED_ITEMS: tuple[RakedItem, ...] = (
    RakedItem("age_sex", "Sex by age", ("age", "sex"), "everyone", _age_sex),
    RakedItem("sex", "Sex", ("sex",), "everyone", _sex),
    RakedItem(
        "race", "Race", ("race",), "everyone", _item("race", "RAC2P", lambda f: np.ones(len(f), dtype=bool))
    ),
    RakedItem(
        "education_25plus", "Education (25+)", ("education",), "age 25 and over",
        _item("education", "SCHL", lambda f: _age(f) >= 25),
    ),
    RakedItem(
        "marital_15plus", "Marital status (15+)", ("marital status",), "age 15 and over",
        _item("marital status", "MAR", lambda f: _age(f) >= 15),
    ),
    RakedItem(
        "employment_16plus", "Employment (16+)", ("employment status",), "age 16 and over",
        _item("employment status", "ESR", lambda f: _age(f) >= 16),
    ),
    RakedItem(
        "nativity", "Nativity and citizenship", ("citizenship",), "everyone",
        _item("citizenship", "CIT", lambda f: np.ones(len(f), dtype=bool)),
    ),
    RakedItem(
        "veteran_civilian_18plus", "Veterans (civilians 18+)", ("veteran status",),
        "age 18 and over, not on active duty",
        _item("veteran status", "MIL", lambda f: (_age(f) >= 18) & _civilian(f)),
    ),
    RakedItem(
        "health_insurance", "Health insurance (civilians)", ("health insurance",),
        "not on active duty (institutionalized residents cannot be told apart and stay inside)",
        _item("health insurance", "HICOV", _civilian),
    ),
    RakedItem(
        "language_5plus", "Language at home (5+)", ("household language",),
        "age 5 and over, in a household (the household language stands for the person's)",
        _item("household language", "HHL", lambda f: (_age(f) >= 5) & _not_in_group_quarters(f)),
    ),
    RakedItem("income_15plus", "Personal income (15+)", ("income",), "age 15 and over", _income),
)  # fmt: skip
"""The national margins raking matches, in order (each over its own universe)."""

NOT_RAKED_ITEMS: dict[str, str] = {
    "hispanic": "Hispanic origin is not a persona attribute (PERSONA has no such key)",
}
"""Published margins that are not raked, with the reason."""


def raked_attributes() -> tuple[str, ...]:
    """The persona attributes that some raked item constrains."""
    return tuple(dict.fromkeys(a for it in RAKED_ITEMS for a in it.attributes))


def national_comparison(
    frame: pd.DataFrame, weights: np.ndarray | None = None, margins: NationalMargins | None = None
) -> pd.DataFrame:
    """Shares of a persona frame (or personas table) beside the national margins, per raked item.

    Each item's shares are over the records in its universe (weighted by ``weights``, default each row
    once). Returns one row per item and category: ``item, title, universe, category, table, share, margin,
    order, records`` (``records``: rows in the item's universe).
    """
    margins = margins or load_national_margins()
    w = np.ones(len(frame)) if weights is None else np.asarray(weights, dtype=float)
    rows = []
    for it in RAKED_ITEMS:
        margin = margins[it.item]
        cats = it.categories(frame)
        inside = pd.notna(cats)
        sums = pd.Series(w[inside]).groupby(cats[inside].astype(str)).sum()
        total = float(sums.sum())
        unknown = sorted(set(sums.index) - set(margin.categories))
        if unknown:
            raise PersonaLabError(f"item {it.item!r}: categories {unknown} are not in the national margin")
        for i, (cat, table, share) in enumerate(
            zip(margin.categories, margin.tables, margin.shares, strict=True)
        ):
            rows.append(
                (it.item, it.title, it.universe, cat, table, float(sums.get(cat, 0.0)) / total if total else 0.0,
                 float(share), i, int(inside.sum()))
            )  # fmt: skip
    columns = ["item", "title", "universe", "category", "table", "share", "margin", "order", "records"]
    return pd.DataFrame(rows, columns=columns)


def national_tvd(comparison: pd.DataFrame) -> pd.Series:
    """TVD per item of a :func:`national_comparison` table (``0.5 * sum |share - margin|``)."""
    diff = (comparison["share"] - comparison["margin"]).abs()
    return (0.5 * diff.groupby(comparison["item"], sort=False).sum()).rename("tvd")
