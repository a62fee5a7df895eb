"""Run configuration: one pydantic model, with presets, written resolved to ``runs/<name>/config.toml``."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from persona_lab.errors import PersonaLabError

Preset = Literal["tiny", "paper"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CensusConfig(_Section):
    pums: list[Path] = Field(default_factory=list)
    """PUMS person files (``psam_pNN.csv`` or the Census Bureau's ``csv_pXX.zip``), one per state.
    Empty: sample from the embedded census model in ``data/``."""
    states: list[str] = Field(default_factory=list)
    """State abbreviations (e.g. ``["VT", "WY"]``) to fetch from the Census Bureau (or ``mirror``) when ``pums``
    is empty. Empty too: the embedded census model."""
    mirror: Path | None = None
    """A local directory holding ``csv_pXX.zip`` and ``PUMS_Data_Dictionary_YYYY.csv``, tried before downloading."""
    year: int = 2018
    """ACS year of the PUMS files; selects the data dictionary used to decode them."""
    detail: Literal["coarse", "full"] = "coarse"
    """``coarse``: industry, occupation, ancestry and foreign birthplaces grouped into tens of categories.
    ``full``: every PUMS label (e.g. ``RET-Pharmacies And Drug Stores``), as some released PERSONA personas show."""
    group_quarters: Literal["keep", "drop"] = "keep"
    """Persons in group quarters (dorms, prisons, nursing homes) have no household: keep them with
    "Not applicable (group quarters)" household fields, or drop them."""
    weighting: Literal["pwgtp", "none"] = "pwgtp"
    """``pwgtp``: sample persons with probability proportional to the person weight PWGTP (mirrors the
    population). ``none``: sample rows uniformly, which is what PERSONA's released personas resemble."""


class PersonasConfig(_Section):
    n: int = 1586
    """Number of personas (PERSONA: 1,586 = 1,000 train + 586 test)."""
    n_train: int = 1000
    """Personas in the train split; the rest are test."""
    enrich: int | None = None
    """How many personas get LLM-written open-ended fields; ``None`` = all."""
    llm_consistency: bool = True
    """Run the LLM self-consistency check after the deterministic rules."""
    released: Path | None = None
    """Released PERSONA personas (JSON list of persona texts) to set our ideology distribution beside."""


class PromptsConfig(_Section):
    source: Path | None = None
    """PRISM prompts: a JSON list of strings or PRISM's ``conversations.jsonl``. ``None``: the embedded
    value-laden questions in ``data/``."""
    min_words: int = 5
    """Rule filter: drop prompts with fewer whitespace-separated words."""
    require_question_mark: bool = True
    """Rule filter: drop prompts without a ``?``."""
    deduplicate: bool = True
    """Drop exact duplicate prompt texts after the rule filters (PRISM: 4,652 -> 4,620)."""
    llm_filter: bool = True
    """Keep only prompts the LLM zero-shot classifier calls controversial."""
    limit: int | None = None
    """Classify at most this many rule-filtered prompts (a cost cap for quick runs); ``None`` = all."""
    n_topics: int = 12
    """Number of topic clusters."""
    topic_method: Literal["tfidf", "embeddings"] = "tfidf"
    """``tfidf``: TF-IDF + SVD + k-means (scikit-learn). ``embeddings``: sentence-transformers MiniLM."""
    n_train: int = 3000
    """Train prompts (PERSONA: 3,000); scaled down proportionally when fewer prompts survive."""
    n_heldout: int = 868
    """Held-out prompts (PERSONA: 868)."""


class LLMConfig(_Section):
    backend: str = "local"
    """Backend spec: ``local``, ``openai:gpt-4o``, ``anthropic:claude-sonnet-4-5``,
    ``openai:MODEL@http://127.0.0.1:8000/v1`` (any OpenAI-compatible server)."""
    concurrency: int = 8
    """Requests in flight at once per backend."""
    requests_per_minute: int | None = None
    """Client-side request rate limit; ``None`` = unlimited."""
    tokens_per_minute: int | None = None
    """Client-side token rate limit; ``None`` = unlimited."""
    max_retries: int = 6
    """Retries on 429/5xx/timeouts/connection errors before a call is recorded as failed."""
    timeout_s: float = 120.0
    """Per-request timeout in seconds."""
    batch: bool = False
    """Use the provider's batch API (OpenAI Batch, Anthropic Message Batches) for large stages."""
    temperature: float = 0.0
    """Default sampling temperature."""
    prices: dict[str, tuple[float, float, float]] = Field(default_factory=dict)
    """Extra/override prices in USD per million tokens, model -> (input, cached input, output)."""


class RunConfig(_Section):
    name: str = "default"
    """Run name; the run directory is ``<runs_dir>/<name>``."""
    runs_dir: Path = Path("runs")
    """Parent directory of run directories."""
    seed: int = 0
    """Master seed; every stage derives its own generator from it."""
    preset: Preset | None = None
    """The preset this configuration started from, if any."""
    census: CensusConfig = Field(default_factory=CensusConfig)
    personas: PersonasConfig = Field(default_factory=PersonasConfig)
    prompts: PromptsConfig = Field(default_factory=PromptsConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)

    @property
    def run_dir(self) -> Path:
        return self.runs_dir / self.name


PRESETS: dict[str, dict] = {
    "tiny": {
        "name": "tiny",
        "personas": {"n": 100, "n_train": 63, "enrich": 4},
        "prompts": {"limit": 24, "n_topics": 6, "n_train": 3000, "n_heldout": 868},
    },
    "paper": {
        "name": "paper",
        "personas": {"n": 1586, "n_train": 1000},
        "prompts": {"n_topics": 22},
    },
}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(preset: Preset | None = None, path: Path | None = None, **overrides: object) -> RunConfig:
    """Build a configuration from a preset, then a TOML file, then keyword overrides (later wins)."""
    data: dict = {}
    if preset is not None:
        if preset not in PRESETS:
            raise PersonaLabError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        data = _merge(data, PRESETS[preset]) | {"preset": preset}
    if path is not None:
        try:
            data = _merge(data, tomllib.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise PersonaLabError(f"{path}: cannot read configuration ({exc})") from exc
    data = _merge(data, {k: v for k, v in overrides.items() if v is not None})
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        where = f"{path}: " if path else ""
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise PersonaLabError(f"{where}configuration field {loc}: {first['msg']}") from exc


def to_toml(cfg: RunConfig) -> str:
    """Serialize a configuration as TOML (the resolved ``config.toml`` of a run)."""

    def fmt(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    data = cfg.model_dump(mode="json")
    lines: list[str] = []
    tables: list[tuple[str, dict]] = []
    for k, v in data.items():
        if isinstance(v, dict):
            tables.append((k, v))
        elif v is not None:
            lines.append(f"{k} = {fmt(v)}")
    for name, table in tables:
        lines.append(f"\n[{name}]")
        sub: list[tuple[str, dict]] = []
        for k, v in table.items():
            if isinstance(v, dict):
                sub.append((k, v))
            elif v is not None:
                lines.append(f"{k} = {fmt(v)}")
        for k, v in sub:
            lines.append(f"\n[{name}.{k}]")
            lines.extend(f'"{kk}" = {fmt(vv)}' for kk, vv in v.items())
    return "\n".join(lines) + "\n"
