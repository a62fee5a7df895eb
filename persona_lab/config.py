"""Run configuration: one pydantic model, with presets, written resolved to ``runs/<name>/config.toml``."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from persona_lab.errors import PersonaLabError
from persona_lab.paths import DATA_DIR

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
    population: Literal["states", "national"] = "states"
    """``states``: the population of the source (the PUMS states, or the 12 states the embedded model was fitted
    to). ``national``: the same source raked to the published ACS 2018 margins of the United States."""


class PersonasConfig(_Section):
    n: int = Field(1586, gt=0)
    """Number of personas (PERSONA: 1,586 = 1,000 train + 586 test)."""
    n_train: int = Field(1000, ge=0)
    """Personas in the train split; the rest are test."""
    enrich: int | None = Field(None, ge=0)
    """How many personas get LLM-written open-ended fields; ``None`` = all."""
    llm_consistency: bool = True
    """Run the LLM self-consistency check after the deterministic rules."""
    released: Path | None = None
    """Released PERSONA personas (JSON list of persona texts) to set our ideology distribution beside."""


class PromptsConfig(_Section):
    source: Path | None = None
    """PRISM prompts: a JSON list of strings or PRISM's ``conversations.jsonl``. ``None``: the embedded
    value-laden questions in ``data/``."""
    min_words: int = Field(5, ge=0)
    """Rule filter: drop prompts with fewer whitespace-separated words."""
    require_question_mark: bool = True
    """Rule filter: drop prompts without a ``?``."""
    deduplicate: bool = True
    """Drop exact duplicate prompt texts after the rule filters (PRISM: 4,652 -> 4,620)."""
    llm_filter: bool = True
    """Keep only prompts the LLM zero-shot classifier calls controversial."""
    limit: int | None = Field(None, ge=0)
    """Classify at most this many rule-filtered prompts (a cost cap for quick runs); ``None`` = all."""
    n_topics: int = Field(12, ge=1)
    """Number of topic clusters."""
    topic_method: Literal["tfidf", "embeddings"] = "tfidf"
    """``tfidf``: TF-IDF + SVD + k-means (scikit-learn). ``embeddings``: sentence-transformers MiniLM."""
    n_train: int = Field(3000, ge=0)
    """Train prompts (PERSONA: 3,000); scaled down proportionally when fewer prompts survive."""
    n_heldout: int = Field(868, ge=0)
    """Held-out prompts (PERSONA: 868)."""


class LLMConfig(_Section):
    backend: str = "local"
    """Backend spec: ``local``, ``openai:gpt-4o``, ``anthropic:claude-sonnet-4-5``,
    ``openai:MODEL@http://127.0.0.1:8000/v1`` (any OpenAI-compatible server)."""
    concurrency: int = Field(8, ge=1)
    """Requests in flight at once per backend."""
    requests_per_minute: int | None = Field(None, gt=0)
    """Client-side request rate limit; ``None`` = unlimited."""
    tokens_per_minute: int | None = Field(None, gt=0)
    """Client-side token rate limit; ``None`` = unlimited."""
    max_retries: int = Field(6, ge=0)
    """Retries on 429/5xx/timeouts/connection errors before a call is recorded as failed."""
    timeout_s: float = Field(120.0, gt=0)
    """Per-request timeout in seconds."""
    batch: bool = False
    """Use the provider's batch API (OpenAI Batch, Anthropic Message Batches) for large stages."""
    temperature: float = 0.0
    """Default sampling temperature."""
    prices: dict[str, tuple[float, float, float]] = Field(default_factory=dict)
    """Extra/override prices in USD per million tokens, model -> (input, cached input, output)."""
    retry_failures: bool = False
    """Send again the requests whose failure an earlier run recorded. By default a rerun replays a recorded
    failure as that failure, with no call (and no cost); requests recorded as not attempted (the stage
    stopped first) or refused for authentication are always sent."""
    circuit_breaker: int = Field(8, ge=0)
    """Consecutive connection or timeout errors, with no answer in between, after which a stage stops: its
    backend is down. The rest is recorded as not attempted and sent by the next run; 0 = never stop."""


