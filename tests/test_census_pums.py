"""Reading the real PUMS person files (12 states) and decoding them into the persona frame."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from persona_lab.census import (
    CENSUS_ATTRIBUTES,
    META_COLUMNS,
    OPTIONAL_ATTRIBUTES,
    load_persona_frame,
    read_pums,
)

pytestmark = pytest.mark.slow  # reads and decodes 146,727 real person records (about 10 s)

N_PERSONS_12_STATES = 146_727
"""Person records in the 12 state files of ../shared/data/pums (measured; 5,740 WY + 6,436 VT + ten zips)."""


def pums_files(shared: Path) -> list[Path]:
    pums = shared / "pums"
    return sorted(pums.glob("psam_p*.csv")) + sorted((pums / "zips").glob("csv_p*.zip"))


@pytest.fixture(scope="module")
def raw(shared: Path) -> pd.DataFrame:
    return read_pums(pums_files(shared), 2018)


@pytest.fixture(scope="module")
def frame(shared: Path) -> pd.DataFrame:
    return load_persona_frame(pums_files(shared), 2018, shared / "pums" / "PUMS_Data_Dictionary_2018.csv")


def test_read_12_states(raw: pd.DataFrame, shared: Path) -> None:
    assert len(raw) == N_PERSONS_12_STATES
    assert sorted(raw["state"].unique()) == sorted(
        ["WY", "VT", "HI", "ID", "ME", "MT", "ND", "NE", "NH", "NM", "RI", "SD"]
    )
    # Sum of PWGTP per state equals what pandas computes from each file directly.
    for f in pums_files(shared):
        if f.suffix == ".zip":
            with zipfile.ZipFile(f) as zf:
                member = next(n for n in zf.namelist() if n.endswith(".csv"))
                with zf.open(member) as fh:
                    direct = pd.read_csv(fh, usecols=["ST", "PWGTP"])
        else:
            direct = pd.read_csv(f, usecols=["ST", "PWGTP"])
        st = int(direct["ST"].iloc[0])
        ours = raw.loc[raw["ST"] == f"{st:02d}", "PWGTP"]
        assert len(ours) == len(direct)
        assert ours.sum() == direct["PWGTP"].sum()
    assert raw.loc[raw["state"] == "WY"].shape[0] == 5740
    assert raw.loc[raw["state"] == "VT"].shape[0] == 6436


def test_codes_keep_leading_zeros(raw: pd.DataFrame) -> None:
    assert raw["ST"].str.len().eq(2).all()
    assert raw["POBP"].str.len().eq(3).all()
    assert raw["RELP"].str.len().eq(2).all()
    assert set(raw["SCHL"].str.len().unique()) == {0, 2}  # blank under 3 years old
    assert "01" in set(raw["SCHL"])


def test_persona_frame_contract(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == [*CENSUS_ATTRIBUTES, *OPTIONAL_ATTRIBUTES, *META_COLUMNS]
    assert len(frame) == N_PERSONS_12_STATES
    assert frame["age"].dtype.kind == "i" and frame["income"].dtype.kind == "f"
    assert frame["weight"].dtype.kind == "f"
    for col in CENSUS_ATTRIBUTES:
        if col in ("age", "income"):
            continue
        assert frame[col].map(type).eq(str).all(), col
    for col in OPTIONAL_ATTRIBUTES:
        kinds = set(frame[col].map(lambda v: type(v).__name__))
        assert kinds <= {"str", "NoneType"}, col
        assert not frame[col].isin(["nan", "NaN", "None"]).any()
    # Coarse categories: tens, not hundreds, of values.
    assert frame.drop(columns=["age", "income", "weight", "serialno"]).nunique().max() <= 70


def test_wording_matches_persona_release(frame: pd.DataFrame, shared: Path) -> None:
    personas = json.loads((shared / "persona" / "personas_sample100.json").read_text())
    released: dict[str, set[str]] = {}
    for text in personas:
        for line in text.strip().splitlines():
            key, _, value = line.partition(": ")
            released.setdefault(key, set()).add(value)
    expected_shared = {
        "sex": {"Female", "Male"},
        "race": {
            "White alone",
            "Two or More Races",
            "Some Other Race alone",
            "Korean alone",
            "Vietnamese alone",
        },
        "household language": {"English only", "Spanish", "Asian and Pacific Island languages"},
        "education": {"Bachelor's degree", "Regular high school diploma", "Grade 9"},
        "employment status": {"Civilian employed, at work", "Not in labor force", "Unemployed"},
        "marital status": {"Married", "Never married or under 15 years old", "Widowed", "Divorced"},
        "household type": {
            "Married couple household with children of the householder less than 18",
            "Female householder, no spouse/partner present, living alone",
        },
        "family presence and age": {
            "No related children",
            "No family",
            "With related children 5 to 17 years only",
        },
        "place of birth": {"Texas/TX", "California/CA", "Mexico"},
        "citizenship": {"Born in the United States", "Not a U.S. citizen", "U.S. citizen by naturalization"},
        "veteran status": {"Non-Veteran", "Not applicable", "On active duty in the past, but not now"},
        "disability": {"None", "With a disability"},
        "health insurance": {"With health insurance coverage", "No health insurance coverage"},
        "class of worker": {"Not applicable", "State government employee"},
        "ancestry": {"Irish", "German", "American", "European", "Mexican"},
        "cognitive difficulty": {"Yes", "No cognitive difficulty"},
        "ability to speak english": {"Very well", "Well"},
    }
    for attr, values in expected_shared.items():
        ours = set(frame[attr].dropna())
        assert values <= ours, (attr, values - ours)
        assert values <= released[attr], (attr, values - released[attr])


def test_household_attributes_on_real_data(frame: pd.DataFrame) -> None:
    gq = frame["serialno"].str.contains("GQ")
    assert (frame.loc[gq, "household type"] == "Not applicable (group quarters)").all()
    hh = frame.loc[~gq]
    # Every member of a household shares its household attributes.
    per_household = hh.groupby("serialno")[
        ["household type", "family presence and age", "household language"]
    ]
    assert per_household.nunique().max().max() == 1
    # One-person households are "living alone" and not families, and vice versa.
    size = hh.groupby("serialno")["age"].transform("size")
    alone = hh["household type"].str.endswith("living alone")
    assert (alone == (size == 1)).all()
    assert (hh.loc[alone, "family presence and age"] == "No family").all()
    # Weighted share of persons living in married-couple households (ACS 2018 US: about 60 %).
    married = hh["household type"].str.startswith("Married couple")
    share = float((hh["weight"] * married).sum() / frame["weight"].sum())
    assert 0.5 < share < 0.7


def test_persons_under_15_have_zero_income_and_minors_no_class_of_worker(frame: pd.DataFrame) -> None:
    young = frame["age"] < 15
    assert (frame.loc[young, "income"] == 0.0).all()
    assert (frame.loc[frame["age"] < 16, "class of worker"] == "Not applicable").all()
    assert (frame.loc[frame["sex"] == "Male", "fertility"].isna()).all()


def test_group_quarters_can_be_dropped(shared: Path) -> None:
    f = shared / "pums" / "psam_p56_2018_1yr_WY.csv"
    keep = load_persona_frame([f], 2018, shared / "pums" / "PUMS_Data_Dictionary_2018.csv")
    drop = load_persona_frame(
        [f], 2018, shared / "pums" / "PUMS_Data_Dictionary_2018.csv", group_quarters="drop"
    )
    n_gq = int(keep["serialno"].str.contains("GQ").sum())
    assert n_gq > 0 and len(drop) == len(keep) - n_gq
    assert not drop["household type"].str.contains("group quarters").any()


def test_full_detail_keeps_labels(shared: Path) -> None:
    f = shared / "pums" / "psam_p50_2018_1yr_VT.csv"
    full = load_persona_frame([f], 2018, shared / "pums" / "PUMS_Data_Dictionary_2018.csv", detail="full")
    assert full["industry category"].str.startswith("EDU-").any()
    assert full["occupation category"].str.startswith("MGR-").any()
    assert "Vermont/VT" in set(full["place of birth"])


def test_reading_is_fast(shared: Path) -> None:
    import time

    t = time.perf_counter()
    read_pums(pums_files(shared), 2018)
    assert time.perf_counter() - t < 20.0  # about 2 s on 2 cores; generous for busy CI machines


RELP_TO_RELSHIPP = {
    "00": "20", "01": "21", "02": "25", "03": "26", "04": "27", "05": "28", "06": "29", "07": "30",
    "08": "31", "09": "32", "10": "33", "11": "36", "12": "34", "13": "22", "14": "35", "15": "36",
    "16": "37", "17": "38",
}  # fmt: skip
"""2018 RELP -> 2019 RELSHIPP (labels of the two dictionaries; roomers became "other nonrelative")."""


def test_year_keyed_decoding_round_trip(shared: Path, tmp_path: Path) -> None:
    # Rewrite the 2018 Vermont file in the 2019 layout (RELSHIPP codes, 2019 serial numbers) and decode
    # it with the 2019 dictionary: the persona frame must equal the 2018 one, because CIT's wording
    # change ("Born in the U.S." -> "Born in the United States") and the new relationship codes are
    # both absorbed by the year-keyed decoding.
    src = shared / "pums" / "psam_p50_2018_1yr_VT.csv"
    df = pd.read_csv(src, dtype=str, keep_default_na=False)
    df["RELSHIPP"] = df.pop("RELP").map(RELP_TO_RELSHIPP)
    df["SERIALNO"] = "2019" + df["SERIALNO"].str[4:]
    as_2019 = tmp_path / "psam_p50.csv"
    df.to_csv(as_2019, index=False)
    f18 = load_persona_frame([src], 2018, shared / "pums" / "PUMS_Data_Dictionary_2018.csv")
    f19 = load_persona_frame([as_2019], 2019, shared / "pums" / "PUMS_Data_Dictionary_2019.csv")
    f19["serialno"] = "2018" + f19["serialno"].str[4:]
    pd.testing.assert_frame_equal(f18, f19)
    assert "Born in the United States" in set(f19["citizenship"])
