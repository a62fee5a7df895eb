"""One chart function per paper figure (Altair). Notebooks display the returned chart; ``reproduce`` saves it."""

from persona_lab.charts._agreement import (
    NO_HUMAN_LABELS,
    NO_STUDY_PAIRS,
    caveat_subtitle,
    group_kappa_chart,
    kappa_heatmap,
    kappa_heatmaps_figure,
    kappa_histograms_figure,
    leave_one_out_chart,
    persona_groups,
)
from persona_lab.charts._bench import (
    bench_intersections_chart,
    bench_leave_one_out_chart,
    bench_modes_chart,
    cot_subtlety_chart,
    pass_at_k_chart,
    summary_dropped_chart,
)
from persona_lab.charts._demographics import (
    census_demographics_chart,
    demographic_shares,
    demographics_comparison_chart,
    panel_tvd,
    persona_demographics_chart,
)
from persona_lab.charts._elephants import elephants_mention_rates_chart, elephants_results_table_chart
from persona_lab.charts._feedback import feedback_length_bias_chart
from persona_lab.charts._ideology import ideology_chart, ideology_distribution
from persona_lab.charts._national import fig13_persona_vs_national, personas_vs_release, release_comparison
from persona_lab.charts._prompts import funnel_chart, funnel_counts, prompt_topics_chart, prompt_topics_figure
from persona_lab.charts._save import save_figure
