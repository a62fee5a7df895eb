"""The stage loop end to end on the embedded defaults with the real local model: skipping, fingerprints, the dry
run, the lock, and the CLI's errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from persona_lab.cli import app
from persona_lab.config import load_config, to_toml
from persona_lab.io import read_table
from persona_lab.llm import LLMError, estimate_cost
from persona_lab.pipeline import RunContext, estimate_run, fingerprints, run_stages, stage_names, stage_states

CORE = ["census", "personas", "prompts"]
OPEN_ENDED = (
    "detailed job description", "defining quirks", "mannerisms", "personal time", "lifestyle", "ideology",
    "political views",
)  # fmt: skip
FIGURES = (
    "fig02_persona_demographics",
    "fig13_census_demographics",
    "fig13_persona_vs_census_tvd",
    "fig03_prompt_topics",
)
REFERENCE = Path(__file__).parent / "data" / "reference_run"
"""A run of the pipeline as it was before the stage registry: tables and the response cache that made them."""


def _small(tmp_path: Path, **extra: object):
    overrides = {
        "name": "small",
        "runs_dir": tmp_path / "runs",
        "personas": {"n": 24, "n_train": 16, "enrich": 2},
        "prompts": {"limit": 8, "n_topics": 2},
    }
    return load_config("tiny", **(overrides | extra))


class _NoModel:
    """Patch the local backend so any call is counted and fails: what a rerun must never need."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from persona_lab.llm import LocalBackend

        self.calls: list[object] = []

        async def no_call(backend: object, request: object) -> object:
            self.calls.append(request)
            raise LLMError("invalid_request", "the model is not available in this rerun")

        monkeypatch.setattr(LocalBackend, "complete", no_call)


@pytest.mark.local_model
@pytest.mark.slow
def test_same_tables_as_the_pipeline_before_the_stage_registry(tmp_path, monkeypatch):
    # The reference run was made by the pipeline before the stage registry, with this configuration and seed.
    # Replaying its response cache through the stage loop gives the same tables without one model call, except
    # for what changed on purpose since:
    # - `income` (and so the persona `text` and every LLM request about a persona): the embedded model now draws
    #   incomes rounded as PUMS publishes them, so the personas' LLM steps are compared with them switched off;
    # - topic names: a name the degenerate-answer check rejects now falls back to the TF-IDF terms;
    # - the raw-text columns the degenerate-answer check added (`*_raw`).
    ref = load_config(path=REFERENCE / "config.toml", runs_dir=tmp_path / "runs")
    cfg = ref.model_copy(
        update={"personas": ref.personas.model_copy(update={"llm_consistency": False, "enrich": 0})}
    )
    cfg.run_dir.mkdir(parents=True)
    shutil.copy(REFERENCE / "llm_cache.sqlite", cfg.run_dir / "llm_cache.sqlite")
    no_model = _NoModel(monkeypatch)
    run_stages(cfg, CORE, figures_dir=tmp_path / "figures", progress=False)
    assert no_model.calls == []

    changed = {
        "personas": {"income", "text", "llm_consistent", "consistency_reason", "check_failure", "enriched",
                     "enrichment_failure", *OPEN_ENDED},  # enrichment is off here
        "prompts": {"topic_name"},
        "topics": {"topic_name", "name_source", "name_failure"},
    }  # fmt: skip
    # slots whose profile the reference's LLM check rejected were redrawn there; here the check is off
    redrawn = set(pd.read_parquet(REFERENCE / "rejected_personas.parquet")["persona_id"])
    for name, skip in changed.items():
        old = pd.read_parquet(REFERENCE / f"{name}.parquet")
        new = read_table(cfg.run_dir / f"{name}.parquet", table=name)
        if name == "personas":
            assert list(new["persona_id"]) == list(old["persona_id"])
            keep = ~old["persona_id"].isin(redrawn)
            assert keep.sum() >= len(old) // 2
            old, new = old[keep].reset_index(drop=True), new[keep.to_numpy()].reset_index(drop=True)
        assert set(old.columns) - skip <= set(new.columns), name
        same = [c for c in old.columns if c not in skip]
        pd.testing.assert_frame_equal(new[same], old[same], check_dtype=False, obj=name)
    # the incomes moved only by PUMS rounding: at most half a rounding step ($500 above $50,000)
    old_p = pd.read_parquet(REFERENCE / "personas.parquet")
    keep = ~old_p["persona_id"].isin(redrawn)
    old_income = pd.to_numeric(old_p["income"], errors="coerce")[keep]
    new_income = pd.to_numeric(read_table(cfg.run_dir / "personas.parquet")["income"], errors="coerce")[keep]
    assert ((new_income - old_income).abs().fillna(0) <= 500).all()


