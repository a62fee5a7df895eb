"""What a stage is: a protocol, the context it runs in, and the result it returns.

A stage of the pipeline (census, personas, prompts, feedback, agreement, bench, elephants) is one object in one
registry (``persona_lab.stages.STAGES``), in the order data flows. It declares the tables it reads and writes and
the slice of the run configuration it depends on; ``plan(ctx)`` returns the LLM requests it would send (a dry run
is the sum of the plans) and ``run(ctx)`` returns its tables, figures and summary entries. One loop
(``persona_lab.pipeline.run_stages``) writes them, so no stage writes files itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pandas as pd

from persona_lab.errors import PersonaLabError

if TYPE_CHECKING:
    from rich.console import Console

    from persona_lab.census import OpenedSource
    from persona_lab.config import RunConfig
    from persona_lab.llm import Backend, LLMFailure, LLMRequest, LLMResponse, ResponseCache


@dataclass
class StageResult:
    """What a stage's ``run`` returns; the pipeline's one loop writes it.

    Attributes:
        tables: table name -> DataFrame, written atomically to ``<run_dir>/<name>.parquet`` (a name may hold a
            ``/``: ``elephants/pairs`` is ``<run_dir>/elephants/pairs.parquet``).
        figures: figure name (e.g. ``fig03_prompt_topics``) -> Altair chart, saved as SVG and PNG.
        summary: entries merged into ``summary.json`` (top level, next to the other stages' entries).
        files: path relative to the run directory -> a writer called with a temporary path beside the target,
            renamed onto it when the writer returns (a Hugging Face ``DatasetDict`` directory, a markdown table).
        incomplete: why the stage's result is empty or partial (e.g. "no prompt survived the filters"), or "".
            The run still writes everything, and the CLI's exit code says the run is incomplete.
    """

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Callable[[Path], None]] = field(default_factory=dict)
    incomplete: str = ""


@runtime_checkable
class Stage(Protocol):
    """One step of the pipeline.

    Attributes:
        name: the stage's name on the command line (``persona-lab run feedback``).
        reads: names of the tables it reads (written by earlier stages).
        writes: names of the tables it writes.
        config: dotted paths of the configuration it depends on (``"personas"``, ``"seed"``, ``"llm.backend"``);
            part of its fingerprint, so changing one of them reruns the stage and what depends on it.
        templates: files whose content is part of the fingerprint (prompt templates, curated lists).
    """

    @property
    def name(self) -> str: ...
    @property
    def reads(self) -> tuple[str, ...]: ...
    @property
    def writes(self) -> tuple[str, ...]: ...
    @property
    def config(self) -> tuple[str, ...]: ...
    @property
    def templates(self) -> tuple[Path, ...]: ...

    def plan(self, ctx: RunContext) -> list[LLMRequest] | dict[str, list[LLMRequest]]:
        """The LLM requests the stage would send (for the dry run); calls nothing. A stage that calls several
        backends returns them by backend spec."""
        ...

    def run(self, ctx: RunContext) -> StageResult:
        """Do the stage's work and return its tables, figures and summary."""
        ...

    def preview(self, ctx: RunContext) -> dict[str, pd.DataFrame]:
        """The stage's tables as well as they can be made without any LLM call (for later stages' dry-run plans)."""
        ...


@dataclass
class RunContext:
    """Everything a stage needs: the configuration, the cache, the backend, the run directory, the console, and
    lazy access to earlier stages' tables.

    ``table(name)`` returns a table written earlier in this run, or read from the run directory; in a dry run, a
    table that does not exist yet is the producing stage's ``preview``.
    """

    config: RunConfig
    run_dir: Path
    figures_dir: Path
    console: Console
    cache: ResponseCache | None = None
    dry_run: bool = False
    progress: bool | str = True
    producers: Mapping[str, Stage] = field(default_factory=dict)
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    _backends: dict[str, Backend] = field(default_factory=dict, repr=False)
    _census: OpenedSource | None = field(default=None, repr=False)

    # -- inputs ------------------------------------------------------------------------------------------------
    def table(self, name: str) -> pd.DataFrame:
        """An earlier stage's table (memoized)."""
        if name not in self._tables:
            from persona_lab.io import read_table

            path = table_path(self.run_dir, name)
            if self.dry_run and not path.exists():
                producer = self.producers.get(name)
                if producer is None:
                    raise PersonaLabError(f"no stage writes table {name!r}")
                self._tables.update(producer.preview(self))
                if name not in self._tables:
                    raise PersonaLabError(f"stage {producer.name!r} has no preview of table {name!r}")
            else:
                self._tables[name] = read_table(path, table=name)
        return self._tables[name]

    def put_tables(self, tables: dict[str, pd.DataFrame]) -> None:
        self._tables.update(tables)

    def census(self) -> OpenedSource:
        """The run's census source (``census.open_source(config.census)``), opened once."""
        if self._census is None:
            from persona_lab.census import open_source

            self._census = open_source(self.config.census, seed=self.config.seed)
        return self._census

    # -- LLM ---------------------------------------------------------------------------------------------------
    def backend(self, spec: str | None = None) -> Backend:
        """The backend named by ``spec`` (default ``llm.backend``), built once per run."""
        from persona_lab.llm import get_backend

        spec = spec or self.config.llm.backend
        if spec not in self._backends:
            self._backends[spec] = get_backend(spec, config=self.config.llm)
        return self._backends[spec]

    def run_requests(
        self, requests: Sequence[LLMRequest], *, backend: str | None = None, desc: str = ""
    ) -> list[LLMResponse | LLMFailure]:
        """Send ``requests`` through the run's cache (the one way a stage calls an LLM)."""
        from persona_lab.llm import run_requests

        if self.dry_run:
            raise PersonaLabError("a dry run calls no model; use the stage's plan()")
        return run_requests(
            requests,
            self.backend(backend),
            cache=self.cache,
            config=self.config.llm,
            progress=self.progress,
            desc=desc,
        )


def table_path(run_dir: Path, name: str) -> Path:
    """``<run_dir>/<name>.parquet``."""
    return Path(run_dir) / f"{name}.parquet"


class Timer:
    """Seconds since creation."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.wall = time.time()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started
