"""The one exception type a user sees: a message that says what is wrong and what to do."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class PersonaLabError(Exception):
    """An error caused by input or configuration that the user can fix.

    The message must name the file, row or column, what was expected and what to do.
    The CLI prints it on one line and exits with code 2; nothing is written.
    """


def user_errors(fn: F) -> F:
    """Decorate a CLI command: a ``PersonaLabError`` becomes one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import typer

        try:
            return fn(*args, **kwargs)
        except PersonaLabError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]
