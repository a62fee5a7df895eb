"""Decode PUMS person records into the persona frame (see :mod:`persona_lab.census._schema`).

Two layers, kept apart on purpose:

1. **Decoding** maps every code to its label with the data dictionary *of the data's own year*
   (:class:`DataDictionary`); an unknown code or a missing column is an error naming the file, the
   column, the year and the code.
2. **Wording** turns official labels into the vocabulary of PERSONA's released personas, the same for
   every year, so persona marginals of different years are comparable. Every choice is listed in the
   tables below and was checked against the released personas (``personas_sample100.json``):

   * ``N/A (...)`` labels of always-present attributes read ``"Not applicable"``; of optional
     attributes they become ``None`` (the attribute is left out of the persona).
   * ``CIT``: the 2021 dictionary wording ("Born in the United States", "Not a U.S. citizen"), which
     is PERSONA's; the 2018/2019 labels ("Born in the U.S.", ...) are mapped onto it.
   * ``MIL`` 4 "Never served in the military" -> "Non-Veteran"; ``DIS`` 2 "Without a disability" ->
     "None" (PERSONA's words).
   * ``DREM``/``DEYE``/``DEAR`` "No" -> "No cognitive/vision/hearing difficulty", "Yes" stays "Yes";
     ``FER`` "Yes"/"No" -> "Gave birth within the past 12 months"/"No birth within the past 12
     months" (the dictionary question, since a bare "Yes" is ambiguous in a persona).
   * ``FPARC`` blank for a household that is not a family -> "No family" (PERSONA's words).
   * Group-quarters residents: household type, family presence and household language read
     "Not applicable (group quarters)".
   * ``income`` = ``PINCP`` in dollars of the survey year (not ADJINC-adjusted: PERSONA's incomes are
     the rounded raw values); blank (under 15 years) -> ``0.0``.

3. **Coarse categories** (``detail="coarse"``, the default) for the four variables with hundreds of
   codes, because sampling noise alone puts their marginals further than TVD 0.02 from the microdata
   at N = 20,000 (measured on 12 states: ANC1P 0.024, POBP 0.023, INDP 0.028, OCCP 0.041):
   industry = sector of the ``INDP`` label prefix (:data:`INDUSTRY_SECTORS`), occupation = major
   group of the ``OCCP`` label prefix (:data:`OCCUPATION_GROUPS`), ancestry = :func:`ancestry_group`,
   place of birth = :func:`birthplace_group`. ``detail="full"`` keeps the full labels.
   Race is ``RAC2P`` (detailed race, 68 codes, PERSONA's wording such as "Korean alone"); its
   marginal stays within TVD 0.01 at N = 20,000.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from persona_lab.census._dictionary import DataDictionary, load_dictionary, read_dictionary
from persona_lab.census._households import derive_household_codes
from persona_lab.census._pums import read_pums, relationship_column
from persona_lab.census._schema import CENSUS_ATTRIBUTES, META_COLUMNS, OPTIONAL_ATTRIBUTES
from persona_lab.errors import PersonaLabError

Detail = Literal["coarse", "full"]
GroupQuarters = Literal["keep", "drop"]

NOT_APPLICABLE = "Not applicable"
GROUP_QUARTERS = "Not applicable (group quarters)"
NO_FAMILY = "No family"

ATTRIBUTE_VARIABLES: dict[str, str] = {
    "age": "AGEP",
    "sex": "SEX",
    "race": "RAC2P",
    "ancestry": "ANC1P",
    "household language": "HHL",
    "education": "SCHL",
    "employment status": "ESR",
    "class of worker": "COW",
    "industry category": "INDP",
    "occupation category": "OCCP",
    "income": "PINCP",
    "marital status": "MAR",
    "household type": "HHT2",
    "family presence and age": "FPARC",
    "place of birth": "POBP",
    "citizenship": "CIT",
    "veteran status": "MIL",
    "disability": "DIS",
    "health insurance": "HICOV",
    "cognitive difficulty": "DREM",
    "ability to speak english": "ENG",
    "vision difficulty": "DEYE",
    "fertility": "FER",
    "hearing difficulty": "DEAR",
}
"""Persona attribute -> PUMS variable it is decoded from (HHL, HHT2, FPARC derived per household)."""

WORDING: dict[str, dict[str, str]] = {
    "CIT": {
        "Born in the U.S.": "Born in the United States",
        "Born in Puerto Rico, Guam, the U.S. Virgin Islands, or the Northern Marianas": (
            "Born in Puerto Rico, Guam, the U.S. Virgin Islands, or Northern Marianas"
        ),
        "Born abroad of American parent(s)": "Born abroad of U.S. citizen parent or parents",
        "Not a citizen of the U.S.": "Not a U.S. citizen",
    },
    "MIL": {"Never served in the military": "Non-Veteran"},
    "DIS": {"Without a disability": "None"},
    "DREM": {"No": "No cognitive difficulty"},
    "DEYE": {"No": "No vision difficulty"},
    "DEAR": {"No": "No hearing difficulty"},
    "FER": {"Yes": "Gave birth within the past 12 months", "No": "No birth within the past 12 months"},
    "RAC2P": {"Guamanian or Chamorro alone": "Chamorro alone"},
}
"""Official label (any year) -> PERSONA wording, per variable; labels not listed are kept."""

HHT2_LABELS: dict[str, str] = {
    "01": "Married couple household with children of the householder less than 18",
    "02": "Married couple household, no children of the householder less than 18",
    "03": "Cohabiting couple household with children of the householder less than 18",
    "04": "Cohabiting couple household, no children of the householder less than 18",
    "05": "Female householder, no spouse/partner present, living alone",
    "06": "Female householder, no spouse/partner present, with children of the householder less than 18",
    "07": "Female householder, no spouse/partner present, with relatives, no children of the householder less than 18",
    "08": "Female householder, no spouse/partner present, only nonrelatives present",
    "09": "Male householder, no spouse/partner present, living alone",
    "10": "Male householder, no spouse/partner present, with children of the householder less than 18",
    "11": "Male householder, no spouse/partner present, with relatives, no children of the householder less than 18",
    "12": "Male householder, no spouse/partner present, only nonrelatives present",
}
"""HHT2 labels of the 2019 and 2021 PUMS data dictionaries. HHT2 first appears in the 2019 dictionary;
for earlier years (whose dictionaries lack it) households are typed with the same rules and these labels."""

INDUSTRY_SECTORS: dict[str, str] = {
    "AGR": "Agriculture, Forestry, Fishing, and Hunting",
    "EXT": "Mining, Quarrying, and Oil and Gas Extraction",
    "UTL": "Utilities",
    "CON": "Construction",
    "MFG": "Manufacturing",
    "WHL": "Wholesale Trade",
    "RET": "Retail Trade",
    "TRN": "Transportation and Warehousing",
    "INF": "Information",
    "FIN": "Finance, Insurance, and Real Estate",
    "PRF": "Professional, Scientific, Management, and Administrative Services",
    "EDU": "Education",
    "MED": "Healthcare",
    "SCA": "Social Assistance",
    "ENT": "Arts, Entertainment, Recreation, Accommodation, and Food Services",
    "SRV": "Other Services",
    "ADM": "Public Administration",
    "MIL": "Military",
}
"""``INDP`` label prefix -> industry sector (the Census industry code list's sector groups, named
after NAICS 2017 sectors; short forms "Finance", "Education", "Healthcare" lead, as in PERSONA)."""

OCCUPATION_GROUPS: dict[str, str] = {
    "MGR": "Management",
    "BUS": "Business Operations",
    "FIN": "Financial Specialists",
    "CMM": "Computer and Mathematical",
    "ENG": "Architecture and Engineering",
    "SCI": "Life, Physical, and Social Science",
    "CMS": "Community and Social Service",
    "LGL": "Legal",
    "EDU": "Educational Instruction and Library",
    "ENT": "Arts, Design, Entertainment, Sports, and Media",
    "MED": "Healthcare Practitioners and Technical",
    "HLS": "Healthcare Support",
    "PRT": "Protective Service",
    "EAT": "Food Preparation and Serving",
    "CLN": "Building and Grounds Cleaning and Maintenance",
    "PRS": "Personal Care and Service",
    "SAL": "Sales and Related",
    "OFF": "Office and Administrative Support",
    "FFF": "Farming, Fishing, and Forestry",
    "CON": "Construction",
    "EXT": "Extraction",
    "RPR": "Installation, Maintenance, and Repair",
    "PRD": "Production",
    "TRN": "Transportation and Material Moving",
    "MIL": "Military",
}
"""``OCCP`` label prefix -> occupation major group (2018 SOC major group titles)."""

UNEMPLOYED_LONG = "Unemployed and last worked 5 years ago or earlier or never worked"
"""Wording for ``INDP``/``OCCP`` 9920 (its dictionary label changes between years); the ``COW`` 9 label."""

_PREFIX = re.compile(r"^([A-Z]{3})[-_ ]")

ANCESTRY_KEPT: frozenset[str] = frozenset(
    {"022", "026", "032", "050", "051", "082", "088", "089", "142", "210", "261", "902", "939", "021"}
)
"""ANC1P codes kept as their own category: the largest first-ancestry groups of the US (ACS table
B04006: German, Irish, English, American, Italian, Polish, French, Scottish, Norwegian, Dutch, Swedish;
Mexican, Puerto Rican; African American)."""

_ANCESTRY_GROUPS: tuple[tuple[int, int, str], ...] = (
    (0, 0, "Not reported"),
    (1, 99, "Other Western or Northern European"),
    (100, 179, "Eastern European"),
    (180, 199, "European"),
    (200, 299, "Other Hispanic or Latino"),
    (300, 399, "Caribbean or South American, non-Hispanic"),
    (400, 499, "Middle Eastern or North African"),
    (500, 599, "Sub-Saharan African"),
    (600, 699, "South Asian"),
    (700, 799, "East or Southeast Asian"),
    (800, 899, "Pacific Islander, Australian or New Zealander"),
    (900, 907, "African American"),
    (908, 922, "American Indian or Alaska Native"),
    (923, 928, "White"),
    (929, 929, "German"),
    (930, 938, "Canadian or French Canadian"),
    (939, 994, "American"),
    (995, 995, "Mixture"),
    (996, 998, "Other groups"),
    (999, 999, "Not reported"),
)
"""ANC1P code ranges -> ancestry group (the regional blocks of the Census ancestry code list)."""

_BIRTHPLACE_GROUPS: tuple[tuple[int, int, str], ...] = (
    (100, 169, "Europe"),
    (200, 254, "Asia"),
    (300, 301, "Canada or Bermuda"),
    (303, 303, "Mexico"),
    (310, 316, "Central America"),
    (321, 344, "Caribbean"),
    (360, 399, "South America"),
    (400, 469, "Africa"),
    (500, 554, "Oceania"),
)
"""POBP code ranges of foreign birthplaces -> world region (Census place-of-birth code blocks).
Mexico, the largest single country of birth of the US foreign-born, stays by itself."""


def ancestry_group(codes: pd.Series, labels: pd.Series) -> pd.Series:
    """Coarse ancestry: the label for :data:`ANCESTRY_KEPT` codes, else the code's regional group.

    Args:
        codes: Normalized 3-character ``ANC1P`` codes.
        labels: Their decoded labels (same index).
    """
    num = pd.to_numeric(codes, errors="coerce").to_numpy()
    out = np.full(len(codes), "Other groups", dtype=object)
    for lo, hi, name in _ANCESTRY_GROUPS:
        out[(num >= lo) & (num <= hi)] = name
    kept = codes.isin(ANCESTRY_KEPT).to_numpy()
    out[kept] = labels.to_numpy()[kept]
    return pd.Series(out, index=codes.index, dtype=object)


def birthplace_group(codes: pd.Series, labels: pd.Series) -> pd.Series:
    """Coarse place of birth: US states and island areas by label (``"Texas/TX"``), foreign
    birthplaces by world region (:data:`_BIRTHPLACE_GROUPS`).
    """
    num = pd.to_numeric(codes, errors="coerce").to_numpy()
    out = labels.to_numpy(dtype=object).copy()
    for lo, hi, name in _BIRTHPLACE_GROUPS:
        out[(num >= lo) & (num <= hi)] = name
    return pd.Series(out, index=codes.index, dtype=object)


def prefix_groups(dictionary: DataDictionary, variable: str, names: dict[str, str]) -> dict[str, str]:
    """Code -> coarse group for ``INDP``/``OCCP`` from the three-letter prefix of each label.

    A few labels lack the prefix (2018 OCCP 1555 "Other Engineering Technologists ..."); such a code
    takes the prefix shared by the codes listed just before and after it. The long-term unemployed
    code (label "Unemployed ...") reads :data:`UNEMPLOYED_LONG`; ``N/A`` reads "Not applicable".
    """
    var = dictionary[variable]
    items = list(var.codes.items())
    prefixes: list[str | None] = []
    for _, label in items:
        m = _PREFIX.match(label)
        prefixes.append(m.group(1) if m else None)
    out: dict[str, str] = {}
    for i, (code, label) in enumerate(items):
        p = prefixes[i]
        if p is None and 0 < i < len(items) - 1 and prefixes[i - 1] == prefixes[i + 1]:
            p = prefixes[i - 1]
        if p is not None and p in names:
            out[code] = names[p]
        elif label.startswith("N/A"):
            out[code] = NOT_APPLICABLE
        elif label.lower().startswith("unemployed"):
            out[code] = UNEMPLOYED_LONG
        else:
            raise PersonaLabError(
                f"{dictionary._where()}: {variable} code {code!r} has label {label!r} without a known "
                f"group prefix; persona_lab needs an update for this dictionary"
            )
    return out


def _label_series(
    raw: pd.DataFrame, var: str, dictionary: DataDictionary, *, optional: bool = False
) -> pd.Series:
    """Decode ``raw[var]`` per source file (errors name the file), then apply the wording layer."""
    labels = dictionary.decode(var, raw[var], file=raw["source_file"])
    codes, uniques = pd.factorize(labels)
    wording = WORDING.get(var, {})
    final = [
        (None if optional else NOT_APPLICABLE) if u.startswith("N/A") else wording.get(u, u) for u in uniques
    ]
    return pd.Series(np.asarray(final, dtype=object)[codes], index=raw.index, dtype=object)


def _household_label(
    codes: pd.Series, var: str, dictionary: DataDictionary, gq: pd.Series, fallback: dict[str, str]
) -> pd.Series:
    table = dict(dictionary[var].codes) if var in dictionary else dict(fallback)
    labels = codes.map(table)
    labels = labels.where(~gq, GROUP_QUARTERS)
    if var == "FPARC":
        labels = labels.where(gq | (codes != "b"), NO_FAMILY)
    missing = labels.isna()
    if missing.any():
        raise PersonaLabError(
            f"{dictionary._where()}: derived {var} code {codes[missing].iloc[0]!r} is not in the "
            f"{dictionary.year} data dictionary"
        )
    return labels


def decode_persons(
    raw: pd.DataFrame,
    dictionary: DataDictionary,
    *,
    detail: Detail = "coarse",
    group_quarters: GroupQuarters = "keep",
) -> pd.DataFrame:
    """Decode raw PUMS person records (:func:`read_pums` output) into a persona frame.

    Args:
        raw: Raw records of one ACS year.
        dictionary: That year's data dictionary.
        detail: ``"coarse"`` groups ancestry, place of birth, industry and occupation (see module
            docstring); ``"full"`` keeps their full dictionary labels.
        group_quarters: ``"keep"`` group-quarters residents (household attributes read
            "Not applicable (group quarters)") or ``"drop"`` them (a household population only).

    Returns:
        The persona frame: ``CENSUS_ATTRIBUTES``, ``OPTIONAL_ATTRIBUTES`` and ``META_COLUMNS``.
    """
    if detail not in ("coarse", "full"):
        raise PersonaLabError(f"detail={detail!r}: expected 'coarse' or 'full'")
    if group_quarters not in ("keep", "drop"):
        raise PersonaLabError(f"group_quarters={group_quarters!r}: expected 'keep' or 'drop'")
    year = dictionary.year
    if raw.empty:
        raise PersonaLabError("no person records to decode")
    serial_year = raw["SERIALNO"].astype(str).str[:4]
    if (serial_year != str(year)).any():
        bad = raw.loc[serial_year != str(year)].iloc[0]
        raise PersonaLabError(
            f"{bad['source_file']}: SERIALNO {bad['SERIALNO']} is an ACS {bad['SERIALNO'][:4]} record but "
            f"the data dictionary {dictionary._where()} is for {year}; use the dictionary of the data's year"
        )
    rel = relationship_column(year)
    for var in (*ATTRIBUTE_VARIABLES.values(), rel):
        if var in ("HHL", "HHT2", "FPARC"):
            continue
        if var not in dictionary:
            raise PersonaLabError(
                f"{dictionary._where()}: the {year} data dictionary has no variable {var}, which ACS {year} "
                f"person files need; use the dictionary of the data's own year"
            )
    # Validate the relationship codes against the dictionary before deriving households.
    dictionary.decode(rel, raw[rel], file=raw["source_file"])
    gq = raw["SERIALNO"].astype(str).str.contains("GQ")
    if group_quarters == "drop":
        raw = raw.loc[~gq]
        gq = gq.loc[raw.index]
    house = derive_household_codes(raw, year)

    out = pd.DataFrame(index=raw.index)
    _label_series(raw, "AGEP", dictionary)  # validates the codes against the dictionary
    out["age"] = pd.to_numeric(raw["AGEP"], errors="raise").astype(int)
    out["sex"] = _label_series(raw, "SEX", dictionary)
    out["race"] = _label_series(raw, "RAC2P", dictionary)
    anc = _label_series(raw, "ANC1P", dictionary)
    if detail == "coarse":
        anc = ancestry_group(dictionary.normalize("ANC1P", raw["ANC1P"]), anc)
    out["ancestry"] = anc
    out["household language"] = _household_label(house["HHL"], "HHL", dictionary, gq, {})
    out["education"] = _label_series(raw, "SCHL", dictionary)
    out["employment status"] = _label_series(raw, "ESR", dictionary)
    out["class of worker"] = _label_series(raw, "COW", dictionary)
    for attr, var, names in (
        ("industry category", "INDP", INDUSTRY_SECTORS),
        ("occupation category", "OCCP", OCCUPATION_GROUPS),
    ):
        labels = _label_series(raw, var, dictionary)
        if detail == "coarse":
            groups = prefix_groups(dictionary, var, names)
            labels = dictionary.normalize(var, raw[var]).map(groups)
        else:
            labels = labels.where(~labels.str.lower().str.startswith("unemployed"), UNEMPLOYED_LONG)
        out[attr] = labels
    _label_series(raw, "PINCP", dictionary)
    income = pd.to_numeric(raw["PINCP"].replace("", np.nan), errors="raise").astype(float)
    out["income"] = income.fillna(0.0)
    out["marital status"] = _label_series(raw, "MAR", dictionary)
    out["household type"] = _household_label(house["HHT2"], "HHT2", dictionary, gq, HHT2_LABELS)
    out["family presence and age"] = _household_label(house["FPARC"], "FPARC", dictionary, gq, {})
    pob = _label_series(raw, "POBP", dictionary)
    if detail == "coarse":
        pob = birthplace_group(dictionary.normalize("POBP", raw["POBP"]), pob)
    out["place of birth"] = pob
    out["citizenship"] = _label_series(raw, "CIT", dictionary)
    out["veteran status"] = _label_series(raw, "MIL", dictionary)
    out["disability"] = _label_series(raw, "DIS", dictionary)
    out["health insurance"] = _label_series(raw, "HICOV", dictionary)
    for attr in OPTIONAL_ATTRIBUTES:
        out[attr] = _label_series(raw, ATTRIBUTE_VARIABLES[attr], dictionary, optional=True)
    out["weight"] = raw["PWGTP"].astype(float)
    out["serialno"] = raw["SERIALNO"].astype(str)
    out["state"] = raw["state"].astype(str)
    out = out[[*CENSUS_ATTRIBUTES, *OPTIONAL_ATTRIBUTES, *META_COLUMNS]].reset_index(drop=True)
    for col in out.columns:
        if col not in ("age", "income", "weight"):
            out[col] = out[col].astype(object)
    return out


def load_persona_frame(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    year: int,
    dictionary: DataDictionary | str | os.PathLike[str] | None = None,
    *,
    detail: Detail = "coarse",
    group_quarters: GroupQuarters = "keep",
) -> pd.DataFrame:
    """Read ACS PUMS person files and decode them into the persona frame.

    Args:
        paths: ``psam_pNN.csv`` / ``csv_pXX.zip`` files (or folders) of one ACS year; several states
            combine into one population.
        year: ACS year of the files.
        dictionary: The year's data dictionary, a path to it, or ``None`` to resolve it with
            :func:`load_dictionary` (next to the files, then the cache, then a download).
        detail: See :func:`decode_persons`.
        group_quarters: See :func:`decode_persons`.

    Returns:
        One row per person: the persona attributes in PERSONA's wording plus ``weight`` (PWGTP),
        ``serialno`` and ``state``.

    Raises:
        PersonaLabError: On unreadable files, missing columns, unknown codes, or a dictionary of
            another year.
    """
    path_list = [Path(paths)] if isinstance(paths, str | os.PathLike) else [Path(p) for p in paths]
    if dictionary is None:
        dictionary = load_dictionary(year, near=list(path_list))
    elif not isinstance(dictionary, DataDictionary):
        dictionary = read_dictionary(dictionary)
    if dictionary.year != year:
        raise PersonaLabError(
            f"{dictionary._where()}: this is the ACS {dictionary.year} data dictionary but the data are "
            f"ACS {year}; variables and codes differ between years, use PUMS_Data_Dictionary_{year}.csv"
        )
    raw = read_pums(path_list, year)
    return decode_persons(raw, dictionary, detail=detail, group_quarters=group_quarters)


def load_states(
    year: int,
    states: str | Iterable[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    mirror: str | os.PathLike[str] | None = None,
    detail: Detail = "coarse",
    group_quarters: GroupQuarters = "keep",
) -> pd.DataFrame:
    """One call from (year, states) to the persona frame: fetch (or find) the files, then decode.

    The person zips and the data dictionary come from ``mirror``, the download cache or the Census
    Bureau (:func:`download_pums`, :func:`download_dictionary`).

    Args:
        year: ACS year (1-year files).
        states: Postal abbreviations or FIPS codes, e.g. ``["VT", "WY"]``.
        cache_dir: Download cache root (default ``$PERSONA_LAB_CACHE`` or ``~/.cache/persona_lab``).
        mirror: Local directory holding ``csv_p{st}.zip`` and ``PUMS_Data_Dictionary_{year}.csv``.
        detail: See :func:`decode_persons`.
        group_quarters: See :func:`decode_persons`.
    """
    from persona_lab.census._download import download_dictionary, download_pums

    paths = download_pums(year, states, cache_dir=cache_dir, mirror=mirror)
    dictionary = read_dictionary(download_dictionary(year, cache_dir=cache_dir, mirror=mirror))
    return load_persona_frame(paths, year, dictionary, detail=detail, group_quarters=group_quarters)
