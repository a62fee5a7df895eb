"""persona_lab: the PERSONA pluralistic-alignment testbed and Direct Principle Feedback, reproducible."""

from persona_lab.errors import PersonaLabError

__version__ = "0.1.0"
__all__ = ["PersonaLabError", "__version__"]
