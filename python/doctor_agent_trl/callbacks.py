"""A transformers TrainerCallback that reports a Trainer's run over the job protocol."""
from __future__ import annotations

import os
from typing import Any

from transformers import TrainerCallback

from . import protocol


class ProtocolCallback(TrainerCallback):
    """Progress per optimizer step, logged scalars as metrics, and a `checkpoint` message once
    the Trainer has written checkpoint-N. Also saves when `save_every_minutes` have passed, and
    saves then stops when the supervisor sends SIGTERM.

    `steps_per_unit` optimizer steps make one unit of progress (e.g. one RL iteration): progress,
    and the `step` of checkpoint messages, count whole units, and the time-based and requested
    saves wait for the end of the current unit (a resumed run starts at a unit boundary).
    `report_logs=False` leaves the metrics to the caller."""

    def __init__(self, save_every_minutes: float, stop: protocol.StopRequest, unit: str = "step",
                 steps_per_unit: int = 1, report_logs: bool = True) -> None:
        if steps_per_unit < 1:
            raise ValueError("steps_per_unit must be at least 1")
        self.clock = protocol.SaveClock(save_every_minutes)
        self.stop = stop
        self.unit = unit
        self.steps_per_unit = steps_per_unit
        self.report_logs = report_logs

    def _progress(self, state: Any) -> None:
        protocol.progress(state.global_step // self.steps_per_unit, state.max_steps // self.steps_per_unit, unit=self.unit)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.clock.saved()
        self._progress(state)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step % self.steps_per_unit == 0:
            self.stop.hold(f"unit-{state.global_step // self.steps_per_unit}")

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step % self.steps_per_unit != 0:
            return
        self._progress(state)
        if self.clock.due() or self.stop.requested:
            control.should_save = True
        if self.stop.requested:
            control.should_training_stop = True

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and self.report_logs:
            protocol.metric({k: v for k, v in logs.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}, state.global_step)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.clock.saved()
        if not state.is_world_process_zero:
            return
        # TRL writes a model card beside the checkpoints; only checkpoint-N folders may sit there,
        # since the supervisor resumes from the newest entry of the folder.
        card = os.path.join(args.output_dir, "README.md")
        if os.path.isfile(card):
            os.remove(card)
        path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if os.path.isdir(path):
            protocol.checkpoint(path, state.global_step // self.steps_per_unit)


def resume_point(resume: str | None, output_dir: str) -> str | None:
    """The checkpoint to resume from: the one handed over when the Trainer finished writing it
    (trainer_state.json is written last), else the newest complete checkpoint-N beside it,
    else none (start over)."""
    def complete(path: str) -> bool:
        return os.path.isfile(os.path.join(path, "trainer_state.json"))

    if not resume:
        return None
    if complete(resume):
        return resume
    found = []
    if os.path.isdir(output_dir):
        for name in os.listdir(output_dir):
            if name.startswith("checkpoint-") and name[len("checkpoint-"):].isdigit() and complete(os.path.join(output_dir, name)):
                found.append((int(name[len("checkpoint-"):]), os.path.join(output_dir, name)))
    best = max(found)[1] if found else None
    protocol.log(f"{resume} is not a complete Trainer checkpoint (no trainer_state.json); " + (f"resuming from {best}" if best else "starting over"), "warn")
    return best
