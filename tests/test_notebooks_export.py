"""JupyterLab users: every marimo notebook exports to .ipynb with its outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from persona_lab.cli import app

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.slow
def test_export_notebooks_writes_ipynb_with_outputs(tmp_path, monkeypatch):
    pytest.importorskip("nbformat", reason="the jupyter extra is not installed")
    src = tmp_path / "nb"
    src.mkdir()
    shutil.copy(NOTEBOOKS / "01_personas.py", src)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["export-notebooks", "--notebooks", str(src), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    nb = json.loads((tmp_path / "out" / "01_personas.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert any("generate_personas" in "".join(c["source"]) for c in code)
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert outputs, "the exported notebook carries no outputs"
    # the comparison chart is exported as a Vega-Lite spec that JupyterLab renders
    assert any(any("vega" in k for k in o.get("data", {})) for o in outputs)


def test_export_with_no_notebooks_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(
        app, ["export-notebooks", "--notebooks", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "no marimo notebooks" in result.output
