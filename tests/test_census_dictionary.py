"""PUMS data dictionary parsing: exact rows, ranges, year differences, resolution and errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from persona_lab.census import DataDictionary, load_dictionary, parse_dictionary, read_dictionary
from persona_lab.errors import PersonaLabError


@pytest.fixture(scope="module")
def dicts(shared: Path) -> dict[int, DataDictionary]:
    return {y: read_dictionary(shared / "pums" / f"PUMS_Data_Dictionary_{y}.csv") for y in (2018, 2019, 2021)}


def test_year_read_from_serialno_rows(dicts: dict[int, DataDictionary]) -> None:
    # VAL,SERIALNO,C,13,"2019GQ0000001","2019GQ9999999",... gives the year, not the file name.
    assert {y: d.year for y, d in dicts.items()} == {2018: 2018, 2019: 2019, 2021: 2021}


def test_hand_picked_rows(dicts: dict[int, DataDictionary]) -> None:
    d = dicts[2018]
    assert d["SCHL"].type == "C" and d["SCHL"].length == 2
    assert d["SCHL"].description == "Educational attainment"
    assert d.label("SCHL", "01") == "No schooling completed"
    assert d.label("SCHL", "21") == "Bachelor's degree"
    assert d.label("SCHL", "") == "N/A (less than 3 years old)"  # blank field = "bb"
    assert d.label("RAC1P", "9") == "Two or More Races"
    assert d.label("POBP", "048") == "Texas/TX"
    assert d.label("HICOV", "1") == "With health insurance coverage"
    assert d.label("MAR", "5") == "Never married or under 15 years old"
    assert d.label("RELP", "13") == "Unmarried partner"
    assert d["ST"].codes["50"] == "Vermont/VT"


def test_ranges_numeric_and_text(dicts: dict[int, DataDictionary]) -> None:
    d = dicts[2019]
    assert d.label("AGEP", "0") == "Under 1 year"
    assert d.label("AGEP", "57") == "1 to 99 years (Top-coded)"  # VAL,AGEP,N,2,1,99
    assert d.label("PINCP", "-19998") == "Loss of $19998 or more (Rounded and bottom- coded components)"
    assert d.label("PINCP", "-250") == "Loss $1 to $19997 (Rounded components)"
    assert d.label("PINCP", "0") == "None"
    assert d.label("PINCP", "") == "N/A (less than 15 years old)"
    # Text range "2019HU0000001".."2019HU9999999" of type C compares as text of the same width.
    assert d.label("SERIALNO", "2019HU0012345") == "HU Unique identifier"
    with pytest.raises(PersonaLabError, match="2018HU0012345"):
        d.label("SERIALNO", "2018HU0012345")
    with pytest.raises(PersonaLabError, match="'100'"):
        d.label("AGEP", "100")


def test_relationship_variable_differs_by_year(dicts: dict[int, DataDictionary]) -> None:
    assert "RELP" in dicts[2018] and "RELSHIPP" not in dicts[2018]
    for y in (2019, 2021):
        assert "RELSHIPP" in dicts[y] and "RELP" not in dicts[y]
    assert dicts[2019].label("RELSHIPP", "22") == "Opposite-sex unmarried partner"
    assert "HHT2" not in dicts[2018] and "HHT2" in dicts[2019]
    with pytest.raises(PersonaLabError, match="2021 PUMS data dictionary has no variable RELP"):
        dicts[2021]["RELP"]


def test_labels_change_between_years(dicts: dict[int, DataDictionary]) -> None:
    assert dicts[2019].label("CIT", "1") == "Born in the U.S."
    assert dicts[2021].label("CIT", "1") == "Born in the United States"
    assert dicts[2019].label("CIT", "5") == "Not a citizen of the U.S."
    assert dicts[2021].label("CIT", "5") == "Not a U.S. citizen"
    # 2021 dropped RAC2P 22 "Seminole alone" and renamed 63.
    assert dicts[2019].label("RAC2P", "63") == "Guamanian or Chamorro alone"
    assert dicts[2021].label("RAC2P", "63") == "Chamorro alone"


def test_codes_are_normalized(dicts: dict[int, DataDictionary]) -> None:
    d = dicts[2021]
    assert d["SCHL"].normalize("1") == "01"  # type C, spreadsheet-stripped leading zero restored
    assert d["POBP"].normalize("6") == "006"
    assert d["SCHL"].normalize(" ") == "bb"
    # 2021 writes VACOTH codes as " 1"; they are stripped when parsed.
    assert d.label("VACOTH", "1") == "Foreclosure"


def test_decode_vectorized_and_unknown_code_names_file_column_year_code(
    dicts: dict[int, DataDictionary],
) -> None:
    d = dicts[2018]
    got = d.decode("SEX", pd.Series(["1", "2", "2"]))
    assert got.tolist() == ["Male", "Female", "Female"]
    with pytest.raises(PersonaLabError) as exc:
        d.decode("SEX", pd.Series(["1", "7"]), file=pd.Series(["a.csv", "b.csv"]))
    msg = str(exc.value)
    assert msg.startswith("b.csv: column SEX has code '7'") and "2018" in msg and "\n" not in msg


def test_parse_small_dictionary_text() -> None:
    text = (
        'NAME,SERIALNO,C,13,"Serial"\n'
        'VAL,SERIALNO,C,13,"2030HU0000001","2030HU9999999","HU"\n'
        'NAME,X,C,2,"Example"\n'
        'VAL,X,C,2,"bb","bb","N/A (blank)"\n'
        'VAL,X,C,2,"01","01","One"\n'
        'VAL,X,C,2,"10","19","Teens"\n'
    )
    d = parse_dictionary(text)
    assert d.year == 2030
    assert [d.label("X", c) for c in ("1", "01", "15", "")] == ["One", "One", "Teens", "N/A (blank)"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ('NAME,X,Q,2,"bad type"\n', "line 1: NAME row for X has type 'Q'"),
        ('VAL,X,C,2,"1","1","orphan"\n', "line 1: VAL row for X before its NAME row"),
        ("a,b\n", "line 1: expected a NAME row"),
        ('NAME,X,C,2,"no year"\n', "cannot tell the ACS year"),
    ],
)
def test_malformed_dictionary(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "dict.csv"
    p.write_text(text)
    with pytest.raises(PersonaLabError, match=match) as exc:
        read_dictionary(p)
    assert str(exc.value).startswith(str(p))


def test_load_dictionary_next_to_pums_files(
    shared: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PERSONA_LAB_CACHE", str(tmp_path / "cache"))
    # The dictionary sits beside psam_p50...csv, and in the parent of zips/csv_phi.zip.
    d = load_dictionary(2019, near=[shared / "pums" / "zips" / "csv_phi.zip"], download=False)
    assert d.year == 2019 and d.source == shared / "pums" / "PUMS_Data_Dictionary_2019.csv"


def test_load_dictionary_from_cache_and_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared: Path
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("PERSONA_LAB_CACHE", str(cache))
    with pytest.raises(PersonaLabError, match="no PUMS_Data_Dictionary_2021.csv found"):
        load_dictionary(2021, download=False)
    (cache / "2021").mkdir(parents=True)
    (cache / "2021" / "PUMS_Data_Dictionary_2021.csv").write_bytes(
        (shared / "pums" / "PUMS_Data_Dictionary_2021.csv").read_bytes()
    )
    assert load_dictionary(2021, download=False).year == 2021


def test_load_dictionary_of_wrong_year_in_place(tmp_path: Path, shared: Path) -> None:
    # A file named for 2018 that holds the 2021 dictionary is caught by its SERIALNO rows.
    (tmp_path / "PUMS_Data_Dictionary_2018.csv").write_bytes(
        (shared / "pums" / "PUMS_Data_Dictionary_2021.csv").read_bytes()
    )
    with pytest.raises(PersonaLabError, match="describes ACS 2021, not 2018"):
        load_dictionary(2018, near=[tmp_path], download=False)
