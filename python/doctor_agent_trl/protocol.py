"""The JSON-lines job protocol (contract/protocol.ts), Python side.

One JSON object per line on stdout: progress, metric, checkpoint, artifact, result, error, log.
Everything else a library prints goes to stderr (see ``redirect_library_output``), so stdout
carries protocol messages only.
"""
from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from typing import Any, TextIO

_OUT: TextIO = sys.stdout


class UserError(Exception):
    """Bad input or configuration: the step fails at once and is never retried."""

    def __init__(self, message: str, where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint


def redirect_library_output() -> None:
    """Keep the real stdout for protocol lines; anything else printed goes to stderr."""
    global _OUT
    _OUT = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    sys.stdout = sys.stderr


def is_main_process() -> bool:
    """Under `accelerate launch` every process runs the job; only rank 0 reports."""
    return int(os.environ.get("RANK", "0")) == 0


def emit(msg: dict[str, Any]) -> None:
    if not is_main_process() and msg.get("type") != "error":
        return
    _OUT.write(json.dumps(msg, ensure_ascii=False, allow_nan=False) + "\n")
    _OUT.flush()


def progress(current: int, total: int | None = None, message: str | None = None, unit: str | None = None) -> None:
    msg: dict[str, Any] = {"type": "progress", "current": current}
    if total is not None:
        msg["total"] = total
    if message is not None:
        msg["message"] = message
    if unit is not None:
        msg["unit"] = unit
    emit(msg)


def metric(values: dict[str, float], step: int | None = None) -> None:
    finite = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and math.isfinite(float(v))}
    if not finite:
        return
    msg: dict[str, Any] = {"type": "metric", "values": finite}
    if step is not None:
        msg["step"] = step
    emit(msg)


def checkpoint(path: str, step: int | None = None) -> None:
    """Call only once the checkpoint is completely on disk."""
    msg: dict[str, Any] = {"type": "checkpoint", "path": path}
    if step is not None:
        msg["step"] = step
    emit(msg)


def artifact(name: str, path: str) -> None:
    emit({"type": "artifact", "name": name, "path": path})


def log(message: str, level: str = "info") -> None:
    emit({"type": "log", "level": level, "message": message})


def result(outputs: dict[str, Any]) -> None:
    emit({"type": "result", "outputs": outputs})


def error(message: str, user: bool = False, where: str | None = None, hint: str | None = None) -> None:
    msg: dict[str, Any] = {"type": "error", "message": message, "user": user}
    if where:
        msg["where"] = where
    if hint:
        msg["hint"] = hint
    emit(msg)


def load_spec(path: str) -> dict[str, Any]:
    """The job spec the TypeScript job wrote (contract/protocol.ts JobSpec, plus projectRoot)."""
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    for key in ("kind", "params", "outDir"):
        if key not in spec:
            raise UserError(f"{path}: the job spec has no '{key}'", hint="start the runner through doctor-agent")
    return spec


HOLD_FOR_STOP = "DOCTOR_AGENT_TRL_HOLD_FOR_STOP"
HOLDING = "holding until SIGTERM at"


class StopRequest:
    """Set when the supervisor asks the job to stop (SIGTERM): save a checkpoint and exit."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> "StopRequest":
        def handler(signum: int, frame: Any) -> None:  # noqa: ARG001
            self.requested = True

        signal.signal(signal.SIGTERM, handler)
        return self

    def hold(self, point: str) -> None:
        """When the environment's DOCTOR_AGENT_TRL_HOLD_FOR_STOP names this point, wait there (up to
        10 minutes) until the stop has been requested, so that a test's SIGTERM lands at a known place
        of the run: e.g. ``iteration-0`` (rl.ppo: before the first iteration), ``rollout-0`` (rl.ppo:
        inside the first iteration), ``unit-N`` (a Trainer: before the first optimizer step of unit N).
        The log line ``holding at POINT`` says that the job is there."""
        if os.environ.get(HOLD_FOR_STOP) != point:
            return
        log(f"{HOLDING} {point}")
        deadline = time.monotonic() + 600.0
        while not self.requested and time.monotonic() < deadline:
            time.sleep(0.005)


class SaveClock:
    """Time-based saving: due once `minutes` have passed since the last save (0: never)."""

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60.0
        self.last = time.monotonic()

    def due(self) -> bool:
        return self.seconds > 0 and time.monotonic() - self.last >= self.seconds

    def saved(self) -> None:
        self.last = time.monotonic()