class FeedbackConfig(_Section):
    """Direct Principle Feedback pairs per persona (PERSONA Sec. 3.3)."""

    n_personas: int | None = Field(None, ge=1)
    """Personas that get pairs: the first ``n`` of the personas table; ``None`` = all (PERSONA: 1,586)."""
    pairs_train: int = Field(100, ge=0)
    """Train pairs per persona, on train prompts (PERSONA: 100)."""
    pairs_test_seen: int = Field(50, ge=0)
    """Test pairs per persona on other train prompts, "seen prompts" (PERSONA: 50)."""
    pairs_test_unseen: int = Field(50, ge=0)
    """Test pairs per persona on held-out prompts, "unseen prompts" (PERSONA: 50)."""
    original_max_tokens: int = Field(512, ge=1)
    """Output budget of an original answer (written once per prompt, without the persona)."""
    critique_max_tokens: int = Field(384, ge=1)
    """Output budget of a critique (EVALUATION, then SUGGESTIONS)."""
    revision_max_tokens: int = Field(384, ge=1)
    """Output budget of a revision."""
    single_call: bool = False
    """Ablation: critique and revision in one call instead of two."""
    rounds: int = Field(1, ge=1)
    """Ablation: rounds of critique and revision (each round revises the previous revision)."""
    verify: bool = True
    """Role-play verification: a model role-playing the persona chooses between original and revision."""
    verifier: str | None = None
    """Backend spec of the role-play verifier; ``None`` = ``llm.backend``."""
    bootstrap: int = Field(2000, ge=100)
    """Bootstrap resamples of the verification rate's 95 % confidence interval."""
    groups: list[str] = Field(default_factory=lambda: ["age", "sex", "race"])
    """Persona attributes to break the verification rate down by (``age`` in bands)."""


class AgreementConfig(_Section):
    """Role-play annotators, human annotations and Cohen's kappa (PERSONA Sec. 4)."""

    class Annotator(_Section):
        """One model annotator: a backend role-playing each persona at one temperature and sample."""

        backend: str | None = None
        """Backend spec (``openai:gpt-4o``, ``anthropic:claude-sonnet-4-5``, ``local``); ``None``: ``llm.backend``."""
        temperature: float = Field(0.0, ge=0.0)
        """Sampling temperature; 0 is greedy decoding."""
        sample: int = Field(0, ge=0)
        """Sample index and sampling seed: annotators that differ only here are two samplings of one model
        (needs a temperature above 0)."""
        label: str = ""
        """The annotator's name in ``judgments.parquet`` and the figures; empty: ``<backend> t=<temperature>``
        (plus `` s<sample>`` when the sample is not 0)."""

    n_personas: int = Field(20, ge=1)
    """Personas in the annotation study (PERSONA: 20)."""
    n_questions: int = Field(10, ge=1)
    """Questions (feedback pairs) per study persona (PERSONA: 10)."""
    split: str | None = None
    """Feedback split the study's pairs come from (``train``, ``test_seen``, ``test_unseen``); ``None``: any."""
    raters_per_persona: int = Field(4, ge=1)
    """People the annotation app assigns to each persona (PERSONA: 4)."""
    min_votes: int = Field(3, ge=1)
    """Votes one answer needs to be the people's label of a question (PERSONA: 3 of 4); ties get no label."""
    annotators: list[Annotator] = Field(default_factory=lambda: [AgreementConfig.Annotator()])
    """Model annotators judging every study pair (PERSONA: GPT-4, Llama-3 70B, Qwen-2 72B, Mistral Large)."""
    justify: bool = True
    """Model annotators give a one-sentence justification with their choice (JSON answer), as PERSONA's
    annotators did; ``False``: a bare closed choice A/B."""
    judge_max_tokens: int = Field(96, ge=8)
    """Output budget of one model judgment (choice and justification)."""
    human_csv: list[Path] = Field(default_factory=list)
    """Annotation CSV files (Prolific-style exports) with columns annotator, persona_id, prompt_id, choice."""
    app_annotations: bool = True
    """Read the annotation app's answers from ``<run_dir>/annotations/`` (rerun with ``--force`` after
    collecting more)."""
    reference: str = "human"
    """Labels the models are compared to in per-group kappas and the regression: ``human`` (the majority vote)
    or an annotator's label; without human labels the first model annotator (said so in the outputs)."""
    n_bootstrap: int = Field(1000, ge=1)
    """Bootstrap replicates over items for every kappa interval."""
    ci_level: float = Field(0.95, gt=0.0, lt=1.0)
    """Coverage of the confidence intervals."""
    groups: list[str] = Field(default_factory=lambda: ["Age", "Sex", "Race", "Education", "Political lean"])
    """Persona groupings for per-demographic kappas and the regression (the Fig. 2 panels and the political
    lean of ``political views``)."""
    loo_attributes: list[str] = Field(default_factory=list)
    """Attributes of the leave-one-out analysis (PERSONA keys such as ``age``); empty: all 33."""
    loo_pairs: int = Field(40, ge=0)
    """Persona twin pairs per attribute (PERSONA: 40); 0 skips the leave-one-out analysis."""
    loo_questions: int = Field(20, ge=1)
    """Questions each twin pair answers (PERSONA: 20)."""
    loo_base_attributes: int = Field(3, ge=1)
    """Attributes of the smaller twin (PERSONA: 3; the other twin has one more)."""
    loo_max_tokens: int | None = Field(None, ge=8)
    """Output budget of each leave-one-out critique and revision; ``None``: the DPF principle's defaults."""
    loo_justify: bool = True
    """The twins' annotators justify their choices (as ``justify``)."""


