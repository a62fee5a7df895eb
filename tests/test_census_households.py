"""Household attributes (HHT2, FPARC, HHL) derived from hand-built households."""

from __future__ import annotations

import pandas as pd
import pytest

from persona_lab.census import derive_household_codes, language_group, relationship_roles
from persona_lab.errors import PersonaLabError

# (role code, age, sex, marital status, LANX, LANP); RELP codes (2018): 00 householder, 01 spouse,
# 02 biological child, 04 stepchild, 05 sibling, 06 parent, 07 grandchild, 12 roommate,
# 13 unmarried partner, 14 foster child. SEX 1 male / 2 female; MAR 1 married / 5 never married.
Member = tuple[str, int, str, str, str, str]


def frame(households: dict[str, list[Member]]) -> pd.DataFrame:
    rows = []
    for serial, members in households.items():
        for i, (rel, age, sex, mar, lanx, lanp) in enumerate(members, start=1):
            rows.append(
                {
                    "SERIALNO": serial,
                    "SPORDER": f"{i:02d}",
                    "RELP": rel,
                    "RELSHIPP": rel,
                    "AGEP": str(age),
                    "SEX": sex,
                    "MAR": mar,
                    "LANX": lanx,
                    "LANP": lanp,
                }
            )
    return pd.DataFrame(rows)


def codes_by_household(
    households: dict[str, list[Member]], year: int = 2018
) -> dict[str, tuple[str, str, str]]:
    df = frame(households)
    out = derive_household_codes(df, year)
    first = df.drop_duplicates("SERIALNO").index
    return {df.loc[i, "SERIALNO"]: tuple(out.loc[i, ["HHT2", "FPARC", "HHL"]]) for i in first}


E = ("2", "")  # speaks only English
HEAD_F = ("00", 40, "2", "5")
HEAD_M = ("00", 40, "1", "5")


def test_household_types_2018() -> None:
    got = codes_by_household(
        {
            # married couple + son 10 -> 01; related children 5-17 only -> FPARC 2
            "2018HU01": [("00", 40, "1", "1", *E), ("01", 38, "2", "1", *E), ("02", 10, "1", "5", *E)],
            # married couple + daughter 20 -> 02; an adult child is a relative, no related children -> 4
            "2018HU02": [("00", 60, "1", "1", *E), ("01", 58, "2", "1", *E), ("02", 20, "2", "5", *E)],
            # cohabiting + her stepchild? no: partner's child coded "other nonrelative" 15 -> 04, no family
            "2018HU03": [(*HEAD_F, *E), ("13", 41, "1", "5", *E), ("15", 7, "1", "5", *E)],
            # cohabiting + householder's own child 3 -> 03; family (child is related), under 5 only -> 1
            "2018HU04": [(*HEAD_F, *E), ("13", 41, "1", "5", *E), ("02", 3, "1", "5", *E)],
            # woman alone -> 05, no family
            "2018HU05": [(*HEAD_F, *E)],
            # woman + stepchild 4 + child 12 -> 06; FPARC 3 (under 5 and 5-17)
            "2018HU06": [(*HEAD_F, *E), ("04", 4, "2", "5", *E), ("02", 12, "1", "5", *E)],
            # woman + her mother -> 07; family without related children -> 4
            "2018HU07": [(*HEAD_F, *E), ("06", 70, "2", "2", *E)],
            # woman + roommate -> 08, no family
            "2018HU08": [(*HEAD_F, *E), ("12", 30, "2", "5", *E)],
            # man alone -> 09
            "2018HU09": [(*HEAD_M, *E)],
            # man + grandchild 6 -> 11 (a grandchild is not his child) ; related child 5-17 -> 2
            "2018HU10": [(*HEAD_M, *E), ("07", 6, "1", "5", *E)],
            # man + foster child 8 -> 12 (foster children are nonrelatives), no family
            "2018HU11": [(*HEAD_M, *E), ("14", 8, "2", "5", *E)],
            # man + son 16 -> 10 ; related child 5-17 -> 2
            "2018HU12": [(*HEAD_M, *E), ("02", 16, "1", "5", *E)],
        }
    )
    assert {k: v[:2] for k, v in got.items()} == {
        "2018HU01": ("01", "2"),
        "2018HU02": ("02", "4"),
        "2018HU03": ("04", "b"),
        "2018HU04": ("03", "1"),
        "2018HU05": ("05", "b"),
        "2018HU06": ("06", "3"),
        "2018HU07": ("07", "4"),
        "2018HU08": ("08", "b"),
        "2018HU09": ("09", "b"),
        "2018HU10": ("11", "2"),
        "2018HU11": ("12", "b"),
        "2018HU12": ("10", "2"),
    }


