"""Ablations are comparisons of runs: the configuration difference and each stage's numbers side by side."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from persona_lab.errors import PersonaLabError


@dataclass(frozen=True)
class RunComparison:
    """Two runs side by side.

    Attributes:
        config: one row per configuration key that differs: ``key``, ``a``, ``b``.
        numbers: one row per numeric summary entry that either run has: ``stage``, ``key``, ``a``, ``b``,
            ``difference`` (b - a).
        stale: the stages the configuration difference makes stale (their fingerprints differ), in order.
    """

    config: pd.DataFrame
    numbers: pd.DataFrame
    stale: tuple[str, ...]


def _flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


def _load(run_dir: Path) -> tuple[Any, dict[str, Any]]:
    from persona_lab.config import load_config
    from persona_lab.pipeline._run import _read_state

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.toml"
    if not cfg_path.exists():
        raise PersonaLabError(
            f"{run_dir}: no config.toml; is this a run directory written by persona-lab run?"
        )
    return load_config(path=cfg_path), _read_state(run_dir)


def compare_runs(a: Path, b: Path) -> RunComparison:
    """Compare run directories ``a`` and ``b``: which settings differ, how each stage's summary numbers moved,
    and which stages the difference made stale (so which numbers can differ at all)."""
    from persona_lab.pipeline._run import fingerprints

    cfg_a, st_a = _load(a)
    cfg_b, st_b = _load(b)
    flat_a = _flat(cfg_a.model_dump(mode="json"))
    flat_b = _flat(cfg_b.model_dump(mode="json"))
    ignore = {"name", "runs_dir"}
    config = pd.DataFrame(
        [
            {"key": k, "a": flat_a.get(k), "b": flat_b.get(k)}
            for k in sorted(set(flat_a) | set(flat_b))
            if k not in ignore and flat_a.get(k) != flat_b.get(k)
        ],
        columns=["key", "a", "b"],
    )
    fa, fb = fingerprints(cfg_a), fingerprints(cfg_b)
    stale = tuple(name for name in fa if fa[name] != fb.get(name))
    rows = []
    for stage in dict.fromkeys([*st_a, *st_b]):
        na = _flat(st_a.get(stage, {}).get("summary", {}))
        nb = _flat(st_b.get(stage, {}).get("summary", {}))
        for extra in ("seconds", "llm_calls"):
            na[extra] = st_a.get(stage, {}).get(extra)
            nb[extra] = st_b.get(stage, {}).get(extra)
        for key in dict.fromkeys([*na, *nb]):
            va, vb = na.get(key), nb.get(key)
            if not all(
                v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in (va, vb)
            ):
                continue
            if va is None and vb is None:
                continue
            diff = vb - va if va is not None and vb is not None else None
            rows.append({"stage": stage, "key": key, "a": va, "b": vb, "difference": diff})
    numbers = pd.DataFrame(rows, columns=["stage", "key", "a", "b", "difference"])
    return RunComparison(config=config, numbers=numbers, stale=stale)