@pytest.mark.local_model
@pytest.mark.slow
def test_run_skip_rerun_and_a_changed_setting(tmp_path, monkeypatch):
    cfg = _small(tmp_path)
    figures = tmp_path / "figures"
    summary = run_stages(cfg, CORE, figures_dir=figures, progress=False)
    run_dir = cfg.run_dir

    personas = read_table(run_dir / "personas.parquet", table="personas")
    assert len(personas) == 24 and (personas["split"] == "train").sum() == 16
    assert personas["text"].str.startswith("age: ").all()
    prompts = read_table(run_dir / "prompts.parquet", table="prompts")
    assert len(prompts) == 72
    assert int(prompts["llm_failure"].notna().sum() + prompts["controversial"].notna().sum()) == 8
    for name in FIGURES:
        assert (figures / f"{name}.png").stat().st_size > 10_000
        assert (figures / f"{name}.svg").exists()
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk["personas"]["n"] == 24 and on_disk["prompt_funnel"]["loaded"] == 72
    assert on_disk["complete"] is True
    # one consistency check per persona, two enrichments, 8 classifications, 2 topic names
    assert summary["stages"]["personas"]["llm_calls"] >= 24 + 2
    assert summary["stages"]["prompts"]["llm_calls"] == 8 + 2
    assert summary["stages"]["census"]["llm_calls"] == 0
    assert load_config(path=run_dir / "config.toml") == cfg
    assert set(stage_states(cfg, run_dir, figures).set_index("stage").loc[CORE, "state"]) == {"done"}

    # a rerun of a done stage sends nothing and writes nothing: recorded failures replay as failures
    no_model = _NoModel(monkeypatch)
    again = run_stages(cfg, ["prompts"], figures_dir=figures, progress=False)
    assert no_model.calls == []
    assert again["stages"]["prompts"]["state"] == "skipped (done)"

    # the whole run again, forced: every table is the same, from the cache alone
    run_stages(cfg, CORE, figures_dir=figures, progress=False, force=True)
    assert no_model.calls == []
    assert read_table(run_dir / "personas.parquet").equals(personas)
    assert read_table(run_dir / "prompts.parquet").equals(prompts)

    # a changed prompts setting makes prompts (and only what depends on it) stale, nothing upstream
    first = json.loads((run_dir / "stages.json").read_text())["stages"]
    changed = cfg.model_copy(update={"prompts": cfg.prompts.model_copy(update={"n_topics": 3})})
    states = stage_states(changed, run_dir, figures).set_index("stage")["state"]
    assert states["census"] == states["personas"] == "done" and states["prompts"] == "stale"
    monkeypatch.undo()
    run_stages(changed, CORE, figures_dir=figures, progress=False)
    after = json.loads((run_dir / "stages.json").read_text())["stages"]
    assert after["census"]["finished_at"] == first["census"]["finished_at"]
    assert after["personas"]["finished_at"] == first["personas"]["finished_at"]
    assert after["prompts"]["fingerprint"] != first["prompts"]["fingerprint"]
    assert read_table(run_dir / "topics.parquet")["topic"].nunique() == 3