def test_married_child_under_18_is_not_an_own_child_but_is_a_related_child() -> None:
    # Own children are never married (ACS definition); related children are of any marital status.
    got = codes_by_household({"2018HU01": [(*HEAD_M, *E), ("02", 17, "2", "1", *E)]})
    assert got["2018HU01"][:2] == ("11", "2")


def test_spouse_under_18_is_not_a_related_child() -> None:
    got = codes_by_household({"2018HU01": [("00", 19, "1", "1", *E), ("01", 17, "2", "1", *E)]})
    assert got["2018HU01"][:2] == ("02", "4")


def test_relshipp_codes_2019() -> None:
    # RELSHIPP: 20 reference person, 23 same-sex spouse, 24 same-sex partner, 27 stepchild, 34 roommate.
    got = codes_by_household(
        {
            "2019HU01": [("20", 45, "2", "1", *E), ("23", 44, "2", "1", *E), ("27", 9, "1", "5", *E)],
            "2019HU02": [("20", 30, "1", "5", *E), ("24", 31, "1", "5", *E)],
            "2019HU03": [("20", 30, "1", "5", *E), ("34", 29, "1", "5", *E)],
        },
        year=2019,
    )
    assert {k: v[:2] for k, v in got.items()} == {
        "2019HU01": ("01", "2"),
        "2019HU02": ("04", "b"),
        "2019HU03": ("12", "b"),
    }


def test_household_language_order_and_groups() -> None:
    got = codes_by_household(
        {
            # everyone English only -> 1
            "2018HU01": [(*HEAD_F, *E), ("02", 9, "1", "5", *E)],
            # child speaks Spanish (1200), householder English only -> the child's language: Spanish 2
            "2018HU02": [(*HEAD_F, *E), ("02", 9, "1", "5", "1", "1200")],
            # child speaks German (1110), parent of householder speaks Korean (2575): a parent comes
            # before a child in the census order -> Asian and Pacific Island 4
            "2018HU03": [(*HEAD_F, *E), ("02", 9, "1", "5", "1", "1110"), ("06", 70, "2", "2", "1", "2575")],
            # roommate speaks Arabic (4500), householder's spouse speaks French (1170) -> spouse first: 3
            "2018HU04": [(*HEAD_M, *E), ("12", 30, "1", "5", "1", "4500"), ("01", 38, "2", "1", "1", "1170")],
            # only a nonrelative speaks Hungarian (1582, Uralic) -> Other language 5
            "2018HU05": [(*HEAD_M, *E), ("12", 30, "1", "5", "1", "1582")],
            # a child under 5 has blank LANX and does not count -> 1
            "2018HU06": [(*HEAD_M, *E), ("02", 3, "1", "5", "", "")],
        }
    )
    assert {k: v[2] for k, v in got.items()} == {
        "2018HU01": "1",
        "2018HU02": "2",
        "2018HU03": "4",
        "2018HU04": "3",
        "2018HU05": "5",
        "2018HU06": "1",
    }


def test_language_group_boundaries() -> None:
    codes = [
        "1000",
        "1055",
        "1200",
        "1564",
        "1565",
        "1582",
        "1675",
        "1765",
        "2575",
        "3600",
        "4500",
        "7300",
        "9999",
    ]
    # 1000-1564 Indo-European (Spanish 1200 apart), Finnish/Hungarian other, 1675-3600 Asian/Pacific.
    assert language_group(pd.Series(codes)).tolist() == [
        "3", "3", "2", "3", "5", "5", "4", "4", "4", "4", "5", "5", "5",
    ]  # fmt: skip
    with pytest.raises(PersonaLabError, match="LANP has code '12'"):
        language_group(pd.Series(["12"]))


def test_group_quarters_get_blank_codes_and_every_member_gets_household_codes() -> None:
    df = frame(
        {
            "2018GQ0000001": [("16", 80, "2", "2", *E)],
            "2018HU01": [("00", 40, "1", "1", *E), ("01", 38, "2", "1", *E), ("02", 1, "1", "5", *E)],
        }
    )
    out = derive_household_codes(df, 2018)
    assert out.values.tolist() == [["bb", "b", "b"], ["01", "1", "1"], ["01", "1", "1"], ["01", "1", "1"]]


def test_household_without_reference_person_is_an_error() -> None:
    df = frame({"2018HU01": [("01", 38, "2", "1", *E)]})
    with pytest.raises(PersonaLabError, match="SERIALNO 2018HU01: household has 0 reference persons"):
        derive_household_codes(df, 2018)


def test_relationship_code_of_other_year_is_an_error() -> None:
    assert relationship_roles(pd.Series(["20", "36"]), 2019).tolist() == ["householder", "other_nonrelative"]
    with pytest.raises(PersonaLabError, match="RELP has code '20'.*ACS 2018"):
        relationship_roles(pd.Series(["20"]), 2018)
