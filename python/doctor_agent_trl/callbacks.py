"""A transformers TrainerCallback that reports a Trainer's run over the job protocol."""
from __future__ import annotations

import os
from typing import Any

from transformers import TrainerCallback

from . import protocol


class ProtocolCallback(TrainerCallback):
    """Progress per optimizer step, logged scalars as metrics, and a `checkpoint` message once
    the Trainer has written checkpoint-N. Also saves when `save_every_minutes` have passed, and
    saves then stops when the supervisor sends SIGTERM."""

    def __init__(self, save_every_minutes: float, stop: protocol.StopRequest, unit: str = "step") -> None:
        self.clock = protocol.SaveClock(save_every_minutes)
        self.stop = stop
        self.unit = unit

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.clock.saved()
        protocol.progress(state.global_step, state.max_steps, unit=self.unit)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        protocol.progress(state.global_step, state.max_steps, unit=self.unit)
        if self.clock.due() or self.stop.requested:
            control.should_save = True
        if self.stop.requested:
            control.should_training_stop = True

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs:
            protocol.metric({k: v for k, v in logs.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}, state.global_step)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.clock.saved()
        if not state.is_world_process_zero:
            return
        path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if os.path.isdir(path):
            protocol.checkpoint(path, state.global_step)