def test_fingerprints_follow_the_data_flow(tmp_path):
    cfg = _small(tmp_path)
    base = fingerprints(cfg)
    assert list(base) == stage_names()
    more_topics = fingerprints(
        cfg.model_copy(update={"prompts": cfg.prompts.model_copy(update={"n_topics": 5})})
    )
    assert more_topics["census"] == base["census"] and more_topics["personas"] == base["personas"]
    assert more_topics["prompts"] != base["prompts"]
    other_seed = fingerprints(cfg.model_copy(update={"seed": 1}))
    assert all(other_seed[name] != base[name] for name in CORE)
    # a setting no stage reads (the concurrency of calls) changes no fingerprint
    faster = fingerprints(cfg.model_copy(update={"llm": cfg.llm.model_copy(update={"concurrency": 2})}))
    assert faster == base


def test_dry_run_is_the_sum_of_every_stages_plan(tmp_path):
    cfg = load_config(
        "tiny",
        runs_dir=tmp_path,
        personas={"n": 12, "n_train": 8, "enrich": 3},
        prompts={"limit": 5, "n_topics": 2},
        llm={"backend": "openai:my-model", "prices": {"my-model": (1.0, 0.5, 2.0)}},
    )
    table = estimate_run(cfg).set_index("stage")
    assert list(table.index) == [*stage_names(), "total"]
    calls = table["calls"].to_dict()
    assert calls["census"] == 0
    assert calls["personas"] == 12 + 3  # one consistency check per persona, three enrichments
    assert calls["prompts"] == 5 + 2  # five classifications, two topic names
    assert calls["total"] == sum(v for k, v in calls.items() if k != "total")
    # each row is the estimate of that stage's own plan
    from persona_lab.pipeline._run import _producers, _registry

    ctx = RunContext(
        config=cfg,
        run_dir=cfg.run_dir,
        figures_dir=tmp_path,
        console=None,  # type: ignore[arg-type]
        dry_run=True,
        producers=_producers(_registry()),
    )
    for stage in _registry():
        planned = stage.plan(ctx)
        by_spec = planned if isinstance(planned, dict) else {cfg.llm.backend: planned}
        assert table.loc[stage.name, "calls"] == sum(len(v) for v in by_spec.values())
        if stage.name == "prompts":
            est = estimate_cost(by_spec[cfg.llm.backend], cfg.llm.backend, prices=cfg.llm.prices)
            assert table.loc["prompts", "input_tokens"] == est.input_tokens
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
    table = estimate_run(cfg, CORE).set_index("stage")
    assert table.loc["total", "calls"] == 4 + 1 + 2 + 2
    assert table["usd"].isna().all()


def test_cli_dry_run_of_selected_stages(tmp_path):
    result = CliRunner().invoke(
        app, ["run", "prompts", "--dry-run", "--run-dir", str(tmp_path / "r"), "--set", "prompts.limit=3"]
    )
    assert result.exit_code == 0, result.output
    lines = [ln.split() for ln in result.output.splitlines()]
    assert ["prompts", "9"] == lines[2][:2]  # 3 classifications and the tiny preset's 6 topic names
    assert not (tmp_path / "r").exists()


def test_config_toml_round_trips_awkward_values(tmp_path):
    cfg = load_config(
        "tiny", name='odd "name"\nwith a newline', llm={"prices": {'model "x"': (1.0, 0.5, 2.0)}}
    )
    path = tmp_path / "config.toml"
    path.write_text(to_toml(cfg))
    assert load_config(path=path) == cfg


def test_cli_bad_config_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "run.toml"
    bad.write_text("[personas]\nn = 'many'\n")
    result = CliRunner().invoke(app, ["reproduce", "--config", str(bad), "--figures", str(tmp_path / "f")])
    assert result.exit_code == 2
    assert "configuration field personas.n" in result.output
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("prompts.limit=-1", "prompts.limit"),
        ("personas.enrich=-1", "personas.enrich"),
        ("prompts.n_topics=0", "prompts.n_topics"),
        ("personas.n=0", "personas.n"),
        ("llm.timeout_s=0", "llm.timeout_s"),
        ("prompts.n_topcs=3", "prompts.n_topcs"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, setting, field):
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--run-dir", str(run_dir), "--set", setting])
    assert result.exit_code == 2, result.output
    assert f"configuration field {field}" in result.output
    assert not run_dir.exists()


