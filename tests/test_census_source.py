"""``census.open_source``: one typed way to open a run's census source, the lazy Fig. 13 table."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from persona_lab.census import (
    CENSUS_TABLE_DRAWS,
    CensusModel,
    OpenedSource,
    PumsSource,
    load_embedded_model,
    load_persona_frame,
    open_source,
)
from persona_lab.config import CensusConfig
from persona_lab.errors import PersonaLabError


def test_embedded_model_source_is_typed_and_its_table_is_lazy(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = CensusModel.sample

    def counting(
        self: CensusModel, n: int, rng: np.random.Generator, method: str = "systematic"
    ) -> pd.DataFrame:
        calls.append(n)
        return original(self, n, rng, method)  # type: ignore[arg-type]

    monkeypatch.setattr(CensusModel, "sample", counting)
    opened = open_source(CensusConfig(), seed=7)
    assert isinstance(opened, OpenedSource) and isinstance(opened.source, CensusModel)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opened.label = "x"  # type: ignore[misc]
    assert (opened.kind, opened.population, opened.year, opened.weight_column) == (
        "model",
        "states",
        2018,
        None,
    )
    assert opened.label == "embedded census model (ACS 2018, 12 states)"
    assert opened.description.startswith(
        "population: the combined population of HI, ID, ME, MT, ND, NE, NH, NM"
    )
    assert "weighting: PWGTP" in opened.description
    assert calls == []  # a dry run opens the source and never draws the Fig. 13 table
    table = opened.census_table()
    assert calls == [CENSUS_TABLE_DRAWS] and CENSUS_TABLE_DRAWS == 100_000
    assert opened.census_table() is table and calls == [100_000]  # built once
    # The same rows the pipeline drew before: 100,000 draws with the run's seed + 1.
    expected = original(load_embedded_model(), 100_000, np.random.default_rng(8))
    pd.testing.assert_frame_equal(table, expected)
    assert opened.summary()["population"] == "states" and "raking" not in opened.summary()


def test_pums_source_draws_the_same_persons_as_before(shared: Path) -> None:
    vt = shared / "pums" / "psam_p50_2018_1yr_VT.csv"
    opened = open_source(CensusConfig(pums=[vt], weighting="none"))
    frame = load_persona_frame([vt], 2018)
    assert opened.kind == "pums" and opened.weight_column == "weight" and opened.weighting == "none"
    assert opened.label == "ACS 2018 PUMS (VT), 6,436 person records"
    assert "each record equally" in opened.description and opened.states == ("VT",)
    pd.testing.assert_frame_equal(opened.census_table(), frame)
    before = PumsSource(frame, weighting="none").sample(50, np.random.default_rng(3))
    pd.testing.assert_frame_equal(opened.source.sample(50, np.random.default_rng(3)), before)


def test_pums_source_weights_override_and_reject_bad_weights(shared: Path) -> None:
    frame = load_persona_frame([shared / "pums" / "psam_p56_2018_1yr_WY.csv"], 2018)
    w = np.zeros(len(frame))
    w[[3, 10]] = [1.0, 3.0]  # only rows 3 and 10 can be drawn, row 10 three times as often
    drawn = PumsSource(frame, weights=w).draw_indices(4000, np.random.default_rng(0))
    assert set(drawn) == {3, 10} and abs((drawn == 10).mean() - 0.75) < 0.03
    with pytest.raises(PersonaLabError, match=f"expected {len(frame)} finite, non-negative sampling weights"):
        PumsSource(frame, weights=np.ones(3))


def test_population_must_be_states_or_national() -> None:
    from pydantic import ValidationError

    assert CensusConfig().population == "states"
    with pytest.raises(ValidationError):
        CensusConfig(population="world")  # type: ignore[arg-type]


def test_national_margins_of_another_year_are_refused(shared: Path) -> None:
    with pytest.raises(PersonaLabError, match="national margins ship for ACS 2018 only, not 2019"):
        open_source(CensusConfig(pums=[shared / "pums" / "psam_p50_2018_1yr_VT.csv"], year=2019,
                                 population="national"))  # fmt: skip


def test_personas_cli_population_national(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from persona_lab.cli import app
    from persona_lab.io import read_table

    out = tmp_path / "p.parquet"
    result = CliRunner().invoke(app, ["personas", "--n", "40", "--out", str(out), "--population", "national"])
    assert result.exit_code == 0, result.output
    assert "raked 200,000 draws of the embedded census model" in result.stdout
    assert "from embedded census model (ACS 2018, 12 states) raked to US national margins" in result.stdout
    assert len(read_table(out, table="personas")) == 40
    bad = CliRunner().invoke(app, ["personas", "--n", "4", "--out", str(out), "--population", "world"])
    assert bad.exit_code == 2 and "--population must be 'states' or 'national'" in bad.output
