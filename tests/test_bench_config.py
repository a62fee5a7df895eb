"""Bad bench configuration is refused by the stage's ``check`` before any call, each time with one line that
names the setting; the backends it will call are returned so their keys are checked too."""

from __future__ import annotations

from pathlib import Path

import pytest

from persona_lab.config import BenchConfig, RunConfig, load_config
from persona_lab.errors import PersonaLabError
from persona_lab.io import write_table
from persona_lab.personas import read_personas, table_from_personas
from persona_lab.pipeline import run_stages
from persona_lab.stages import STAGES

BENCH = next(s for s in STAGES if s.name == "bench")


@pytest.fixture(scope="module")
def men_run(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory whose personas are the released PERSONA personas of men (none has 'fertility')."""
    run_dir = tmp_path_factory.mktemp("bench_cfg") / "men"
    released = table_from_personas(read_personas(shared / "persona" / "personas_sample100.json"), 0)
    men = released[released["sex"] == "Male"].reset_index(drop=True)
    assert len(men) > 20 and men["fertility"].isna().all()
    run_dir.mkdir(parents=True)
    write_table(men, run_dir / "personas.parquet", table="personas")
    return run_dir


def _cfg(run_dir: Path, **bench: object) -> RunConfig:
    """The tiny preset on ``run_dir`` with bench settings replaced (not merged) by ``bench``."""
    cfg = load_config("tiny", name=run_dir.name, runs_dir=run_dir.parent)
    section = BenchConfig.model_validate(
        cfg.bench.model_dump() | {"persona_split": "all", "intersections": {}} | bench
    )
    return cfg.model_copy(update={"bench": section})


@pytest.mark.parametrize(
    ("bench", "message"),
    [
        (
            {"modes": ["baseline", "socratic"]},
            "bench.modes: unknown mode 'socratic'; choose among baseline, output_only, chain_of_thought, "
            "persona_summary",
        ),
        ({"pass_at_k_mode": "debate"}, "bench.pass_at_k_mode: unknown mode 'debate'"),
        (
            {"max_k": 8, "pass_at_k_samples": 4},
            "bench.max_k = 8 is larger than bench.pass_at_k_samples = 4 samples per item",
        ),
        ({"loo_attributes": ["hobby"]}, "bench.loo_attributes: 'hobby' is not a PERSONA attribute"),
        (
            {"loo_attributes": ["age", "fertility"]},
            "bench.loo_attributes: no persona has the attribute 'fertility'",
        ),
        (
            {"intersections": {"mothers": {"fertility": ["With a birth in the past 12 months"]}}},
            "bench.intersections.mothers.fertility: no persona has the attribute 'fertility'",
        ),
        (
            {"intersections": {"nb": {"sex": ["Nonbinary"]}}},
            "bench.intersections.nb.sex: no persona takes the value 'Nonbinary'",
        ),
        (
            {"intersections": {"very old": {"sex": ["Male"], "age": ["120+"]}}},
            "bench.intersections.very old.age: no persona takes the value '120+'",
        ),
        ({"critic": "gpt4"}, "backend spec 'gpt4': unknown provider 'gpt4'"),
        ({"pass_at_k_temperature": 0.0}, "bench.pass_at_k_temperature = 0 with 4 samples per item"),
    ],
)
def test_bad_configuration_is_refused_with_one_line_naming_it(
    men_run: Path, bench: dict, message: str
) -> None:
    with pytest.raises(PersonaLabError) as err:
        BENCH.check(_cfg(men_run, **bench))
    text = str(err.value)
    assert message in text and "\n" not in text


def test_the_refusal_comes_before_any_stage_runs(men_run: Path, tmp_path: Path) -> None:
    cfg = _cfg(men_run, intersections={"nb": {"sex": ["Nonbinary"]}})
    before = sorted(p.name for p in men_run.iterdir())
    with pytest.raises(PersonaLabError, match="bench.intersections.nb.sex"):
        run_stages(cfg, ["bench"], figures_dir=tmp_path / "figs", progress=False)
    assert sorted(p.name for p in men_run.iterdir()) == before  # no cache, no config.toml, no call
    assert not (tmp_path / "figs").exists()


def test_without_personas_yet_the_check_reads_the_personas_stage_preview(tmp_path: Path) -> None:
    # nothing in the run directory: the procedural personas of the embedded census model stand in
    cfg = load_config(
        "tiny", name="fresh", runs_dir=tmp_path, bench={"intersections": {"nb": {"sex": ["Nonbinary"]}}}
    )
    with pytest.raises(
        PersonaLabError, match=r"bench.intersections.nb.sex: no persona takes the value 'Nonbinary'"
    ):
        BENCH.check(cfg)
    # open-ended attributes are written by the personas stage: before it, only their names are checked
    ok = load_config("tiny", name="fresh", runs_dir=tmp_path, bench={"loo_attributes": ["lifestyle", "age"]})
    assert BENCH.check(ok) == []
    assert not (tmp_path / "fresh").exists()


def test_the_tiny_and_paper_presets_pass_the_check(tmp_path: Path) -> None:
    for preset in ("tiny", "paper"):
        cfg = load_config(preset, name=preset, runs_dir=tmp_path)
        assert BENCH.check(cfg) == []


def test_models_and_critic_are_returned_for_their_key_check_and_grading_needs_no_openai_key(
    men_run: Path,
) -> None:
    cfg = _cfg(men_run, models=["openai:gpt-4o", "local"], critic="anthropic:claude-sonnet-4-5")
    assert BENCH.check(cfg) == ["openai:gpt-4o", "anthropic:claude-sonnet-4-5"]
    # a local model graded by a local critic calls nothing else
    assert BENCH.check(_cfg(men_run, models=["local"], critic="local")) == []