def test_unwritable_paths_are_refused_before_anything_runs(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for args in (
        ["run", "--run-dir", str(blocker / "run")],
        ["run", "--run-dir", str(tmp_path / "run"), "--figures", str(blocker / "figures")],
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "is a file, not a directory" in result.output
        assert not (tmp_path / "run").exists()


def test_unknown_stage_and_unknown_backend_are_one_line_errors(tmp_path):
    result = CliRunner().invoke(app, ["run", "feedbak", "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "unknown stage(s) feedbak" in result.output
    result = CliRunner().invoke(app, ["run", "--run-dir", str(tmp_path / "r"), "--backend", "mistral:large"])
    assert result.exit_code == 2 and "mistral" in result.output
    assert not (tmp_path / "r").exists()


def test_a_second_run_on_a_locked_run_directory_is_refused(tmp_path):
    import subprocess
    import sys
    import time

    run_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from persona_lab.pipeline._run import run_lock\n"
            "with run_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(60)",
            str(run_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = CliRunner().invoke(app, ["run", "census", "--run-dir", str(run_dir)])
        assert result.exit_code == 2
        assert f"in use by another persona-lab run (pid {holder.pid})" in result.output
    finally:
        holder.kill()  # kill -9: the OS drops the lock with the process
        holder.wait()
    time.sleep(0.1)
    from persona_lab.pipeline._run import run_lock

    with run_lock(run_dir):
        pass


@pytest.mark.local_model
def test_an_empty_prompt_stage_is_an_honest_incomplete_run(tmp_path):
    # a classifier limit of 0 sends nothing to the LLM filter, so no prompt is kept: the stage still writes its
    # tables and a figure that says why, the summary is written, and the exit code says the run is incomplete
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "prompts",
            "--run-dir",
            str(run_dir),
            "--figures",
            str(tmp_path / "f"),
            "--set",
            "prompts.limit=0",
        ],
    )
    assert result.exit_code == 3, result.output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] is False and "no prompt survived" in summary["incomplete"]["prompts"]
    assert (tmp_path / "f" / "fig03_prompt_topics.png").exists()
    assert read_table(run_dir / "prompts.parquet")["kept"].sum() == 0


def test_compare_two_runs_shows_the_difference_and_what_it_made_stale(tmp_path):
    from persona_lab.pipeline import compare_runs

    a = load_config("tiny", runs_dir=tmp_path, name="a")
    b = load_config("tiny", runs_dir=tmp_path, name="b", prompts={"n_topics": 5})
    for cfg, topics in ((a, 6), (b, 5)):
        cfg.run_dir.mkdir()
        (cfg.run_dir / "config.toml").write_text(to_toml(cfg))
        record = {"prompts": {"summary": {"prompt_funnel": {"kept": 20}, "n_topics": topics}, "seconds": 2.0}}
        (cfg.run_dir / "stages.json").write_text(json.dumps({"stages": record}))
    diff = compare_runs(a.run_dir, b.run_dir)
    assert diff.config.to_dict("records") == [{"key": "prompts.n_topics", "a": 6, "b": 5}]
    assert diff.stale[0] == "prompts" and "census" not in diff.stale and "personas" not in diff.stale
    numbers = diff.numbers.set_index("key")
    assert numbers.loc["n_topics", "difference"] == -1
    assert numbers.loc["prompt_funnel.kept", "difference"] == 0
    result = CliRunner().invoke(app, ["compare", str(a.run_dir), str(b.run_dir)])
    assert result.exit_code == 0 and "prompts.n_topics" in result.output


def test_a_missing_api_key_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = CliRunner().invoke(app, ["run", "--run-dir", str(tmp_path / "r"), "--backend", "openai:gpt-4o"])
    assert result.exit_code == 2, result.output
    assert "OPENAI_API_KEY" in result.output
    assert not (tmp_path / "r").exists()


def test_personas_out_under_a_file_is_one_line_and_writes_nothing(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(app, ["personas", "--n", "3", "--out", str(blocker / "p.parquet")])
    assert result.exit_code == 2, result.output
    assert "is a file, not a directory" in result.output
    assert blocker.read_text() == "not a directory"
