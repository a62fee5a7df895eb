"""The DPO training recipe (the ``train`` extra: TRL, transformers, gguf, accelerate), imported on demand so that
``import persona_lab.elephants`` never loads torch. See :mod:`persona_lab.elephants._train`."""

from persona_lab.elephants._train import (
    LOCAL_MODEL,
    REPORT_FILE,
    DPOTrainConfig,
    TrainReport,
    generate_reply,
    load_dpo_data,
    load_model,
    load_train_config,
    train_dpo,
)

__all__ = [
    "LOCAL_MODEL",
    "REPORT_FILE",
    "DPOTrainConfig",
    "TrainReport",
    "generate_reply",
    "load_dpo_data",
    "load_model",
    "load_train_config",
    "train_dpo",
]
