"""PUMS data dictionary parsing: exact rows, ranges, year differences, resolution and errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from persona_lab.census import (
    SHIPPED_DICTIONARY_YEARS,
    DataDictionary,
    load_dictionary,
    parse_dictionary,
    read_dictionary,
)
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
    from persona_lab.census._dictionary import SHIPPED_DICTIONARY_DIR, dictionary_candidates

    cache = tmp_path / "cache"
    monkeypatch.setenv("PERSONA_LAB_CACHE", str(cache))
    # A shipped year resolves offline, after the PUMS files' folder and before the cache.
    assert (
        load_dictionary(2021, download=False).source
        == SHIPPED_DICTIONARY_DIR / "PUMS_Data_Dictionary_2021.csv"
    )
    assert dictionary_candidates(2021, [tmp_path / "psam_p50.csv"]) == [
        tmp_path / "PUMS_Data_Dictionary_2021.csv",
        tmp_path.parent / "PUMS_Data_Dictionary_2021.csv",
        SHIPPED_DICTIONARY_DIR / "PUMS_Data_Dictionary_2021.csv",
        cache / "2021" / "PUMS_Data_Dictionary_2021.csv",
    ]
    # A year not shipped: the cache is read (and its year checked), else a clear error.
    with pytest.raises(PersonaLabError, match="no PUMS_Data_Dictionary_2017.csv found"):
        load_dictionary(2017, download=False)
    (cache / "2017").mkdir(parents=True)
    (cache / "2017" / "PUMS_Data_Dictionary_2017.csv").write_bytes(
        (shared / "pums" / "PUMS_Data_Dictionary_2021.csv").read_bytes()
    )
    with pytest.raises(PersonaLabError, match="describes ACS 2021, not 2017"):
        load_dictionary(2017, download=False)


def test_load_dictionary_of_wrong_year_in_place(tmp_path: Path, shared: Path) -> None:
    # A file named for 2018 that holds the 2021 dictionary is caught by its SERIALNO rows.
    (tmp_path / "PUMS_Data_Dictionary_2018.csv").write_bytes(
        (shared / "pums" / "PUMS_Data_Dictionary_2021.csv").read_bytes()
    )
    with pytest.raises(PersonaLabError, match="describes ACS 2021, not 2018"):
        load_dictionary(2018, near=[tmp_path], download=False)


# --------------------------------------------------------------------------------------------------------
# Shipped dictionaries: a PUMS file the user holds decodes offline
# --------------------------------------------------------------------------------------------------------


def _small_state_zip(shared: Path, folder: Path, rows: int = 400) -> Path:
    """A Census Bureau style ``csv_pwy.zip`` (member ``psam_p56.csv``) of the first whole households of WY."""
    import zipfile

    lines = (shared / "pums" / "psam_p56_2018_1yr_WY.csv").read_text(encoding="utf-8").splitlines()
    header, body = lines[0], lines[1 : rows + 1]
    last = body[-1].split(",")[1]
    body = [line for line in body if line.split(",")[1] != last]  # drop the last, maybe partial household
    folder.mkdir(parents=True)
    path = folder / "csv_pwy.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("psam_p56.csv", "\n".join([header, *body]) + "\n")
    return path


def test_shipped_dictionaries_are_the_census_bureau_files(shared: Path) -> None:
    from persona_lab.census._dictionary import SHIPPED_DICTIONARY_DIR

    assert SHIPPED_DICTIONARY_YEARS == (2018, 2019, 2021)
    for year in SHIPPED_DICTIONARY_YEARS:
        name = f"PUMS_Data_Dictionary_{year}.csv"
        assert (SHIPPED_DICTIONARY_DIR / name).read_bytes() == (shared / "pums" / name).read_bytes()
        assert read_dictionary(SHIPPED_DICTIONARY_DIR / name).year == year


def test_shipped_dictionaries_are_package_data() -> None:
    import tomllib

    from persona_lab.paths import REPO_DIR

    package_data = tomllib.loads((REPO_DIR / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    assert "census/data/*.csv" in package_data["persona_lab"]


def test_cli_decodes_a_state_zip_offline_with_the_shipped_dictionary(
    shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before the dictionaries shipped: "cannot download ... pass a local mirror directory", an option
    # `personas` does not have. Any download attempt fails this test.
    from typer.testing import CliRunner

    import persona_lab.census._download as download
    from persona_lab.cli import app
    from persona_lab.io import read_table

    def no_network(url: str, dest: Path, **_: object) -> Path:
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(download, "fetch", no_network)
    monkeypatch.setenv("PERSONA_LAB_CACHE", str(tmp_path / "empty-cache"))
    state_zip = _small_state_zip(shared, tmp_path / "mine")
    out = tmp_path / "personas.parquet"
    result = CliRunner().invoke(app, ["personas", "--pums", str(state_zip), "--n", "20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "ACS 2018 PUMS (WY)" in result.stdout
    table = read_table(out, table="personas")
    assert len(table) == 20 and set(table["state"]) == {"WY"}


def test_a_year_not_shipped_names_options_that_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from persona_lab.cli import app

    monkeypatch.setenv("PERSONA_LAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(PersonaLabError) as exc:
        load_dictionary(2017, near=[tmp_path], download=False)
    msg = str(exc.value)
    assert (
        "no PUMS_Data_Dictionary_2017.csv found" in msg
        and "ships the dictionaries of 2018, 2019, 2021" in msg
    )
    assert "`persona-lab personas --dictionary FILE`" in msg
    helptext = CliRunner().invoke(app, ["personas", "--help"], terminal_width=200).stdout
    assert "--dictionary" in helptext and "--pums" in helptext


def test_offline_download_advice_names_options_that_exist() -> None:
    from typer.testing import CliRunner

    from persona_lab.census._download import fetch
    from persona_lab.cli import app
    from persona_lab.config import CensusConfig

    with pytest.raises(PersonaLabError) as exc:
        fetch("http://127.0.0.1:9/csv_pde.zip", Path("/nonexistent/csv_pde.zip"), timeout=2)
    msg = str(exc.value)
    assert "`persona-lab census download --mirror DIR`" in msg and "census.mirror" in msg
    helptext = CliRunner().invoke(app, ["census", "download", "--help"], terminal_width=200).stdout
    assert "--mirror" in helptext
    assert "mirror" in CensusConfig.model_fields
