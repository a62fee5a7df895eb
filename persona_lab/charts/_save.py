"""Saving charts as the paper figures: ``figures/<name>.svg`` and ``.png``, atomically, offline (vl-convert)."""

from __future__ import annotations

from pathlib import Path

import altair as alt

from persona_lab.io import atomic_path


def save_figure(
    chart: alt.TopLevelMixin, name: str, figures_dir: str | Path = "figures", scale: float = 2.0
) -> list[Path]:
    """Write ``chart`` as ``<figures_dir>/<name>.svg`` and ``.png`` (vl-convert, no browser, no network).

    Args:
        chart: any Altair chart.
        name: the stable figure name, e.g. ``fig02_persona_demographics`` (the paper's figure number first).
        figures_dir: output directory (created if missing).
        scale: PNG scale factor (2 gives a sharp image for papers and READMEs).
    """
    out = Path(figures_dir)
    paths = []
    for fmt in ("svg", "png"):
        target = out / f"{name}.{fmt}"
        with atomic_path(target) as tmp:
            if fmt == "png":
                chart.save(str(tmp), format=fmt, scale_factor=scale)
            else:
                chart.save(str(tmp), format=fmt)
        paths.append(target)
    return paths