class BenchConfig(_Section):
    """PERSONA Bench: modes, critic, pass@k (PERSONA Sec. 5)."""

    models: list[str] = Field(default_factory=list)
    """Backend specs of the models under test (``openai:gpt-4o``, ``local``, ...); empty = ``llm.backend``."""
    critic: str | None = None
    """Backend spec of the critic (and of the subtlety and summary judges); ``None`` = ``llm.backend``."""
    modes: list[str] = Field(
        default_factory=lambda: ["baseline", "output_only", "chain_of_thought", "persona_summary"]
    )
    """Modes to evaluate: ``baseline`` (no persona), ``output_only``, ``chain_of_thought``, ``persona_summary``."""
    n_samples: int = Field(700, ge=1)
    """(persona, prompt) items per model and mode (PERSONA Sec. 5: 700; the official code runs 300)."""
    n_personas: int | None = Field(None, ge=1)
    """Draw the items from the first this many personas of the split (seeded order); ``None`` = all."""
    n_prompts: int | None = Field(None, ge=1)
    """Draw the items from the first this many prompts of the split (seeded order); ``None`` = all."""
    persona_split: Literal["train", "test", "all"] = "test"
    """Personas the bench draws from. The paper does not say; held-out (test) personas by default."""
    prompt_split: Literal["train", "heldout", "all"] = "heldout"
    """Kept prompts the bench draws from. The paper does not say; held-out prompts by default."""
    answer_words: int = Field(150, ge=1)
    """The answer templates ask for at most this many words."""
    max_tokens: int = Field(1024, ge=1)
    """Output budget of one answer of the model under test (reasoning or summary included)."""
    critic_max_tokens: int = Field(512, ge=1)
    """Output budget of one critic verdict (and of one subtlety or summary judgement)."""
    pass_at_k_mode: str = "output_only"
    """Mode sampled for pass@k. The paper does not name it *(chosen here)*."""
    pass_at_k_items: int = Field(700, ge=0)
    """Items (the first of the bench's items) sampled for pass@k; 0 = no pass@k."""
    pass_at_k_samples: int = Field(16, ge=1)
    """Answers sampled per item for pass@k (``n`` of the unbiased estimator)."""
    max_k: int = Field(16, ge=1)
    """pass@k is reported for k = 1..max_k (PERSONA Fig. 12: 16); at most ``pass_at_k_samples``."""
    pass_at_k_temperature: float = Field(1.0, ge=0.0)
    """Sampling temperature of the pass@k answers (samples also differ by ``sample_index`` and seed)."""
    loo_attributes: list[str] = Field(default_factory=list)
    """Leave-one-out: PERSONA attributes to drop one at a time; the baseline drops all of them. Empty = off."""
    loo_items: int = Field(100, ge=0)
    """Items (the first of the bench's items) of the leave-one-out evaluation."""
    loo_mode: str = "output_only"
    """Mode of the leave-one-out evaluation."""
    intersections: dict[str, dict[str, list[str]]] = Field(default_factory=dict)
    """Demographic intersections, name -> {attribute: accepted values}; a numeric attribute takes ranges
    ``"18-34"`` or ``"65+"``. E.g. ``{"women aged 18-34": {"sex": ["Female"], "age": ["18-34"]}}``."""
    subtlety_judge: bool = True
    """Ask the critic backend whether each chain-of-thought and output-only answer is too on-the-nose."""
    summary_judge: bool = False
    """Also ask the critic backend which attributes each persona summary mentions (besides the matcher)."""
    bootstrap: int = Field(1000, ge=10)
    """Bootstrap resamples of the items for standard errors and intervals."""
    confidence: float = Field(0.95, gt=0.0, lt=1.0)
    """Coverage of the percentile bootstrap intervals."""


