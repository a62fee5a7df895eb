"""Household attributes derived from the members of each household (same ``SERIALNO``).

PERSONA uses three housing-record variables: household type ``HHT2``, presence and age of related
children ``FPARC`` and household language ``HHL``. The person files do not carry them, so they are
rebuilt here from every member's relationship to the reference person (``RELP`` up to 2018,
``RELSHIPP`` from 2019), age, sex, marital status and language, following the Census Bureau's
definitions (ACS Subject Definitions, "Household Type and Relationship", "Related Children",
"Household Language"). Every person of a household receives the household's codes.

Group quarters (``SERIALNO`` containing ``GQ``: dormitories, nursing homes, prisons, barracks) are not
households; like the housing file, which codes them blank ("N/A (GQ/vacant)"), they get the blank code
of each variable. :func:`load_persona_frame` labels them ``"Not applicable (group quarters)"``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from persona_lab.census._pums import relationship_column
from persona_lab.errors import PersonaLabError

Role = Literal[
    "householder",
    "spouse",
    "partner",
    "child",
    "stepchild",
    "sibling",
    "parent",
    "grandchild",
    "parent_in_law",
    "child_in_law",
    "other_relative",
    "roomer",
    "roommate",
    "foster_child",
    "other_nonrelative",
    "group_quarters",
]
"""A person's relationship to the household's reference person (the householder)."""

RELP_ROLES: dict[str, Role] = {
    "00": "householder",
    "01": "spouse",
    "02": "child",
    "03": "child",
    "04": "stepchild",
    "05": "sibling",
    "06": "parent",
    "07": "grandchild",
    "08": "parent_in_law",
    "09": "child_in_law",
    "10": "other_relative",
    "11": "roomer",
    "12": "roommate",
    "13": "partner",
    "14": "foster_child",
    "15": "other_nonrelative",
    "16": "group_quarters",
    "17": "group_quarters",
}
"""``RELP`` (ACS up to 2018) -> role; codes and labels from the 2018 PUMS data dictionary."""

RELSHIPP_ROLES: dict[str, Role] = {
    "20": "householder",
    "21": "spouse",
    "22": "partner",
    "23": "spouse",
    "24": "partner",
    "25": "child",
    "26": "child",
    "27": "stepchild",
    "28": "sibling",
    "29": "parent",
    "30": "grandchild",
    "31": "parent_in_law",
    "32": "child_in_law",
    "33": "other_relative",
    "34": "roommate",
    "35": "foster_child",
    "36": "other_nonrelative",
    "37": "group_quarters",
    "38": "group_quarters",
}
"""``RELSHIPP`` (ACS 2019 and later) -> role; from the 2019 and 2021 PUMS data dictionaries
(same- and opposite-sex spouses are both ``spouse``, both kinds of unmarried partner ``partner``)."""

RELATIVES: frozenset[str] = frozenset(
    {
        "spouse",
        "child",
        "stepchild",
        "sibling",
        "parent",
        "grandchild",
        "parent_in_law",
        "child_in_law",
        "other_relative",
    }
)
"""Roles related to the householder by birth, marriage or adoption. Unmarried partners, roommates,
roomers and foster children are nonrelatives (ACS Subject Definitions, "Relationship to Householder")."""

LANGUAGE_ORDER: tuple[str, ...] = (
    "householder",
    "spouse",
    "parent",
    "sibling",
    "child",
    "grandchild",
    "parent_in_law",
    "child_in_law",
    "other_relative",
    "stepchild",
    "partner",
    "roommate",
    "roomer",
    "foster_child",
    "other_nonrelative",
)
"""Order in which members are examined for the household language: householder, spouse, parent,
sibling, child, grandchild, other relative, stepchild, unmarried partner, housemate or roommate, roomer
or boarder, foster child, other nonrelative (Census Bureau definition of household language)."""


def relationship_roles(codes: pd.Series, year: int) -> pd.Series:
    """Map raw ``RELP`` (``year <= 2018``) or ``RELSHIPP`` codes to :data:`Role` names.

    Raises:
        PersonaLabError: On a code outside the year's relationship variable.
    """
    var = relationship_column(year)
    table = RELP_ROLES if var == "RELP" else RELSHIPP_ROLES
    norm = codes.astype(str).str.strip().str.zfill(2)
    roles = norm.map(table)
    if roles.isna().any():
        bad = norm[roles.isna()].iloc[0]
        raise PersonaLabError(
            f"column {var} has code {bad!r}, not a relationship code of ACS {year} "
            f"(expected {min(table)}..{max(table)}); check the year of the data"
        )
    return roles


_LANP_EXPECTED = "expected a 4-digit ACS 2016+ language code"


def _invalid_lanp(lanp: pd.Series) -> pd.Series:
    """True where ``lanp`` is not a code of the ACS 2016+ language list (1000-9999)."""
    num = pd.to_numeric(lanp, errors="coerce")
    return num.isna() | (num < 1000) | (num > 9999)


def _where(persons: pd.DataFrame, index: object) -> str:
    """``"<file>: "`` for a row of :func:`read_pums` output (which names each row's file), else ``""``."""
    return f"{persons.at[index, 'source_file']}: " if "source_file" in persons.columns else ""


def language_group(lanp: pd.Series) -> pd.Series:
    """The ``HHL`` group code of detailed language codes ``LANP`` (ACS 2016+ language code list).

    The Census Bureau's four-group classification (ACS Subject Definitions, "Language Spoken at
    Home"): ``2`` Spanish (1200); ``3`` Other Indo-European languages (1000-1564 except Spanish:
    Germanic, Romance, Slavic, Baltic, Celtic, Greek, Albanian, Armenian, Iranian and Indic languages
    and the European-based creoles such as Haitian); ``4`` Asian and Pacific Island languages
    (1675-3600: Turkish, Mongolian, the Dravidian languages of India, Chinese, Japanese, Korean,
    Southeast Asian, Philippine and Pacific languages); ``5`` Other languages (Finnish 1565 and
    Hungarian 1582, which are Uralic; 4500+: Afro-Asiatic, African, Native North American,
    Central and South American, other and unspecified).

    Raises:
        PersonaLabError: On a code outside 1000-9999.
    """
    invalid = _invalid_lanp(lanp)
    if invalid.any():
        raise PersonaLabError(f"column LANP has code {lanp[invalid].iloc[0]!r}; {_LANP_EXPECTED}")
    num = pd.to_numeric(lanp)
    group = np.select(
        [num == 1200, num <= 1564, num < 1675, num <= 3600],
        ["2", "3", "5", "4"],
        default="5",
    )
    return pd.Series(group, index=lanp.index, dtype=object)


def derive_household_codes(persons: pd.DataFrame, year: int) -> pd.DataFrame:
    """Derive ``HHT2``, ``FPARC`` and ``HHL`` codes for every person from their household's members.

    Args:
        persons: Raw person records (strings as in the PUMS file) with ``SERIALNO``, ``SPORDER``,
            ``AGEP``, ``SEX``, ``MAR``, ``LANX``, ``LANP`` and ``RELP`` (``year <= 2018``) or
            ``RELSHIPP``. Households must be complete (all members present).
        year: ACS year; selects the relationship variable.

    Returns:
        A frame on ``persons.index`` with string columns ``HHT2`` (``"01"``..``"12"``), ``FPARC``
        (``"1"``..``"4"``) and ``HHL`` (``"1"``..``"5"``), coded as in the 2019+ data dictionaries;
        blank codes (``"bb"``, ``"b"``, ``"b"``) for group quarters and, for ``FPARC``, nonfamily
        households.

    Rules (householder = the reference person, relationship ``00``/``20``):

    * **HHT2** (household/family type, includes cohabiting). Own children = never-married (``MAR``
      5) sons and daughters of the householder by birth, adoption or marriage (stepchildren) under 18.
      Spouse present: ``01`` with own children, else ``02``. Else unmarried partner present: ``03``
      with own children, else ``04``. Else by the householder's sex (female ``05``-``08``, male
      ``09``-``12``): living alone (one member); with own children; with relatives, no own children;
      only nonrelatives present.
    * **FPARC** (family presence and age of related children). A family household has at least one
      member related to the householder (:data:`RELATIVES`, including the spouse); otherwise ``b``
      (not a family). Related children are members under 18 related to the householder other than
      the spouse, of any marital status (foster children are not related). ``1`` only under 5,
      ``2`` only 5 to 17, ``3`` both, ``4`` none.
    * **HHL** (household language). ``1`` English only when no member aged 5+ speaks another
      language at home (``LANX`` 2 or blank); else the :func:`language_group` of the language of the
      first member aged 5+ who speaks one, in :data:`LANGUAGE_ORDER` (ties by ``SPORDER``).

    Raises:
        PersonaLabError: If a household has no or several reference persons (an incomplete file).
    """
    rel_col = relationship_column(year)
    n = len(persons)
    serial = persons["SERIALNO"].astype(str).to_numpy()
    gq = pd.Series(np.char.find(serial.astype(str), "GQ") >= 0, index=persons.index)
    out = pd.DataFrame(
        {"HHT2": np.full(n, "bb", dtype=object), "FPARC": np.full(n, "b", dtype=object)},
        index=persons.index,
    )
    out["HHL"] = "b"
    needed = ["SERIALNO", "SPORDER", "AGEP", "SEX", "MAR", "LANX", "LANP", rel_col]
    hh = persons.loc[~gq.to_numpy(), needed]
    if hh.empty:
        return out
    role = relationship_roles(hh[rel_col], year)
    if (role == "group_quarters").any():
        bad = hh.loc[role == "group_quarters"].iloc[0]
        raise PersonaLabError(
            f"{_where(persons, bad.name)}SERIALNO {bad['SERIALNO']}: housing-unit person with a group-quarters relationship code "
            f"{bad[rel_col]!r}"
        )
    age = pd.to_numeric(hh["AGEP"], errors="coerce")
    key = hh["SERIALNO"].astype(str)
    is_head = role == "householder"
    heads = is_head.groupby(key).sum()
    if (heads != 1).any():
        bad_serial = heads.index[(heads != 1).to_numpy()][0]
        count = int(heads[bad_serial])
        first_member = key.index[(key == bad_serial).to_numpy()][0]
        raise PersonaLabError(
            f"{_where(persons, first_member)}SERIALNO {bad_serial}: household has {count} reference persons ({rel_col}), expected 1; "
            f"pass complete PUMS person files (every member of a household)"
        )
    never_married = hh["MAR"].astype(str).str.strip() == "5"
    own_child = role.isin(["child", "stepchild"]) & (age < 18) & never_married
    relative = role.isin(RELATIVES)
    related_child = relative & (role != "spouse") & (age < 18)
    flags = pd.DataFrame(
        {
            "size": 1,
            "spouse": role == "spouse",
            "partner": role == "partner",
            "own_child": own_child,
            "relative": relative,
            "rc_under5": related_child & (age < 5),
            "rc_5to17": related_child & (age >= 5),
        },
        index=hh.index,
    )
    agg = flags.groupby(key).sum()
    head_sex = (
        hh.loc[is_head.to_numpy()].set_index(key[is_head]).loc[agg.index, "SEX"].astype(str).str.strip()
    )

    has = {c: agg[c].to_numpy() > 0 for c in ("spouse", "partner", "own_child", "relative")}
    base = np.where(head_sex.to_numpy() == "2", 5, 9)
    alone = agg["size"].to_numpy() == 1
    single = np.select(
        [alone, has["own_child"], has["relative"]],
        [base, base + 1, base + 2],
        default=base + 3,
    )
    hht2 = np.select(
        [has["spouse"], has["partner"]],
        [np.where(has["own_child"], 1, 2), np.where(has["own_child"], 3, 4)],
        default=single,
    )
    u5, o5 = agg["rc_under5"].to_numpy() > 0, agg["rc_5to17"].to_numpy() > 0
    fparc = np.select([u5 & o5, u5, o5], ["3", "1", "2"], default="4")
    fparc = np.where(has["relative"], fparc, "b")
    hh_codes = pd.DataFrame(
        {"HHT2": [f"{c:02d}" for c in hht2], "FPARC": fparc},
        index=agg.index,
    )

    speaks = (hh["LANX"].astype(str).str.strip() == "1") & (age >= 5)
    rank = role.map({r: i for i, r in enumerate(LANGUAGE_ORDER)})
    spk = pd.DataFrame(
        {
            "key": key[speaks],
            "rank": rank[speaks],
            "order": pd.to_numeric(hh.loc[speaks, "SPORDER"], errors="coerce"),
            "LANP": hh.loc[speaks, "LANP"].astype(str).str.strip(),
        }
    ).sort_values(["key", "rank", "order"])
    first = spk.drop_duplicates("key")
    lang = pd.Series("1", index=agg.index, dtype=object)
    if not first.empty:
        invalid = _invalid_lanp(first["LANP"])
        if invalid.any():
            i = first.index[invalid.to_numpy()][0]
            raise PersonaLabError(
                f"{_where(persons, i)}SERIALNO {persons.at[i, 'SERIALNO']} person {persons.at[i, 'SPORDER']}: "
                f"column LANP has code {first.at[i, 'LANP']!r} for a speaker of another language (LANX 1); "
                f"{_LANP_EXPECTED}"
            )
        lang.loc[first["key"].to_numpy()] = language_group(first["LANP"]).to_numpy()
    hh_codes["HHL"] = lang

    per_person = hh_codes.loc[key.to_numpy()]
    out.loc[hh.index, ["HHT2", "FPARC", "HHL"]] = per_person.to_numpy()
    return out
