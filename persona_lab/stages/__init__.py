"""The stage registry, in the order data flows (see ``persona_lab.pipeline`` for the loop that runs them).

Each stage is thin glue: it takes its inputs from the ``RunContext``, calls its package's library functions and
returns a ``StageResult``; the libraries never write run-directory files themselves.
"""

from persona_lab.stages._agreement import AgreementStage
from persona_lab.stages._bench import BenchStage
from persona_lab.stages._census import CensusStage
from persona_lab.stages._elephants import ElephantsStage
from persona_lab.stages._feedback import FeedbackStage
from persona_lab.stages._personas import PersonasStage
from persona_lab.stages._prompts import PromptsStage

STAGES = (
    CensusStage(),
    PersonasStage(),
    PromptsStage(),
    FeedbackStage(),
    AgreementStage(),
    BenchStage(),
    ElephantsStage(),
)
"""Every stage, in data-flow order."""

__all__ = ["STAGES"]