class ElephantsConfig(_Section):
    """Pink Elephants: the DPF dataset and its evaluation (Castricato et al. 2024, arXiv 2402.07896).

    Where the paper gives no number, the default is inferred from its totals and says so."""

    domains: Path | None = None
    """Conversation domains (JSON, JSON Lines or CSV with a ``domain`` column). ``None``: the 29 domains in
    ``data/elephant_domains.json``, written for this project (the paper keeps 29 after manual filtering)."""
    n_domains: int | None = Field(None, ge=1)
    """Use only the first ``n_domains`` domains; ``None`` = all."""
    pairs: Path | None = None
    """A file of (grey, pink) entity pairs (columns ``domain``, ``grey``, ``pink``, optional aliases) used
    instead of asking the LLM; they still pass the pair filters."""
    pairs_per_domain: int = Field(86, ge=1)
    """Entity pairs asked of the LLM per domain (inferred: the paper keeps about 2,500 pairs over 29 domains)."""
    pairs_per_call: int = Field(10, ge=1)
    """Pairs asked for in one call; a domain takes ``ceil(pairs_per_domain / pairs_per_call)`` calls."""
    plans_per_pair: int = Field(65, ge=1)
    """Conversation plans per kept pair (inferred: about 162K dialogues from about 2,500 pairs)."""
    exchanges: int = Field(4, ge=2)
    """User/assistant exchanges per planned dialogue (the paper does not say; four leave room to drift)."""
    turn_max_tokens: int = Field(96, ge=8)
    """Output budget per message of a dialogue (a dialogue call gets ``2 * exchanges * turn_max_tokens``)."""
    temperature: float = Field(0.9, ge=0.0, le=2.0)
    """Sampling temperature of the pair, plan and dialogue calls (varied pairs and plans need sampling; the
    paper does not say). Critiques, revisions, replies and judges use ``llm.temperature``."""
    judge_cut: bool = True
    """Ask the LLM judge about assistant turns before the first string match, so an implicit mention (a
    product of the pink brand) cuts the dialogue too."""
    judge_revisions: bool = True
    """Drop revisions the LLM judge says still mention or imply the Pink Elephant (string matches always are)."""
    single_call: bool = False
    """DPF ablation: critique and revision in one call instead of two."""
    dpf_max_tokens: int | None = Field(None, ge=16)
    """Output budget of each critique and revision; ``None`` = the ``pink_elephant`` principle's own (256)."""
    test_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    """Share of the kept entity pairs held out (test split of the DPO set, evaluation dialogues); a pair is in
    one split only (inferred: the paper evaluates on a held-out set without giving its size)."""
    eval_backends: list[str] = Field(default_factory=list)
    """Backends evaluated with and without the avoid instruction; empty = ``llm.backend``."""
    judge_backend: str | None = None
    """Backend of the LLM judge (the paper: GPT-4); ``None`` = ``llm.backend``."""
    eval_limit: int | None = Field(None, ge=1)
    """Evaluate at most this many held-out dialogues; ``None`` = all."""
    eval_max_tokens: int = Field(256, ge=8)
    """Output budget of an evaluated reply."""


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
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig)
    agreement: AgreementConfig = Field(default_factory=AgreementConfig)
    bench: BenchConfig = Field(default_factory=BenchConfig)
    elephants: ElephantsConfig = Field(default_factory=ElephantsConfig)

    @property
    def run_dir(self) -> Path:
        return self.runs_dir / self.name


