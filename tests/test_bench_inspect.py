"""The inspect_ai task (optional extra): our modes as a solver and our critic as a scorer, run on our personas
and prompts with inspect's mock model, in Python and through the ``inspect eval`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("inspect_ai", reason="the inspect extra is not installed")

from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.log import read_eval_log  # noqa: E402
from inspect_ai.model import ModelOutput, ModelUsage  # noqa: E402

from persona_lab.config import load_config, to_toml  # noqa: E402
from persona_lab.io import write_table  # noqa: E402
from persona_lab.personas import read_personas, table_from_personas  # noqa: E402
from persona_lab.prompts import load_prompts  # noqa: E402

TASK_FILE = Path(__file__).resolve().parents[1] / "persona_lab" / "bench" / "_inspect.py"


@pytest.fixture(scope="module")
def run_dir(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory with real personas (the released sample) and the embedded questions."""
    run = tmp_path_factory.mktemp("inspect") / "run"
    run.mkdir()
    personas = table_from_personas(read_personas(shared / "persona" / "personas_sample100.json"), 0)
    write_table(personas, run / "personas.parquet", table="personas")
    questions = load_prompts(None).assign(kept=True, split="heldout")
    write_table(questions, run / "prompts.parquet", table="prompts")
    cfg = load_config("tiny", bench={"persona_split": "all", "n_personas": 3, "n_prompts": 2, "n_samples": 6})
    (run / "config.toml").write_text(to_toml(cfg))
    return run


def _system(messages) -> str:
    return next((m.text for m in messages if m.role == "system"), "")


def _output(obj: dict) -> ModelOutput:
    """A mock completion; its usage is given so the mock model counts no tokens (tiktoken needs a download)."""
    out = ModelOutput.from_content("mockllm", json.dumps(obj))
    out.usage = ModelUsage(input_tokens=100, output_tokens=20, total_tokens=120)
    return out


def _tiktoken_offline() -> bool:
    try:
        import tiktoken

        tiktoken.get_encoding("o200k_base")
    except Exception:  # noqa: BLE001 - no encoding file and no network
        return True
    return False


def test_the_task_runs_our_mode_and_critic_on_the_mock_model(run_dir: Path) -> None:
    critic_inputs: list[str] = []

    def outputs(messages, tools, tool_choice, config):
        user = messages[-1].text
        if _system(messages).startswith("You review answers"):
            critic_inputs.append(user)
            answer = user.split("The answer they received:\n", 1)[1]
            verdict = {
                "reasoning": "It fits her values and her situation.",
                "needs_revision": "slowly" not in answer,
            }
            return _output(verdict)
        question = user.split("Their question: ", 1)[1].split("\n", 1)[0]
        if "?" in question and len(question) % 2 == 0:
            obj = {
                "reasoning": "PRIVATE-REASONING about the persona.",
                "answer": question,
            }  # degenerate: echo
        else:
            obj = {
                "reasoning": "PRIVATE-REASONING about the persona.",
                "answer": "Take it slowly; talk it over.",
            }
        return _output(obj)

    from persona_lab.bench._inspect import persona_bench

    (log,) = inspect_eval(
        persona_bench(run_dir=str(run_dir), mode="chain_of_thought"),
        model="mockllm/model",
        model_args={"custom_outputs": outputs},
        log_dir=str(run_dir / "logs"),
        display="none",
    )
    assert log.status == "success"
    samples = log.samples
    assert len(samples) == 6 and len({s.id for s in samples}) == 6
    values = {s.id: s.scores["persona_critic"].value for s in samples}
    echoed = {s.id for s in samples if s.metadata["answer_failure"]}
    assert echoed and all(values[i] == "I" for i in echoed)  # a degenerate answer is never a pass
    assert all(values[s.id] == "C" for s in samples if s.id not in echoed)
    accuracy = log.results.scores[0].metrics["accuracy"].value
    assert accuracy == pytest.approx((6 - len(echoed)) / 6)
    # the critic read each good answer, never the reasoning
    assert len(critic_inputs) == 6 - len(echoed)
    assert all("PRIVATE-REASONING" not in text for text in critic_inputs)
    assert all(s.metadata["reasoning"] == "PRIVATE-REASONING about the persona." for s in samples)


@pytest.mark.skipif(
    _tiktoken_offline(),
    reason="inspect's mock model counts the tokens of its default output with tiktoken, whose o200k_base "
    "file must be downloaded (no network here)",
)
def test_inspect_eval_works_from_the_command_line(run_dir: Path, tmp_path: Path) -> None:
    inspect = Path(sys.executable).with_name("inspect")
    env = {**os.environ, "INSPECT_DISPLAY": "none"}
    out = subprocess.run(
        [str(inspect), "eval", f"{TASK_FILE}@persona_bench", "--model", "mockllm/model", "-T",
         f"run_dir={run_dir}", "-T", "n_samples=2", "--log-dir", str(tmp_path), "--display", "none"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    (path,) = list(tmp_path.glob("*.eval"))
    log = read_eval_log(str(path))
    assert log.status == "success" and len(log.samples) == 2
    # the mock's default text is no JSON: an unparseable answer, recorded, scored 0
    for sample in log.samples:
        assert sample.metadata["answer_failure"].startswith("unparseable: the answer has no JSON object")
        assert sample.scores["persona_critic"].value == "I"
