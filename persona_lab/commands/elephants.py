"""``persona-lab elephants``: train a model with DPO on the Pink Elephants pairs, and chat with the checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from persona_lab.errors import user_errors

elephants_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Pink Elephants (Castricato et al. 2024): DPO training on the DPF pairs and the trained checkpoint.",
)


@elephants_app.command()
@user_errors
def train(
    data: Path | None = typer.Option(
        None, help="The elephants/hf DatasetDict of a run, the run directory, or elephants/dpo.parquet."
    ),
    output: Path | None = typer.Option(None, "--output", help="Checkpoint directory."),
    model: str | None = typer.Option(
        None,
        help="'local' (the embedded SmolLM2-135M-Instruct GGUF), a Hugging Face model id or a directory.",
    ),
    gguf_file: str | None = typer.Option(None, help="A GGUF file inside --model to de-quantize."),
    config: Path | None = typer.Option(None, "--config", help="TOML file with the recipe's settings."),
    max_steps: int | None = typer.Option(None, help="Stop after this many optimizer steps."),
    epochs: float | None = typer.Option(None, help="Passes over the train split."),
    learning_rate: float | None = typer.Option(None, "--lr", help="Learning rate (default 5e-7)."),
    beta: float | None = typer.Option(None, help="DPO beta (default 0.1)."),
    batch_size: int | None = typer.Option(None, help="Pairs per device per step."),
    gradient_accumulation_steps: int | None = typer.Option(None, help="Steps per optimizer update."),
    max_length: int | None = typer.Option(None, help="Tokens kept per prompt + completion."),
    lora: bool | None = typer.Option(None, "--lora/--full", help="LoRA adapters (peft) or every weight."),
    gradient_checkpointing: bool | None = typer.Option(
        None,
        "--gradient-checkpointing/--no-gradient-checkpointing",
        help="Recompute activations (big models).",
    ),
    device: str | None = typer.Option(None, help="auto (the accelerator when there is one) or cpu."),
    seed: int | None = typer.Option(None, help="Seed."),
) -> None:
    """Train with DPO (TRL) on the train split of the Pink Elephants pairs; the avoid instruction is the system
    message. On a GPU: the same command with a larger --model (accelerate launch for several GPUs)."""
    from persona_lab.elephants.train import load_train_config, train_dpo

    cfg = load_train_config(
        config,
        data=data,
        output_dir=output,
        model=model,
        gguf_file=gguf_file,
        max_steps=max_steps,
        epochs=epochs,
        learning_rate=learning_rate,
        beta=beta,
        batch_size=batch_size,
        gradient_accumulation_steps=gradient_accumulation_steps,
        max_length=max_length,
        lora=lora,
        gradient_checkpointing=gradient_checkpointing,
        device=device,
        seed=seed,
    )
    report = train_dpo(cfg)
    typer.echo(report.describe())


@elephants_app.command()
@user_errors
def generate(
    checkpoint: Path = typer.Argument(
        ..., help="A checkpoint directory written by `persona-lab elephants train`."
    ),
    prompt: str = typer.Option(..., help="The user's message."),
    system: str | None = typer.Option(None, help="A system message (e.g. the avoid instruction)."),
    max_new_tokens: int = typer.Option(64, help="Reply length in tokens."),
) -> None:
    """Print a checkpoint's greedy reply to one message."""
    from persona_lab.elephants.train import generate_reply

    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]
    typer.echo(generate_reply(checkpoint, messages, max_new_tokens=max_new_tokens))
