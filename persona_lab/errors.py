"""The one exception type a user sees: a message that says what is wrong and what to do."""

from __future__ import annotations


class PersonaLabError(Exception):
    """An error caused by input or configuration that the user can fix.

    The message must name the file, row or column, what was expected and what to do.
    The CLI prints it on one line and exits with code 2; nothing is written.
    """
