"""The one loop: check the configuration, lock the run directory, run the stages that are not done, write their
tables, figures and files, and fill ``summary.json``; and the dry run (the sum of the stages' plans)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from rich.console import Console

from persona_lab.config import RunConfig, to_toml
from persona_lab.errors import PersonaLabError
from persona_lab.io import check_writable_dir, write_table, write_text
from persona_lab.pipeline._stage import RunContext, Stage, StageResult, Timer, table_path

STATE_FILE = "stages.json"
"""Per-stage record in the run directory: fingerprint, outputs, summary, seconds and LLM calls."""
LOCK_FILE = ".lock"
CODE_VERSION = "1"
"""Part of every fingerprint; bump it when a stage's output changes meaning for the same configuration."""

State = Literal["done", "stale", "missing"]


# -- registry helpers --------------------------------------------------------------------------------------------
def _registry() -> list[Stage]:
    from persona_lab.stages import STAGES

    return list(STAGES)


def stage_names() -> list[str]:
    """Names of every registered stage, in data-flow order."""
    return [s.name for s in _registry()]


def _select(names: Sequence[str] | None) -> list[Stage]:
    stages = _registry()
    if not names:
        return stages
    known = {s.name for s in stages}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise PersonaLabError(f"unknown stage(s) {', '.join(unknown)}; the stages are: {', '.join(known)}")
    return [s for s in stages if s.name in set(names)]


def _producers(stages: Sequence[Stage]) -> dict[str, Stage]:
    return {table: s for s in stages for table in s.writes}


