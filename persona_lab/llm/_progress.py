"""A stage's live counters, its totals, and how its progress is shown.

Progress is a rich bar when stderr is a terminal, ``mo.status.progress_bar`` inside a marimo notebook, and
plain lines on stderr otherwise (a log file, CI, ``nohup``): one every ``LINE_INTERVAL_S`` seconds, one at each
further tenth of the stage when a few seconds have passed since the last, and one when the stage ends.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

from persona_lab.errors import PersonaLabError
from persona_lab.llm._types import LLMFailure, LLMResponse

ProgressMode = Literal["auto", "rich", "marimo", "lines", "none"]
LINE_INTERVAL_S = 10.0
"""Seconds between two plain progress lines while a stage runs."""
LINE_TENTH_GAP_S = 2.0
"""A plain line at each further tenth of the stage, if at least this many seconds after the previous line."""


@dataclass
class RunStats:
    """Live counters of one stage (read by the progress display)."""

    total: int = 0
    done: int = 0
    cache_hits: int = 0
    calls: int = 0
    failures: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    finished: bool = False

    def line(self) -> str:
        """One-line summary: done/total, hits, failures, tokens, cached share, cost."""
        share = self.cached_input_tokens / self.input_tokens if self.input_tokens else 0.0
        return (
            f"{self.done}/{self.total} done · {self.cache_hits} cached · {self.failures} failed · "
            f"{self.input_tokens:,} in ({share:.0%} prompt-cached) / {self.output_tokens:,} out tokens · "
            f"${self.cost_usd:.4f}"
        )


@dataclass(frozen=True)
class RunSummary:
    """Totals over a stage's results.

    Attributes:
        requests: Number of requests.
        responses: Successful answers (including cache hits).
        cache_hits: Answers replayed from the response cache.
        failures: Failures by kind (replayed ones included; ``not_attempted``: never sent, see
            ``BackendUnavailable``).
        input_tokens, cached_input_tokens, output_tokens: Usage of the answers that were not replayed.
        cost_usd: Cost of the answers that were not replayed.
        cached_token_share: ``cached_input_tokens / input_tokens`` (provider prompt-cache reads), 0 if none.
        replayed_failures: Failures replayed from the cache's failures table, with no call.
    """

    requests: int
    responses: int
    cache_hits: int
    failures: dict[str, int] = field(default_factory=dict)
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cached_token_share: float = 0.0
    replayed_failures: int = 0


def summarize(results: Sequence[LLMResponse | LLMFailure]) -> RunSummary:
    """Summarize a stage's results (see ``RunSummary``)."""
    fails: dict[str, int] = {}
    hits = resp = inp = cached = out = replayed = 0
    cost = 0.0
    for r in results:
        if isinstance(r, LLMFailure):
            fails[r.kind] = fails.get(r.kind, 0) + 1
            replayed += r.cached
            continue
        resp += 1
        if r.cached:
            hits += 1
            continue
        inp += r.usage.input_tokens
        cached += r.usage.cached_input_tokens
        out += r.usage.output_tokens
        cost += r.cost_usd
    share = cached / inp if inp else 0.0
    return RunSummary(len(results), resp, hits, fails, inp, cached, out, cost, share, replayed)


class View:
    """A progress display refreshed from ``RunStats`` by a poller (never from the hot path); shows nothing."""

    def refresh(self, stats: RunStats) -> None: ...

    def close(self, stats: RunStats) -> None: ...


class _RichView(View):
    def __init__(self, desc: str, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=Console(stderr=True),
            auto_refresh=False,
            transient=False,
        )
        self._task = self._progress.add_task(desc or "LLM calls", total=total, info="")
        self._progress.start()

    def refresh(self, stats: RunStats) -> None:
        info = (
            f"{stats.cache_hits} cached · {stats.failures} failed · "
            f"{stats.input_tokens + stats.output_tokens:,} tok · ${stats.cost_usd:.4f}"
        )
        self._progress.update(self._task, completed=stats.done, info=info)
        self._progress.refresh()

    def close(self, stats: RunStats) -> None:
        self.refresh(stats)
        self._progress.stop()


class _MarimoView(View):
    def __init__(self, desc: str, total: int) -> None:
        import marimo as mo

        self._cm: Any = mo.status.progress_bar(
            total=max(total, 1), title=desc or "LLM calls", remove_on_exit=False
        )
        self._bar = self._cm.__enter__()
        self._shown = 0

    def refresh(self, stats: RunStats) -> None:
        step = stats.done - self._shown
        self._shown = stats.done
        self._bar.update(increment=step, subtitle=stats.line())

    def close(self, stats: RunStats) -> None:
        self.refresh(stats)
        self._cm.__exit__(None, None, None)


class LineView(View):
    """Plain progress lines for logs: ``<desc>: <RunStats.line()> · <seconds> s`` (see the module docstring).

    Args:
        desc: The stage's label.
        stream: Where to write (default: ``sys.stderr`` at the time of each line).
        clock: Seconds, for tests.
    """

    def __init__(
        self, desc: str, *, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._desc = desc or "LLM calls"
        self._stream = stream
        self._clock = clock
        self._start = self._last = clock()
        self._tenth = 0

    def refresh(self, stats: RunStats) -> None:
        now = self._clock()
        tenth = self._tenth_of(stats)
        due = now - self._last >= LINE_INTERVAL_S
        if due or (tenth > self._tenth and now - self._last >= LINE_TENTH_GAP_S):
            self._write(stats, now)

    def close(self, stats: RunStats) -> None:
        self._write(stats, self._clock())

    @staticmethod
    def _tenth_of(stats: RunStats) -> int:
        return stats.done * 10 // stats.total if stats.total else 10

    def _write(self, stats: RunStats, now: float) -> None:
        self._last = now
        self._tenth = self._tenth_of(stats)
        stream = self._stream if self._stream is not None else sys.stderr
        print(f"{self._desc}: {stats.line()} · {now - self._start:.0f} s", file=stream, flush=True)


def _in_marimo() -> bool:
    if "marimo" not in sys.modules:
        return False
    try:
        import marimo as mo

        return bool(mo.running_in_notebook())
    except Exception:  # noqa: BLE001 - any failure means "not in a notebook"
        return False


def make_view(progress: bool | str, desc: str, total: int) -> View:
    """The display for ``progress``: ``True``/``"auto"`` (marimo in a notebook, rich in a terminal, plain
    lines otherwise), ``"rich"``, ``"marimo"``, ``"lines"``, or ``False``/``"none"`` (nothing)."""
    mode = ("auto" if progress else "none") if isinstance(progress, bool) else progress
    if mode not in ("auto", "rich", "marimo", "lines", "none"):
        raise PersonaLabError(
            f"progress={progress!r}: expected True, False, 'rich', 'marimo', 'lines' or 'none'"
        )
    if mode == "auto":
        mode = "marimo" if _in_marimo() else ("rich" if sys.stderr.isatty() else "lines")
    if mode == "rich":
        return _RichView(desc, total)
    if mode == "marimo":
        return _MarimoView(desc, total)
    if mode == "lines":
        return LineView(desc)
    return View()