PRESETS: dict[str, dict] = {
    "tiny": {
        "name": "tiny",
        "personas": {"n": 100, "n_train": 63, "enrich": 4},
        "prompts": {"limit": 24, "n_topics": 6, "n_train": 3000, "n_heldout": 868},
        "feedback": {
            "n_personas": 4,
            "pairs_train": 1,
            "pairs_test_seen": 1,
            "pairs_test_unseen": 1,
            "original_max_tokens": 64,
            "critique_max_tokens": 64,
            "revision_max_tokens": 48,
            "bootstrap": 200,
        },
        "agreement": {
            "n_personas": 4,
            "n_questions": 2,
            "annotators": [{"temperature": 0.0}, {"temperature": 1.0, "sample": 1}],
            "judge_max_tokens": 48,
            "n_bootstrap": 200,
            "loo_attributes": ["age", "religion"],
            "loo_pairs": 2,
            "loo_questions": 2,
            "loo_max_tokens": 32,
            "loo_justify": False,
        },
        "bench": {
            "persona_split": "all",
            "prompt_split": "all",
            "n_personas": 3,
            "n_prompts": 2,
            "n_samples": 6,
            "answer_words": 30,
            "max_tokens": 120,
            "critic_max_tokens": 128,
            "pass_at_k_items": 2,
            "pass_at_k_samples": 4,
            "max_k": 4,
            "loo_attributes": ["age", "sex"],
            "loo_items": 2,
            "intersections": {
                "women": {"sex": ["Female"]},
                "men": {"sex": ["Male"]},
                "women aged 18-34": {"sex": ["Female"], "age": ["18-34"]},
            },
            "bootstrap": 200,
        },
        "elephants": {
            "n_domains": 2,
            "pairs_per_domain": 2,
            "pairs_per_call": 2,
            "plans_per_pair": 1,
            "exchanges": 3,
            "turn_max_tokens": 40,
            "test_fraction": 0.5,
            "dpf_max_tokens": 128,
            "eval_max_tokens": 48,
        },
    },
    "paper": {
        "name": "paper",
        "personas": {"n": 1586, "n_train": 1000},
        # PRISM's 8,011 opening prompts, shipped with the package (Kirk et al. 2024, CC-BY-4.0)
        "prompts": {"n_topics": 22, "source": str(DATA_DIR / "prism_prompts.json")},
        "feedback": {"pairs_train": 100, "pairs_test_seen": 50, "pairs_test_unseen": 50},
        "agreement": {
            "n_personas": 20,
            "n_questions": 10,
            "raters_per_persona": 4,
            "min_votes": 3,
            "loo_pairs": 40,
        },
        "bench": {
            "n_samples": 700,
            "pass_at_k_items": 700,
            "pass_at_k_samples": 16,
            "max_k": 16,
            "loo_attributes": ["age", "sex", "race", "income", "religion", "political views", "lifestyle"],
            "loo_items": 100,
            "intersections": {
                "women aged 18-34": {"sex": ["Female"], "age": ["18-34"]},
                "men aged 18-34": {"sex": ["Male"], "age": ["18-34"]},
                "women aged 65+": {"sex": ["Female"], "age": ["65+"]},
                "men aged 65+": {"sex": ["Male"], "age": ["65+"]},
            },
        },
        "elephants": {"pairs_per_domain": 86, "plans_per_pair": 65},
    },
}


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(preset: Preset | None = None, path: Path | None = None, **overrides: object) -> RunConfig:
    """Build a configuration from a preset, then a TOML file, then keyword overrides (later wins)."""
    data: dict = {}
    if preset is not None:
        if preset not in PRESETS:
            raise PersonaLabError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        data = deep_merge(data, PRESETS[preset]) | {"preset": preset}
    if path is not None:
        try:
            data = deep_merge(data, tomllib.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise PersonaLabError(f"{path}: cannot read configuration ({exc})") from exc
    data = deep_merge(data, {k: v for k, v in overrides.items() if v is not None})
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        where = f"{path}: " if path else ""
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise PersonaLabError(f"{where}configuration field {loc}: {first['msg']}") from exc


def to_toml(cfg: RunConfig) -> str:
    """Serialize a configuration as TOML (the resolved ``config.toml`` of a run); ``None`` values are left out,
    so reading the file back gives the same configuration."""
    import tomli_w

    def drop_none(obj: object) -> object:
        if isinstance(obj, dict):
            return {k: drop_none(v) for k, v in obj.items() if v is not None}
        if isinstance(obj, list):
            return [drop_none(v) for v in obj]
        return obj

    return tomli_w.dumps(drop_none(cfg.model_dump(mode="json")))  # type: ignore[arg-type]


def parse_set(assignments: list[str]) -> dict:
    """``["prompts.n_topics=5", "llm.backend=openai:gpt-4o"]`` -> nested overrides.

    A value is read as TOML when it parses (``5``, ``true``, ``[\"VT\", \"WY\"]``, ``"text"``), else as a plain
    string, so ``llm.backend=openai:gpt-4o`` needs no quotes.
    """
    out: dict = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise PersonaLabError(
                f"--set {item!r}: expected section.key=value, e.g. --set prompts.n_topics=5"
            )
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out