# -- fingerprints ------------------------------------------------------------------------------------------------
def _config_value(data: dict[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise PersonaLabError(f"stage configuration path {dotted!r} is not in the run configuration")
        value = value[part]
    return value


def _digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fingerprints(cfg: RunConfig, stages: Sequence[Stage] | None = None) -> dict[str, str]:
    """Each stage's fingerprint under ``cfg``: its configuration slice, its templates' content, the code version
    and the fingerprints of the stages whose tables it reads. A pure function of the configuration and the code."""
    stages = list(stages or _registry())
    data = cfg.model_dump(mode="json")
    producers = _producers(stages)
    out: dict[str, str] = {}
    for stage in stages:  # data-flow order: producers come first
        parts = {
            "stage": stage.name,
            "code": CODE_VERSION,
            "config": {path: _config_value(data, path) for path in stage.config},
            "templates": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in stage.templates},
            "inputs": {t: out.get(producers[t].name, "") for t in stage.reads if t in producers},
        }
        out[stage.name] = _digest(parts)
    return out


def _read_state(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / STATE_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("stages", {})
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise PersonaLabError(
            f"{path}: unreadable stage record ({exc}); delete it to rerun every stage"
        ) from exc


def _write_state(run_dir: Path, state: dict[str, Any]) -> None:
    write_text(Path(run_dir) / STATE_FILE, json.dumps(_json_ready({"stages": state}), indent=2) + "\n")


def _outputs_exist(run_dir: Path, figures_dir: Path | None, record: dict[str, Any]) -> bool:
    paths = [table_path(run_dir, t) for t in record.get("tables", [])]
    paths += [Path(run_dir) / f for f in record.get("files", [])]
    if figures_dir is not None:
        paths += [Path(figures_dir) / f"{f}.png" for f in record.get("figures", [])]
    return all(p.exists() for p in paths)


def stage_states(
    cfg: RunConfig, run_dir: Path | None = None, figures_dir: Path | None = None
) -> pd.DataFrame:
    """Every stage with its inputs, outputs and state in ``run_dir`` under ``cfg``.

    ``done``: its outputs exist and its fingerprint is unchanged; ``stale``: it ran, but the configuration, its
    templates or an upstream stage changed since (or an output was deleted); ``missing``: it never completed.
    """
    run_dir = Path(run_dir or cfg.run_dir)
    record = _read_state(run_dir)
    expected = fingerprints(cfg)
    rows = []
    for stage in _registry():
        rec = record.get(stage.name)
        if rec is None:
            state: State = "missing"
        elif rec.get("fingerprint") != expected[stage.name] or not _outputs_exist(run_dir, figures_dir, rec):
            state = "stale"
        else:
            state = "done"
        rows.append(
            {
                "stage": stage.name,
                "state": state,
                "reads": ", ".join(stage.reads),
                "writes": ", ".join(stage.writes),
                "fingerprint": expected[stage.name],
                "recorded": (rec or {}).get("fingerprint", ""),
                "seconds": (rec or {}).get("seconds"),
                "llm_calls": (rec or {}).get("llm_calls"),
            }
        )
    return pd.DataFrame(rows)


# -- checks before anything is written --------------------------------------------------------------------------
def preflight(cfg: RunConfig, stages: Sequence[Stage], figures_dir: Path | None) -> None:
    """Everything that can be checked before the first stage runs: every selected stage's configuration, the
    backends and their API keys, and that the run and figures directories can be written. Writes nothing."""
    from persona_lab.llm import check_backend

    check_writable_dir(cfg.run_dir, "run directory")
    if figures_dir is not None:
        check_writable_dir(figures_dir, "figures directory")
    specs = {cfg.llm.backend}
    for stage in stages:
        check = getattr(stage, "check", None)
        if check is not None:
            specs |= set(check(cfg) or ())
    for spec in sorted(specs):
        check_backend(spec)


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an OS-level lock on ``run_dir`` (released when the process ends, even by ``kill -9``)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    fh = open(path, "a+")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise PersonaLabError(
                f"{run_dir} is in use by another persona-lab run (pid {holder}); wait for it to finish, "
                "or give this run another --run-dir"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield
    finally:
        fh.close()


# -- the loop ---------------------------------------------------------------------------------------------------
def _save(ctx: RunContext, stage: Stage, result: StageResult) -> dict[str, list[str]]:
    from persona_lab import charts

    for name, df in result.tables.items():
        write_table(df, table_path(ctx.run_dir, name), table=name)
    for rel, writer in result.files.items():
        _write_file(ctx.run_dir / rel, writer)
    for name, chart in result.figures.items():
        charts.save_figure(chart, name, ctx.figures_dir)
    return {"tables": list(result.tables), "files": list(result.files), "figures": list(result.figures)}


def _write_file(target: Path, writer: Any) -> None:
    """Call ``writer`` on a temporary path beside ``target``, then rename it onto ``target`` (a file, or a whole
    directory such as a saved ``DatasetDict``, which replaces the old one)."""
    import shutil

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    for p in (tmp, old):
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    try:
        writer(tmp)
        if tmp.is_dir():
            if target.exists():
                target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def run_stages(
    cfg: RunConfig,
    names: Sequence[str] | None = None,
    *,
    figures_dir: str | Path = "figures",
    console: Console | None = None,
    force: bool = False,
    progress: bool | str = True,
) -> dict[str, Any]:
    """Run the stages ``names`` (default: every stage) of ``cfg`` into ``cfg.run_dir``; return the summary.

    A selected stage whose outputs exist and whose fingerprint is unchanged is skipped (``force`` reruns it); an
    upstream stage that is not done runs first, because its tables are inputs; a stage downstream of one that
    ran in this invocation runs too, when selected. Tables are written atomically as each stage completes and
    every LLM call goes through the run's response cache, so a rerun after a crash resumes where it stopped.
    """
    from persona_lab.llm import BackendUnavailable, ResponseCache

    console = console or Console(stderr=True)
    figures = Path(figures_dir)
    every = _registry()
    selected = _select(names)
    preflight(cfg, selected, figures)
    run_dir = cfg.run_dir
    with run_lock(run_dir):
        write_text(run_dir / "config.toml", to_toml(cfg))
        expected = fingerprints(cfg, every)
        record = _read_state(run_dir)
        producers = _producers(every)
        wanted = {s.name for s in selected}
        # upstream stages that are not done are needed for the selected ones' inputs
        for stage in reversed(every):
            if stage.name in wanted:
                for t in stage.reads:
                    up = producers.get(t)
                    if up is not None and not _is_done(up, record, expected, run_dir, figures):
                        wanted.add(up.name)
        timer = Timer()
        console.rule(
            f"[bold]persona_lab[/] preset={cfg.preset} run={run_dir} backend={cfg.llm.backend} "
            f"stages={', '.join(s.name for s in every if s.name in wanted)}"
        )
        with ResponseCache(run_dir / "llm_cache.sqlite") as cache:
            ctx = RunContext(
                config=cfg,
                run_dir=run_dir,
                figures_dir=figures,
                console=console,
                cache=cache,
                progress=progress,
                producers=producers,
            )
            ran: set[str] = set()
            stopped: dict[str, str] = {}
            for stage in every:
                if stage.name not in wanted:
                    continue
                upstream_ran = any(producers[t].name in ran for t in stage.reads if t in producers)
                if not force and not upstream_ran and _is_done(stage, record, expected, run_dir, figures):
                    console.print(f"[dim]{stage.name}: done (fingerprint {expected[stage.name]}), skipped[/]")
                    continue
                try:
                    record[stage.name] = _run_one(ctx, stage, expected[stage.name], cache)
                except BackendUnavailable as exc:
                    # every answer so far is in the cache; the rest is recorded as not attempted
                    record.pop(stage.name, None)
                    stopped[stage.name] = str(exc)
                    console.print(f"[red]{stage.name} stopped:[/] {exc}")
                    break
                ran.add(stage.name)
                _write_state(run_dir, record)
            summary = _summary(cfg, record, every, cache, timer, ran, wanted)
            summary["incomplete"].update(stopped)
            summary["complete"] = summary["complete"] and not stopped
        write_text(run_dir / "summary.json", json.dumps(_json_ready(summary), indent=2) + "\n")
    _print_summary(console, summary, figures)
    return summary


def _is_done(
    stage: Stage, record: dict[str, Any], expected: dict[str, str], run_dir: Path, figures: Path
) -> bool:
    rec = record.get(stage.name)
    return (
        rec is not None
        and rec.get("fingerprint") == expected[stage.name]
        and _outputs_exist(run_dir, figures, rec)
    )


def _run_one(ctx: RunContext, stage: Stage, fingerprint: str, cache: Any) -> dict[str, Any]:
    ctx.console.rule(f"{stage.name}", style="dim")
    timer = Timer()
    result = stage.run(ctx)
    ctx.put_tables(result.tables)
    outputs = _save(ctx, stage, result)
    calls = cache.totals(since=timer.wall)
    seconds = round(timer.seconds, 1)
    llm_calls = int(calls["responses"] + calls["failures"])
    note = f" [yellow]incomplete: {result.incomplete}[/]" if result.incomplete else ""
    ctx.console.print(f"{stage.name}: {seconds} s, {llm_calls} LLM calls{note}")
    return {
        "fingerprint": fingerprint,
        **outputs,
        "summary": result.summary,
        "seconds": seconds,
        "llm_calls": llm_calls,
        "llm_failures": int(calls["failures"]),
        "incomplete": result.incomplete,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _summary(
    cfg: RunConfig,
    record: dict[str, Any],
    every: Sequence[Stage],
    cache: Any,
    timer: Timer,
    ran: set[str],
    wanted: set[str],
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "run_dir": str(cfg.run_dir),
        "preset": cfg.preset,
        "backend": cfg.llm.backend,
        "seed": cfg.seed,
    }
    stages: dict[str, Any] = {}
    incomplete: dict[str, str] = {}
    for stage in every:
        rec = record.get(stage.name)
        if rec is None:
            stages[stage.name] = {"state": "not run"}
            continue
        summary.update(rec.get("summary", {}))
        stages[stage.name] = {
            "state": "ran" if stage.name in ran else "skipped (done)",
            "seconds": rec.get("seconds"),
            "llm_calls": rec.get("llm_calls") if stage.name in ran else 0,
            "llm_calls_when_made": rec.get("llm_calls"),
            "fingerprint": rec.get("fingerprint"),
        }
        if rec.get("incomplete"):
            incomplete[stage.name] = rec["incomplete"]
    llm = cache.totals()
    llm["cached_token_share"] = (
        llm["cached_input_tokens"] / llm["input_tokens"] if llm["input_tokens"] else None
    )
    summary["stages"] = stages
    summary["llm"] = llm
    summary["complete"] = not incomplete and all(name in record for name in wanted)
    summary["incomplete"] = incomplete
    summary["seconds"] = round(timer.seconds, 1)
    return summary


def _print_summary(console: Console, summary: dict[str, Any], figures: Path) -> None:
    llm = summary["llm"]
    console.print(
        f"LLM: {llm['responses']:,} answers, {llm['failures']:,} recorded failures, {llm['input_tokens']:,} input "
        f"tokens ({llm['cached_token_share'] or 0:.0%} cached), {llm['output_tokens']:,} output, "
        f"${llm['cost_usd']:.4f}"
    )
    for name, reason in summary["incomplete"].items():
        console.print(f"[yellow]incomplete: {name}: {reason}[/]")
    console.print(f"done in {summary['seconds']} s: {summary['run_dir']}/summary.json, figures in {figures}/")


def _json_ready(obj: object) -> object:
    """Plain JSON data: NaN becomes null, numpy scalars become Python numbers, anything else a string."""
    if isinstance(obj, dict):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


# -- the dry run ------------------------------------------------------------------------------------------------
def estimate_run(cfg: RunConfig, names: Sequence[str] | None = None) -> pd.DataFrame:
    """Dry run: the LLM calls, tokens and cost of each selected stage (default: all), without calling any model.

    The requests are the stages' own plans, built from the real inputs (procedural personas, rule-filtered prompts
    and, for later stages, previews of the earlier tables), so token counts are measured on the actual text; output
    tokens are the ``max_tokens`` upper bound. The total row is the sum of the plans.
    """
    from persona_lab.llm import estimate_cost

    every = _registry()
    selected = _select(names)
    ctx = RunContext(
        config=cfg,
        run_dir=cfg.run_dir,
        figures_dir=Path("figures"),
        console=Console(stderr=True, quiet=True),
        dry_run=True,
        progress=False,
        producers=_producers(every),
    )
    rows = []
    for stage in selected:
        planned = stage.plan(ctx)
        # a stage that calls several backends (bench: models under test and a critic) plans a dict by spec;
        # the whole spec is priced, so a self-hosted ``@url`` server is costed 0 as in the real run
        by_backend = planned if isinstance(planned, dict) else {cfg.llm.backend: planned}
        calls = tokens_in = tokens_out = 0
        usd: float | None = 0.0
        for spec, reqs in by_backend.items():
            est = estimate_cost(reqs, spec, prices=cfg.llm.prices, batch=cfg.llm.batch)
            calls += est.calls
            tokens_in += est.input_tokens
            tokens_out += est.output_tokens
            usd = None if usd is None or not est.priced else usd + est.usd
        rows.append(
            {
                "stage": stage.name,
                "calls": calls,
                "input_tokens": tokens_in,
                "max_output_tokens": tokens_out,
                "usd": usd,
            }
        )
    table = pd.DataFrame(rows, columns=["stage", "calls", "input_tokens", "max_output_tokens", "usd"])
    table = table.astype({"usd": float})
    total = {"stage": "total", **table.drop(columns="stage").sum(min_count=1).to_dict()}
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    return table.astype({"calls": int, "input_tokens": int, "max_output_tokens": int})
