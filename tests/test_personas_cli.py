"""``persona-lab personas``: real PUMS and embedded-model runs, identical reruns, exit code 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from persona_lab.cli import app
from persona_lab.io import read_table
from persona_lab.personas._text import parse_persona

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["personas", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def wyoming(shared: Path) -> Path:
    return shared / "pums" / "psam_p56_2018_1yr_WY.csv"


def test_pums_run_writes_the_table_and_reruns_identically(tmp_path: Path, wyoming: Path) -> None:
    out_a, out_b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    code, stdout, stderr = _run("--n", "300", "--seed", "4", "--out", str(out_a), "--pums", str(wyoming),
                                "--weighting", "none", "--n-train", "200")  # fmt: skip
    assert code == 0, stderr
    assert "rejection rate: " in stdout and "weighting none" in stdout and f"wrote {out_a}" in stdout
    a = read_table(out_a, table="personas")
    assert len(a) == 300 and (a["split"] == "train").sum() == 200
    assert set(a["state"]) == {"WY"}
    assert all(parse_persona(t).to_text() == t for t in a["text"])
    code, _, stderr = _run("--n", "300", "--seed", "4", "--out", str(out_b), "--pums", str(wyoming),
                           "--weighting", "none", "--n-train", "200")  # fmt: skip
    assert code == 0, stderr
    assert read_table(out_b)["text"].tolist() == a["text"].tolist()


def test_embedded_model_run(tmp_path: Path) -> None:
    out = tmp_path / "p.parquet"
    code, stdout, stderr = _run("--n", "200", "--seed", "0", "--out", str(out))
    assert code == 0, stderr
    assert "embedded census model" in stdout and "rejection rate: " in stdout
    table = read_table(out, table="personas")
    assert len(table) == 200 and (table["split"] == "train").sum() == 126


def _assert_user_error(args: list[str], out: Path, match: str) -> None:
    code, stdout, stderr = _run(*args)
    assert code == 2, (stdout, stderr)
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert match in stderr
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]  # no temp file left


def test_empty_pums_file_exits_2_and_writes_nothing(tmp_path: Path, shared: Path) -> None:
    empty = tmp_path / "psam_p56.csv"
    empty.write_bytes(b"")
    out = tmp_path / "p.parquet"
    dictionary = shared / "pums" / "PUMS_Data_Dictionary_2018.csv"
    args = ["--n", "5", "--out", str(out), "--pums", str(empty), "--dictionary", str(dictionary)]
    _assert_user_error(args, out, "psam_p56.csv")


def test_non_utf8_pums_file_exits_2(tmp_path: Path, shared: Path) -> None:
    bad = tmp_path / "psam_p56.csv"
    bad.write_bytes(b"\xff\xfe\x00garbage\x81\n\x00\x9c")
    out = tmp_path / "p.parquet"
    dictionary = shared / "pums" / "PUMS_Data_Dictionary_2018.csv"
    args = ["--n", "5", "--out", str(out), "--pums", str(bad), "--dictionary", str(dictionary)]
    _assert_user_error(args, out, "psam_p56.csv")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--n", "0"], "at least 1"),
        (["--n", "5", "--n-train", "9"], "--n-train must be between 0 and --n=5"),
        (["--weighting", "census"], "--weighting must be 'pwgtp' or 'none'"),
        (["--weighting", "none"], "apply to --pums files only"),
    ],
)
def test_bad_options_exit_2(tmp_path: Path, args: list[str], match: str) -> None:
    out = tmp_path / "p.parquet"
    _assert_user_error([*args, "--out", str(out)], out, match)


def test_import_released_personas(tmp_path: Path, shared: Path) -> None:
    released = shared / "persona" / "personas_sample100.json"
    out = tmp_path / "released.parquet"
    code, stdout, stderr = _run("--from-text", str(released), "--out", str(out), "--n-train", "60")
    assert code == 0, stderr
    assert "imported 100 personas" in stdout and "(60 train, 40 test)" in stdout
    table = read_table(out, table="personas")
    assert table["text"].tolist() == json.loads(released.read_text(encoding="utf-8"))


def test_import_non_utf8_persona_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "personas.txt"
    bad.write_bytes("age: 30\nancestry: Fran\u00e7ais\n".encode("latin-1"))
    out = tmp_path / "p.parquet"
    _assert_user_error(["--from-text", str(bad), "--out", str(out)], out, "personas.txt: not UTF-8")


def test_import_empty_persona_file_exits_2(tmp_path: Path) -> None:
    empty = tmp_path / "personas.json"
    empty.write_bytes(b"")
    out = tmp_path / "p.parquet"
    _assert_user_error(
        ["--from-text", str(empty), "--out", str(out)], out, "personas.json: empty persona file"
    )


def test_import_with_pums_is_refused(tmp_path: Path, wyoming: Path) -> None:
    out = tmp_path / "p.parquet"
    args = ["--from-text", str(wyoming), "--pums", str(wyoming), "--out", str(out)]
    _assert_user_error(args, out, "--from-text imports finished personas")


def _bad_pums(kind: str, tmp_path: Path, shared: Path) -> tuple[list[str], str]:
    """A bad PUMS input of ``kind``: the extra CLI arguments and the text the one-line error must contain."""
    import pandas as pd

    d2018 = shared / "pums" / "PUMS_Data_Dictionary_2018.csv"
    wy = pd.read_csv(shared / "pums" / "psam_p56_2018_1yr_WY.csv", dtype=str, keep_default_na=False, nrows=60)
    bad = tmp_path / "psam_p56.csv"
    if kind == "truncated zip":
        src = (shared / "pums" / "zips" / "csv_pri.zip").read_bytes()
        bad = tmp_path / "csv_pri.zip"
        bad.write_bytes(src[: len(src) // 2])
        return ["--pums", str(bad), "--dictionary", str(d2018)], "csv_pri.zip"
    if kind == "missing PWGTP":
        wy.drop(columns=["PWGTP"]).to_csv(bad, index=False)
        return ["--pums", str(bad), "--dictionary", str(d2018)], "column PWGTP is missing"
    if kind == "unknown code":
        wy.loc[3, "SCHL"] = "31"
        wy.to_csv(bad, index=False)
        return ["--pums", str(bad), "--dictionary", str(d2018)], "column SCHL has code '31'"
    # a dictionary of another year than the data's
    wy.to_csv(bad, index=False)
    d2021 = shared / "pums" / "PUMS_Data_Dictionary_2021.csv"
    return ["--pums", str(bad), "--dictionary", str(d2021), "--year", "2018"], "2021"


@pytest.mark.parametrize(
    "kind", ["truncated zip", "missing PWGTP", "unknown code", "dictionary of another year"]
)
def test_bad_pums_input_exits_2_and_writes_nothing(kind: str, tmp_path: Path, shared: Path) -> None:
    args, match = _bad_pums(kind, tmp_path, shared)
    out = tmp_path / "p.parquet"
    _assert_user_error(["--n", "5", "--out", str(out), *args], out, match)
