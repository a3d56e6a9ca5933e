"""train.sft on TRL's SFTTrainer: loss on the assistant turn only, AdamW, linear warmup then cosine.

The TypeScript job has already turned the items into prompt/completion conversations
(spec["prepared"]["data"]) and found or trained the tokenizer (spec["prepared"]["tokenizer"]).
"""
from __future__ import annotations

import os
from typing import Any

from . import protocol
from .data import read_jsonl
from .models import device_args, load_causal_lm, load_tokenizer, save_trained


def sft_config(p: dict[str, Any], output_dir: str) -> Any:
    from trl import SFTConfig

    return SFTConfig(
        output_dir=output_dir,
        num_train_epochs=p["epochs"],
        per_device_train_batch_size=p["batch_size"],
        gradient_accumulation_steps=p["gradient_accumulation_steps"],
        learning_rate=p["learning_rate"],
        lr_scheduler_type="cosine",
        warmup_steps=p["warmup_ratio"],
        weight_decay=p["weight_decay"],
        max_grad_norm=p["max_grad_norm"],
        max_length=p["max_seq_len"],
        truncation_mode="keep_start",
        completion_only_loss=True,
        packing=False,
        save_strategy="steps",
        save_steps=p["save_every"],
        save_total_limit=2,
        logging_steps=1,
        logging_first_step=True,
        seed=p["seed"],
        data_seed=p["seed"],
        report_to=[],
        disable_tqdm=True,
        **device_args(),
        dataloader_num_workers=0,
    )


def run(spec: dict[str, Any]) -> dict[str, Any] | None:
    from datasets import Dataset
    from trl import SFTTrainer

    from .callbacks import ProtocolCallback, resume_point

    p = spec["params"]
    prepared = spec["prepared"]
    out_dir = spec["outDir"]
    stop = protocol.StopRequest().install()
    tokenizer = load_tokenizer(prepared["tokenizer"])
    model = load_causal_lm(p["model"], tokenizer, spec["projectRoot"], p["seed"])
    dataset = Dataset.from_list(read_jsonl(prepared["data"]))
    trainer = SFTTrainer(
        model=model,
        args=sft_config(p, os.path.join(out_dir, "checkpoints")),
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[ProtocolCallback(p["save_every_minutes"], stop)],
    )
    resume = resume_point(spec.get("resumeFrom"), os.path.join(out_dir, "checkpoints"))
    if resume:
        protocol.log(f"resuming from {resume}")
    trainer.train(resume_from_checkpoint=resume or None)
    if stop.requested:
        return None
    final = save_trained(trainer, tokenizer, os.path.join(out_dir, "checkpoint"))
    protocol.artifact("checkpoint", final)
    return {"checkpoint": final}
