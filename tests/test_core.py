"""Run-directory I/O and configuration."""

from __future__ import annotations

import pandas as pd
import pytest

from persona_lab.config import PRESETS, load_config, to_toml
from persona_lab.errors import PersonaLabError
from persona_lab.io import atomic_path, read_table, write_table


def test_write_table_round_trip_and_metadata(tmp_path):
    df = pd.DataFrame({"persona_id": ["p00001", "p00002"], "age": [34, 7]})
    path = write_table(df, tmp_path / "personas.parquet", table="personas")
    pd.testing.assert_frame_equal(read_table(path, table="personas"), df)
    with pytest.raises(PersonaLabError, match="holds table 'personas', expected 'prompts'"):
        read_table(path, table="prompts")


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half written")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_read_table_errors_name_the_file(tmp_path):
    with pytest.raises(PersonaLabError, match="no such table"):
        read_table(tmp_path / "missing.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(PersonaLabError, match="bad.parquet: not a readable parquet"):
        read_table(bad)


def test_presets_and_overrides(tmp_path):
    tiny = load_config("tiny")
    assert tiny.personas.n == PRESETS["tiny"]["personas"]["n"]
    assert tiny.run_dir.name == "tiny"
    toml = tmp_path / "run.toml"
    toml.write_text('seed = 7\n[llm]\nbackend = "openai:gpt-4o"\n')
    cfg = load_config("paper", toml, name="x")
    assert (cfg.seed, cfg.llm.backend, cfg.name, cfg.personas.n) == (7, "openai:gpt-4o", "x", 1586)


def test_config_errors_are_one_line(tmp_path):
    with pytest.raises(PersonaLabError, match="unknown preset"):
        load_config("huge")  # type: ignore[arg-type]
    toml = tmp_path / "run.toml"
    toml.write_text("[personas]\nn = 'many'\n")
    with pytest.raises(PersonaLabError, match=r"run.toml: configuration field personas.n"):
        load_config(None, toml)


def test_to_toml_round_trips(tmp_path):
    cfg = load_config("tiny", seed=3, llm={"prices": {"my-model": (1.0, 0.5, 2.0)}})
    path = tmp_path / "config.toml"
    path.write_text(to_toml(cfg))
    assert load_config(None, path) == cfg


def test_census_contract_matches_persona_keys():
    """The census contract and PERSONA's key list are written in two places (the census stage does not depend
    on personas): the census attributes must be exactly PERSONA's keys that are neither open-ended, procedural
    nor optional, in the same order, and the optional ones the same set."""
    from persona_lab.census import CENSUS_ATTRIBUTES, OPTIONAL_ATTRIBUTES
    from persona_lab.personas._schema import ATTRIBUTE_KEYS, OPEN_ENDED_KEYS, OPTIONAL_KEYS, PROCEDURAL_KEYS

    others = {*OPEN_ENDED_KEYS, *PROCEDURAL_KEYS, *OPTIONAL_KEYS}
    assert CENSUS_ATTRIBUTES == tuple(k for k in ATTRIBUTE_KEYS if k not in others)
    assert set(OPTIONAL_ATTRIBUTES) == set(OPTIONAL_KEYS)
