"""PERSONA Bench (Castricato et al. 2024, Sec. 5, Figs. 10-12): can a model personalize subtly?

A model under test answers (persona, prompt) items in four modes; a critic LLM decides whether each answer still
needs revision; accuracy per model x mode with bootstrap errors, pass@k (unbiased and empirical), leave-one-out,
demographic intersections, chain-of-thought subtlety and the attributes persona summaries drop.

The ``bench`` stage (``persona-lab run bench``) runs it into ``bench.parquet``; ``notebooks/06_bench.py`` shows it.
For inspect-ai users (optional extra ``inspect``), ``persona_lab/bench/_inspect.py`` holds the ``persona_bench``
task: ``inspect eval persona_lab/bench/_inspect.py@persona_bench --model openai/gpt-4o -T run_dir=runs/tiny``.
"""

from persona_lab.bench._analysis import (
    cot_subtlety,
    intersection_table,
    leave_one_out_table,
    mode_accuracy,
    pass_at_k_table,
)
from persona_lab.bench._critic import (
    CriticVerdict,
    SubtletyVerdict,
    Verdict,
    critic_request,
    parse_subtlety,
    parse_summary_judgement,
    parse_verdict,
    subtlety_request,
    summary_judge_request,
)
from persona_lab.bench._groups import (
    BASELINE,
    FULL,
    drop_attributes,
    intersection_accuracy,
    intersection_mask,
    loo_accuracy,
    loo_variants,
)
from persona_lab.bench._modes import (
    MODE_NAMES,
    MODES,
    DirectAnswer,
    Mode,
    ParsedAnswer,
    ReasonedAnswer,
    SummarizedAnswer,
    answer_request,
    parse_answer,
)
from persona_lab.bench._passk import empirical_pass_at_k, pass_at_k, pass_at_k_curves, pass_at_k_exact
from persona_lab.bench._run import (
    BENCH_COLUMNS,
    EXPERIMENTS,
    BenchResult,
    answer_requests,
    bench_models,
    bench_personas,
    bench_prompts,
    bench_tasks,
    check_config,
    check_personas,
    critic_requests,
    critic_spec,
    empty_bench_table,
    plan_requests,
    plan_table,
    run_bench,
    score_answer,
    select_items,
)
from persona_lab.bench._stats import accuracy_table, bootstrap_mean
from persona_lab.bench._summaries import (
    attribute_mentioned,
    dropped_attribute_counts,
    summary_attributes,
    summary_coverage,
)
from persona_lab.bench._templates import template_paths

__all__ = [
    "BASELINE",
    "BENCH_COLUMNS",
    "EXPERIMENTS",
    "FULL",
    "MODES",
    "MODE_NAMES",
    "BenchResult",
    "CriticVerdict",
    "DirectAnswer",
    "Mode",
    "ParsedAnswer",
    "ReasonedAnswer",
    "SubtletyVerdict",
    "SummarizedAnswer",
    "Verdict",
    "accuracy_table",
    "answer_request",
    "answer_requests",
    "attribute_mentioned",
    "bench_models",
    "bench_personas",
    "bench_prompts",
    "bench_tasks",
    "bootstrap_mean",
    "check_config",
    "check_personas",
    "cot_subtlety",
    "critic_request",
    "critic_requests",
    "critic_spec",
    "drop_attributes",
    "dropped_attribute_counts",
    "empirical_pass_at_k",
    "empty_bench_table",
    "intersection_accuracy",
    "intersection_mask",
    "intersection_table",
    "leave_one_out_table",
    "loo_accuracy",
    "loo_variants",
    "mode_accuracy",
    "parse_answer",
    "parse_subtlety",
    "parse_summary_judgement",
    "parse_verdict",
    "pass_at_k",
    "pass_at_k_curves",
    "pass_at_k_exact",
    "pass_at_k_table",
    "plan_requests",
    "plan_table",
    "run_bench",
    "score_answer",
    "select_items",
    "subtlety_request",
    "summary_attributes",
    "summary_coverage",
    "summary_judge_request",
    "template_paths",
]
