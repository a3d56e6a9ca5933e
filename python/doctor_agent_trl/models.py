"""Models and tokenizers: a Hugging Face folder, or `preset:NAME` (fresh weights of configs/NAME.json
shaped to the tokenizer, as the built-in trainer builds them), and saving a folder the built-in
TypeScript engine loads (config.json, model.safetensors, tokenizer files)."""
from __future__ import annotations

import json
import os
import shutil
from typing import Any

from .protocol import UserError

PRESET = "preset:"


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    folder = os.path.dirname(path) if path.endswith(".json") else path
    if not os.path.isfile(os.path.join(folder, "tokenizer.json")) and not os.path.isfile(os.path.join(folder, "tokenizer_config.json")):
        raise UserError(f"{folder}: no tokenizer here", where="with.tokenizer", hint="give a tokenizer folder or a model folder with its tokenizer")
    tok = AutoTokenizer.from_pretrained(folder)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def preset_config(name: str, tokenizer: Any, project_root: str) -> Any:
    from transformers import AutoConfig

    path = os.path.join(project_root, "configs", f"{name}.json")
    if not os.path.isfile(path):
        raise UserError(f'with.model: unknown preset "{name}" (no configs/{name}.json)', where="with.model", hint="use preset:tiny or preset:small, or a model folder")
    with open(path, encoding="utf-8") as f:
        raw: dict[str, Any] = json.load(f)
    raw = {k: v for k, v in raw.items() if k not in ("architectures", "torch_dtype")}
    model_type = raw.pop("model_type")
    raw["vocab_size"] = len(tokenizer)
    for key, tok_id in (("eos_token_id", tokenizer.eos_token_id), ("pad_token_id", tokenizer.pad_token_id), ("bos_token_id", tokenizer.bos_token_id)):
        if tok_id is not None:
            raw[key] = tok_id
    return AutoConfig.for_model(model_type, **raw)


def load_causal_lm(ref: str, tokenizer: Any, project_root: str, seed: int) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    if ref.startswith(PRESET):
        config = preset_config(ref[len(PRESET):], tokenizer, project_root)
        torch.manual_seed(seed)
        return AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    if not os.path.isfile(os.path.join(ref, "config.json")):
        raise UserError(f"{ref}: not a model folder (no config.json)", where="with.model", hint="give a Hugging Face model folder, or preset:tiny / preset:small")
    return AutoModelForCausalLM.from_pretrained(ref, dtype=torch.float32)


def save_trained(trainer: Any, tokenizer: Any, folder: str) -> str:
    """Saves a Trainer's model (gathered from every process, e.g. under ZeRO-3) and the tokenizer
    next to the final name, and renames the folder when complete. Every process calls it."""
    partial = folder + ".partial"
    main = trainer.accelerator.is_main_process
    if main:
        shutil.rmtree(partial, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(partial)
    if main:
        tokenizer.save_pretrained(partial)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(partial, folder)
    trainer.accelerator.wait_for_everyone()
    return folder


def device_args() -> dict[str, Any]:
    """TrainingArguments for where training runs: on GPUs bf16 where supported; without GPUs the
    CPU, with gloo between the processes `accelerate launch` starts (else each would train alone);
    a single process names no backend (accelerate would then look for a process group)."""
    import torch

    if torch.cuda.is_available():
        return {"bf16": torch.cuda.is_bf16_supported()}
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return {"use_cpu": True, "ddp_backend": "gloo"}
    return {"use_cpu": True}
