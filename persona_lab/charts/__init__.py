"""One chart function per paper figure (Altair). Notebooks display the returned chart; ``reproduce`` saves it."""

from persona_lab.charts._demographics import (
    census_demographics_chart,
    demographic_shares,
    demographics_comparison_chart,
    panel_tvd,
    persona_demographics_chart,
)
from persona_lab.charts._ideology import ideology_chart, ideology_distribution
from persona_lab.charts._prompts import funnel_chart, funnel_counts, prompt_topics_chart, prompt_topics_figure
from persona_lab.charts._save import save_figure
