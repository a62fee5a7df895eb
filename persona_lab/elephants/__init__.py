"""Suppressing Pink Elephants with Direct Principle Feedback (Castricato et al. 2024, arXiv 2402.07896).

Domains -> entity pairs (grey, pink) -> conversation plans -> dialogues -> the cut at the assistant's first
mention of the Pink Elephant -> DPF critique and revision (``persona_lab.dpf``, principle ``pink_elephant``) ->
DPO pairs split by entity pair, and the evaluation of any backend with and without the avoid instruction. The DPO
training recipe (``persona_lab.elephants.train``, the ``train`` extra) is imported on demand.
"""

from persona_lab.elephants._common import Runner, judge_request, judge_verdict, make_runner, to_messages
from persona_lab.elephants._dataset import DPO_COLUMNS, check_pair_split, dpo_dataset, dpo_table, save_dataset
from persona_lab.elephants._dialogues import (
    cut_dialogues,
    dialogue_requests,
    generate_dialogues,
    generate_plans,
    parse_dialogues,
    parse_plans,
    placeholder_plans,
    plan_requests,
    plan_text,
)
from persona_lab.elephants._evaluate import (
    CONDITIONS,
    eval_dialogues,
    evaluate_models,
    judge_agreement,
    mention_rates,
    planned_eval_requests,
    reply_messages,
    wilson_interval,
)
from persona_lab.elephants._funnel import FUNNEL_STEPS, funnel_counts
from persona_lab.elephants._inputs import EMBEDDED_DOMAINS, load_domains, load_pairs
from persona_lab.elephants._mentions import Mention, find_mentions, fold, mentions, same_entity
from persona_lab.elephants._pairs import (
    PAIR_COLUMNS,
    filter_pairs,
    generate_pairs,
    kept_pairs,
    pair_instructions,
    pair_requests,
    pairs_from_file,
    parse_pair_answers,
    split_pairs,
)
from persona_lab.elephants._results import PAPER_RATES, paper_results, results_markdown, results_table
from persona_lab.elephants._revise import PRINCIPLE, dpf_items, planned_dpf_requests, revise_dialogues
from persona_lab.elephants._templates import TEMPLATE_DIR, TEMPLATE_FILES, avoid_instruction

__all__ = [
    "CONDITIONS",
    "DPO_COLUMNS",
    "EMBEDDED_DOMAINS",
    "FUNNEL_STEPS",
    "PAPER_RATES",
    "PRINCIPLE",
    "TEMPLATE_DIR",
    "TEMPLATE_FILES",
    "PAIR_COLUMNS",
    "Mention",
    "Runner",
    "avoid_instruction",
    "check_pair_split",
    "cut_dialogues",
    "dialogue_requests",
    "dpf_items",
    "dpo_dataset",
    "dpo_table",
    "eval_dialogues",
    "evaluate_models",
    "filter_pairs",
    "find_mentions",
    "fold",
    "funnel_counts",
    "generate_dialogues",
    "generate_pairs",
    "generate_plans",
    "judge_agreement",
    "judge_request",
    "judge_verdict",
    "kept_pairs",
    "load_domains",
    "load_pairs",
    "make_runner",
    "mention_rates",
    "mentions",
    "paper_results",
    "parse_dialogues",
    "parse_pair_answers",
    "parse_plans",
    "pair_instructions",
    "pair_requests",
    "pairs_from_file",
    "placeholder_plans",
    "plan_requests",
    "plan_text",
    "planned_dpf_requests",
    "planned_eval_requests",
    "reply_messages",
    "results_markdown",
    "results_table",
    "revise_dialogues",
    "same_entity",
    "save_dataset",
    "split_pairs",
    "to_messages",
    "wilson_interval",
]
