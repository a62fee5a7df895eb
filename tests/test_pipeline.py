"""The main job end to end on the embedded defaults with the real local model, and its CLI errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from persona_lab.cli import app
from persona_lab.config import load_config
from persona_lab.io import read_table
from persona_lab.llm import LLMError
from persona_lab.pipeline import estimate_run, reproduce

FIGURES = (
    "fig02_persona_demographics",
    "fig13_census_demographics",
    "fig13_persona_vs_census_tvd",
    "fig03_prompt_topics",
)


@pytest.mark.local_model
@pytest.mark.slow
def test_reproduce_small_run_then_rerun_from_cache(tmp_path, shared, monkeypatch):
    overrides = {
        "name": "small",
        "runs_dir": tmp_path / "runs",
        "personas": {"n": 24, "n_train": 16, "enrich": 1},
        "prompts": {"limit": 6, "n_topics": 2},
    }
    cfg = load_config("tiny", **overrides)
    figures = tmp_path / "figures"
    run_dir = reproduce(cfg, figures_dir=figures)

    personas = read_table(run_dir / "personas.parquet", table="personas")
    assert len(personas) == 24 and (personas["split"] == "train").sum() == 16
    assert personas["text"].str.startswith("age: ").all()
    prompts = read_table(run_dir / "prompts.parquet", table="prompts")
    assert (
        len(prompts) == 72
        and int(prompts["llm_failure"].notna().sum() + prompts["controversial"].notna().sum()) == 6
    )
    for name in FIGURES:
        assert (figures / f"{name}.png").stat().st_size > 10_000
        assert (figures / f"{name}.svg").exists()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["personas"]["n"] == 24
    assert summary["prompt_funnel"]["loaded"] == 72
    assert (run_dir / "config.toml").read_text().startswith('name = "small"')
    # one consistency check per persona, one enrichment, 6 classifications, 2 topic names
    assert summary["llm"]["responses"] + summary["llm"]["failures"] >= 24 + 1 + 6

    # a rerun replays every LLM answer from the cache: the same tables, and the model is called only for the
    # calls that failed the first time (retried by design; failures are recorded, never cached as answers)
    from persona_lab.llm._local import LocalBackend

    calls = []

    async def no_call(self, request):
        calls.append(request)
        raise LLMError("invalid_request", "the model is not available in this rerun")

    monkeypatch.setattr(LocalBackend, "complete", no_call)
    reproduce(cfg, figures_dir=figures)
    assert len(calls) == summary["llm"]["failures"]
    if not calls:
        assert read_table(run_dir / "personas.parquet").equals(personas)
        assert read_table(run_dir / "prompts.parquet").equals(prompts)


def test_cli_bad_config_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "run.toml"
    bad.write_text("[personas]\nn = 'many'\n")
    result = CliRunner().invoke(app, ["reproduce", "--config", str(bad), "--figures", str(tmp_path / "f")])
    assert result.exit_code == 2
    assert "configuration field personas.n" in result.output
    assert not (tmp_path / "f").exists()


def test_dry_run_counts_every_stage_and_prices_it(tmp_path):
    cfg = load_config(
        "tiny",
        runs_dir=tmp_path,
        personas={"n": 12, "n_train": 8, "enrich": 3},
        prompts={"limit": 5, "n_topics": 2},
        llm={"backend": "openai:my-model", "prices": {"my-model": (1.0, 0.5, 2.0)}},
    )
    table = estimate_run(cfg).set_index("stage")
    assert table["calls"].to_dict() == {
        "personas: LLM consistency check": 12,
        "personas: enrichment": 3,
        "prompts: controversy classifier": 5,
        "prompts: topic names": 2,
        "total": 22,
    }
    # $1 per 1M input tokens, $2 per 1M output tokens (output = the max_tokens upper bound)
    expected = (table["input_tokens"] * 1.0 + table["max_output_tokens"] * 2.0) / 1e6
    assert table["usd"].to_numpy() == pytest.approx(expected.to_numpy())
    assert not tmp_path.joinpath("tiny").exists()  # a dry run writes nothing


def test_dry_run_of_a_self_hosted_server_costs_nothing(tmp_path):
    # gpt-4o is in the price table, but behind @url it is a self-hosted server: the run costs 0, so must the estimate
    cfg = load_config(
        "tiny",
        runs_dir=tmp_path,
        personas={"n": 4, "n_train": 2, "enrich": 1},
        prompts={"limit": 2, "n_topics": 2},
        llm={"backend": "openai:gpt-4o@http://127.0.0.1:8000/v1"},
    )
    table = estimate_run(cfg).set_index("stage")
    assert table.loc["total", "calls"] == 4 + 1 + 2 + 2
    assert table["usd"].isna().all()
