"""PERSONA Bench as an ``inspect_ai`` task: our modes as a solver, our critic as a scorer (optional extra).

The official PERSONA Bench (the ``persona-bench`` package) runs on inspect-ai; this task gives its users the
same workflow on this project's personas, prompts, templates and checks::

    pip install 'persona-lab[inspect]'
    inspect eval persona_lab/bench/_inspect.py@persona_bench --model openai/gpt-4o \\
        -T run_dir=runs/tiny -T mode=persona_summary -T n_samples=700
    # the critic: the model under test unless a role or a model is given
    inspect eval ... --model-role critic=anthropic/claude-sonnet-4-5
    # pass@k the inspect way: 16 samples per item, the unbiased estimator as the reducer
    inspect eval ... --epochs 16 --epochs-reducer pass_at_4 -T temperature=1.0

The items are the bench stage's (``persona_lab.bench.select_items`` on the run directory's ``personas.parquet``
and ``prompts.parquet`` with its ``config.toml``), so an inspect log and ``bench.parquet`` score the same
(persona, prompt) pairs. The solver builds the mode's request with ``answer_request``, asks for the mode's JSON
schema (``response_schema``), and keeps only the ``answer`` field as the completion, so the critic never sees the
reasoning or summary. The scorer asks the critic with ``critic_request`` and reads the verdict with
``parse_verdict``: 1 (``C``) when no revision is needed, 0 (``I``) when it is or when the model's answer failed
(degenerate, unparseable), ``N`` (no answer, also 0 in ``accuracy``) when the critic could not give a verdict.
Unlike the official code, grading never needs an OpenAI key: the critic is whatever model inspect is given.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessageSystem, ChatMessageUser, GenerateConfig, ResponseSchema, get_model
from inspect_ai.scorer import CORRECT, INCORRECT, NOANSWER, Score, Target, accuracy, bootstrap_stderr, scorer
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.util import JSONSchema

from persona_lab.bench._critic import critic_request, parse_verdict
from persona_lab.bench._modes import answer_request, get_mode, parse_answer
from persona_lab.bench._run import MODEL_FAILURE_KINDS, bench_personas, bench_prompts, select_items
from persona_lab.config import RunConfig, load_config
from persona_lab.errors import PersonaLabError
from persona_lab.io import read_table
from persona_lab.llm import LLMRequest, LLMResponse

_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def _json_object(text: str) -> Any | None:
    """The JSON object in a completion: the whole text, or its outermost ``{...}`` (models that add prose)."""
    for candidate in (text, *(m.group(0) for m in [_OBJECT.search(text or "")] if m)):
        try:
            return json.loads(candidate)
        except (json.JSONDecodeError, TypeError):
            continue
    return None


def _messages(request: LLMRequest) -> list[Any]:
    out: list[Any] = []
    for m in request.messages:
        out.append(
            ChatMessageSystem(content=m.content) if m.role == "system" else ChatMessageUser(content=m.content)
        )
    return out


def _schema(request: LLMRequest, name: str) -> ResponseSchema:
    return ResponseSchema(name=name, json_schema=JSONSchema.model_validate(request.json_schema))


def _config(run_dir: Path, config: str | None) -> RunConfig:
    if config is not None:
        return load_config(None, Path(config))
    own = run_dir / "config.toml"
    return load_config(None, own) if own.exists() else load_config("tiny")


def bench_samples(run_dir: str | Path, cfg: RunConfig, *, mode: str) -> list[Sample]:
    """The bench stage's items of ``run_dir`` as inspect samples (id ``persona_id/prompt_id``)."""
    run_dir = Path(run_dir)
    tables = {}
    for name in ("personas", "prompts"):
        path = run_dir / f"{name}.parquet"
        if not path.exists():
            raise PersonaLabError(
                f"{path}: missing; run `persona-lab run personas prompts --run-dir {run_dir}` first"
            )
        tables[name] = read_table(path, table=name)
    b = cfg.bench
    items = select_items(
        bench_personas(tables["personas"], b), bench_prompts(tables["prompts"], b), b.n_samples, cfg.seed
    )
    return [
        Sample(
            id=f"{r['persona_id']}/{r['prompt_id']}",
            input=r["question"],
            metadata={
                "persona_id": r["persona_id"],
                "prompt_id": r["prompt_id"],
                "persona": r["persona"],
                "mode": mode,
            },
        )
        for r in items.to_dict("records")
    ]


