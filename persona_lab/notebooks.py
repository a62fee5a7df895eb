"""Open the marimo notebooks in JupyterLab: export each one to ``.ipynb`` with its outputs."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from persona_lab.errors import PersonaLabError
from persona_lab.io import atomic_path


def export_ipynb(
    notebooks_dir: str | Path = "notebooks", out_dir: str | Path = "notebooks/ipynb"
) -> list[Path]:
    """Run every ``NN_*.py`` marimo notebook and write it as ``<out_dir>/NN_*.ipynb`` with outputs.

    Uses ``marimo export ipynb --include-outputs`` (which needs ``nbformat``: ``pip install
    'persona-lab[jupyter]'``). Each file is written atomically; a notebook that fails to run is an error naming it.
    """
    if importlib.util.find_spec("nbformat") is None:
        raise PersonaLabError("exporting to .ipynb needs nbformat: pip install 'persona-lab[jupyter]'")
    src = Path(notebooks_dir)
    paths = sorted(p for p in src.glob("[0-9][0-9]_*.py"))
    if not paths:
        raise PersonaLabError(f"{src}: no marimo notebooks (NN_name.py) to export")
    written = []
    env = {**os.environ, "MARIMO_SKIP_UPDATE_CHECK": "1"}
    for nb in paths:
        target = Path(out_dir) / f"{nb.stem}.ipynb"
        with atomic_path(target) as tmp:
            cmd = [
                sys.executable,
                "-m",
                "marimo",
                "export",
                "ipynb",
                str(nb),
                "-o",
                str(tmp),
                "--include-outputs",
                "-f",
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                raise PersonaLabError(f"{nb}: export to .ipynb failed ({tail[0]})")
        written.append(target)
    return written
