"""The pipeline: stages (``Stage``, ``RunContext``, ``StageResult``), the one loop that runs them into a run
directory (``run_stages``), their states and fingerprints, the dry run, and comparisons of runs (ablations)."""

from persona_lab.pipeline._compare import compare_runs
from persona_lab.pipeline._run import estimate_run, fingerprints, run_stages, stage_names, stage_states
from persona_lab.pipeline._stage import RunContext, Stage, StageResult

__all__ = [
    "RunContext",
    "Stage",
    "StageResult",
    "compare_runs",
    "estimate_run",
    "fingerprints",
    "run_stages",
    "stage_names",
    "stage_states",
]