@solver
def persona_mode(mode: str = "output_only", words: int = 150, max_tokens: int = 1024) -> Solver:
    """Answer in one PERSONA Bench mode: the mode's template and JSON schema; the completion becomes the
    ``answer`` field alone (reasoning or summary go to ``state.metadata``)."""
    get_mode(mode)

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        request = answer_request(mode, state.metadata["persona"], state.input_text, words=words)
        state.messages = _messages(request)
        state = await generate(
            state, response_schema=_schema(request, f"persona_bench_{mode}"), max_tokens=max_tokens
        )
        text = state.output.completion
        parsed = parse_answer(LLMResponse(text=text, parsed=_json_object(text)), mode, state.input_text)
        state.metadata["raw_answer"] = text
        state.metadata["reasoning"] = parsed.aside
        state.metadata["answer_failure"] = parsed.failure
        state.output.completion = parsed.answer or ""
        return state

    return solve


@scorer(metrics=[accuracy(), bootstrap_stderr()])
def persona_critic(model: str | None = None, max_tokens: int = 512) -> Any:
    """The PERSONA Bench critic: ``C`` if the answer needs no revision for the persona, else ``I``.

    Args:
        model: the critic (an inspect model name); default the ``critic`` model role, else the model under test.
        max_tokens: output budget of one verdict.
    """

    async def score(state: TaskState, target: Target) -> Score:
        failure = state.metadata.get("answer_failure", "")
        meta = {"persona_id": state.metadata.get("persona_id"), "prompt_id": state.metadata.get("prompt_id")}
        if failure:
            own = failure.split(":", 1)[0] in MODEL_FAILURE_KINDS
            return Score(
                value=INCORRECT if own else NOANSWER,
                answer="",
                explanation=f"answer failed: {failure}",
                metadata=meta | {"failure": failure},
            )
        answer = state.output.completion
        request = critic_request(state.metadata["persona"], state.input_text, answer, max_tokens=max_tokens)
        critic = get_model(model) if model else get_model(role="critic")
        out = await critic.generate(
            _messages(request),
            config=GenerateConfig(
                response_schema=_schema(request, "persona_bench_critic"),
                temperature=0.0,
                max_tokens=max_tokens,
            ),
        )
        text = out.completion
        verdict = parse_verdict(
            LLMResponse(text=text, parsed=_json_object(text)), answer=answer, question=state.input_text
        )
        if verdict.value is None:
            return Score(
                value=NOANSWER,
                answer=answer,
                explanation=f"critic failed: {verdict.failure}",
                metadata=meta | {"failure": f"critic: {verdict.failure}", "raw_verdict": text},
            )
        return Score(
            value=INCORRECT if verdict.value else CORRECT,
            answer=answer,
            explanation=verdict.rationale,
            metadata=meta | {"needs_revision": verdict.value, "failure": ""},
        )

    return score


@task
def persona_bench(
    run_dir: str = "runs/tiny",
    mode: str = "output_only",
    n_samples: int | None = None,
    critic: str | None = None,
    config: str | None = None,
    temperature: float | None = None,
) -> Task:
    """PERSONA Bench on a run directory's personas and prompts, in one mode.

    Args:
        run_dir: a run directory with ``personas.parquet`` and ``prompts.parquet`` (and its ``config.toml``,
            whose ``bench`` section selects the items).
        mode: ``baseline``, ``output_only``, ``chain_of_thought`` or ``persona_summary``.
        n_samples: items (default ``bench.n_samples`` of the configuration; the paper: 700).
        critic: the critic model (default: the ``critic`` model role, else the model under test).
        config: a TOML configuration to use instead of the run directory's.
        temperature: sampling temperature of the answers (default: the model's).
    """
    cfg = _config(Path(run_dir), config)
    if n_samples is not None:
        cfg = cfg.model_copy(update={"bench": cfg.bench.model_copy(update={"n_samples": n_samples})})
    b = cfg.bench
    return Task(
        dataset=MemoryDataset(bench_samples(run_dir, cfg, mode=mode), name="persona_bench"),
        solver=persona_mode(mode, words=b.answer_words, max_tokens=b.max_tokens),
        scorer=persona_critic(critic, max_tokens=b.critic_max_tokens),
        config=GenerateConfig(temperature=temperature) if temperature is not None else GenerateConfig(),
        name=f"persona_bench_{mode}",
    )
