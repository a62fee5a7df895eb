"""Bad input to the PUMS reader and decoder: each a one-line PersonaLabError naming the file."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from persona_lab.census import decode_persons, load_persona_frame, read_dictionary, read_pums
from persona_lab.census._dictionary import DataDictionary
from persona_lab.errors import PersonaLabError


@pytest.fixture(scope="module")
def wy_text(shared: Path) -> str:
    return (shared / "pums" / "psam_p56_2018_1yr_WY.csv").read_text()


def test_truncated_zip(tmp_path: Path, shared: Path) -> None:
    src = (shared / "pums" / "zips" / "csv_pri.zip").read_bytes()
    bad = tmp_path / "csv_pri.zip"
    bad.write_bytes(src[: len(src) // 2])
    with pytest.raises(PersonaLabError) as exc:
        read_pums([bad], 2018)
    msg = str(exc.value)
    assert msg.startswith(str(bad)) and "download it again" in msg and "\n" not in msg


def test_csv_missing_pwgtp(tmp_path: Path, wy_text: str) -> None:
    df = pd.read_csv(io.StringIO(wy_text), dtype=str, nrows=50)
    bad = tmp_path / "psam_p56.csv"
    df.drop(columns=["PWGTP"]).to_csv(bad, index=False)
    with pytest.raises(PersonaLabError, match=r"psam_p56.csv: column PWGTP is missing"):
        read_pums([bad], 2018)


def test_empty_file(tmp_path: Path) -> None:
    bad = tmp_path / "psam_p56.csv"
    bad.write_text("")
    with pytest.raises(PersonaLabError, match=r"psam_p56.csv: the file is empty"):
        read_pums([bad], 2018)
    header_only = tmp_path / "psam_p50.csv"
    header_only.write_text("\n")
    with pytest.raises(PersonaLabError, match=r"psam_p50.csv: the file is empty"):
        read_pums([header_only], 2018)


def test_unknown_code_names_file_column_year_code(tmp_path: Path, wy_text: str, shared: Path) -> None:
    df = pd.read_csv(io.StringIO(wy_text), dtype=str, keep_default_na=False, nrows=50)
    df.loc[3, "SCHL"] = "31"  # SCHL codes end at 24
    bad = tmp_path / "psam_p56.csv"
    df.to_csv(bad, index=False)
    with pytest.raises(PersonaLabError) as exc:
        load_persona_frame([bad], 2018, shared / "pums" / "PUMS_Data_Dictionary_2018.csv")
    msg = str(exc.value)
    assert msg.startswith(f"{bad}: column SCHL has code '31'") and "2018" in msg


def test_dictionary_of_another_year(shared: Path) -> None:
    f = shared / "pums" / "psam_p56_2018_1yr_WY.csv"
    with pytest.raises(PersonaLabError, match="ACS 2021 data dictionary but the data are ACS 2018"):
        load_persona_frame([f], 2018, shared / "pums" / "PUMS_Data_Dictionary_2021.csv")
    # Claiming the 2018 file is 2019 data: the 2019 person layout needs RELSHIPP, which 2018 lacks.
    with pytest.raises(PersonaLabError, match=r"column RELSHIPP is missing.*it has RELP"):
        load_persona_frame([f], 2019, shared / "pums" / "PUMS_Data_Dictionary_2019.csv")


def test_dictionary_year_where_a_code_differs(tmp_path: Path, shared: Path, wy_text: str) -> None:
    # A 2018 file whose RAC2P holds 22 (Seminole alone, dropped from the 2021 dictionary), decoded with
    # the 2021 dictionary relabelled as 2018: the code check still catches it.
    d21 = read_dictionary(shared / "pums" / "PUMS_Data_Dictionary_2021.csv")
    relabelled = DataDictionary(year=2018, variables={**d21.variables}, source=d21.source)
    raw = read_pums([shared / "pums" / "psam_p56_2018_1yr_WY.csv"], 2018)
    with pytest.raises(PersonaLabError, match="no variable RELP"):
        decode_persons(raw, relabelled)
    d18 = read_dictionary(shared / "pums" / "PUMS_Data_Dictionary_2018.csv")
    mixed = DataDictionary(
        year=2018, variables={**d18.variables, "RAC2P": d21.variables["RAC2P"]}, source=d21.source
    )
    raw.loc[raw.index[0], "RAC2P"] = "22"
    with pytest.raises(PersonaLabError, match=r"column RAC2P has code '22'"):
        decode_persons(raw, mixed)


def test_same_state_twice_and_records_of_another_year(tmp_path: Path, shared: Path, wy_text: str) -> None:
    f = shared / "pums" / "psam_p56_2018_1yr_WY.csv"
    with pytest.raises(PersonaLabError, match="appears twice"):
        read_pums([f, f], 2018)
    with pytest.raises(PersonaLabError, match="not an ACS 2017 record"):
        read_pums([tmp_copy_with_relp(tmp_path, wy_text)], 2017)


def tmp_copy_with_relp(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "psam_p56.csv"
    p.write_text("\n".join(text.splitlines()[:20]) + "\n")
    return p


def test_household_errors_name_the_file(tmp_path: Path, wy_text: str, shared: Path) -> None:
    # Errors raised while deriving household attributes (HHT2, FPARC, HHL) name the file like the others.
    df = pd.read_csv(io.StringIO(wy_text), dtype=str, keep_default_na=False, nrows=200)
    head = df.index[df["SERIALNO"].duplicated(keep=False) & (df["RELP"] == "00")][0]
    serial = df.at[head, "SERIALNO"]
    members = df.index[df["SERIALNO"] == serial]
    dictionary = shared / "pums" / "PUMS_Data_Dictionary_2018.csv"
    bad = tmp_path / "psam_p56.csv"

    df.drop(index=head).to_csv(bad, index=False)  # a cut file: the household lost its reference person
    with pytest.raises(PersonaLabError) as exc:
        load_persona_frame([bad], 2018, dictionary)
    assert str(exc.value).startswith(f"{bad}: SERIALNO {serial}: household has 0 reference persons")

    gq_code = df.copy()
    gq_code.loc[head, "RELP"] = "16"  # a group-quarters code inside a housing unit
    gq_code.to_csv(bad, index=False)
    with pytest.raises(PersonaLabError) as exc:
        load_persona_frame([bad], 2018, dictionary)
    assert str(exc.value).startswith(f"{bad}: SERIALNO {serial}: housing-unit person")

    lanp = df.copy()
    lanp.loc[members, "LANX"] = "1"
    lanp.loc[members, "LANP"] = "625"  # a pre-2016 language code; the householder speaks first
    lanp.to_csv(bad, index=False)
    with pytest.raises(PersonaLabError) as exc:
        load_persona_frame([bad], 2018, dictionary)
    msg = str(exc.value)
    assert msg.startswith(
        f"{bad}: SERIALNO {serial} person {df.at[head, 'SPORDER']}: column LANP has code '625'"
    )
    assert "4-digit ACS 2016+ language code" in msg and "\n" not in msg


def test_unknown_detail_or_group_quarters_option(shared: Path) -> None:
    # A misspelt option must not silently select the other branch ("Coarse" would decode full labels).
    raw = read_pums([shared / "pums" / "psam_p56_2018_1yr_WY.csv"], 2018)
    d18 = read_dictionary(shared / "pums" / "PUMS_Data_Dictionary_2018.csv")
    with pytest.raises(PersonaLabError, match=r"detail='Coarse': expected 'coarse' or 'full'"):
        decode_persons(raw, d18, detail="Coarse")  # type: ignore[arg-type]
    with pytest.raises(PersonaLabError, match=r"group_quarters='dorp': expected 'keep' or 'drop'"):
        decode_persons(raw, d18, group_quarters="dorp")  # type: ignore[arg-type]
