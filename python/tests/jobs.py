"""Running TRL runner jobs from the tests: in this process (what most tests need: no fresh import of
torch and transformers per job) or as a real `python -m doctor_agent_trl` subprocess (the protocol
on stdout, exit statuses, SIGTERM from outside)."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Optional

import torch

from doctor_agent_trl import protocol
from doctor_agent_trl.__main__ import run_job

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Jobs here and in subprocesses compute with one thread each, so that their numbers agree bit for bit.
THREADS = 1


def in_process(spec: str, hold_for_stop: Optional[str] = None) -> tuple[int, list[dict]]:
    """Runs a job here as `python -m doctor_agent_trl SPEC` would: its exit status and protocol lines.
    With hold_for_stop, the job waits at that point (protocol.StopRequest.hold) and this process
    sends itself SIGTERM once the job says it is there, so the stop lands exactly there."""
    torch.set_num_threads(THREADS)
    before = signal.getsignal(signal.SIGTERM)
    out, saved = io.StringIO(), protocol._OUT
    protocol._OUT = out
    if hold_for_stop:
        os.environ[protocol.HOLD_FOR_STOP] = hold_for_stop

        def terminate_when_held() -> None:
            deadline = time.monotonic() + 600
            while protocol.HOLDING not in out.getvalue() and time.monotonic() < deadline:
                time.sleep(0.005)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=terminate_when_held, daemon=True).start()
    try:
        code = run_job(spec)
    finally:
        protocol._OUT = saved
        signal.signal(signal.SIGTERM, before)
        os.environ.pop(protocol.HOLD_FOR_STOP, None)
    return code, [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def start(spec: str, cwd: str, hold_for_stop: Optional[str] = None) -> subprocess.Popen:
    """The job as a real subprocess (stdout: the protocol lines)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "PYTHONPATH": PYTHON_DIR}
    env.pop(protocol.HOLD_FOR_STOP, None)
    if hold_for_stop:
        env[protocol.HOLD_FOR_STOP] = hold_for_stop
    return subprocess.Popen([sys.executable, "-m", "doctor_agent_trl", spec], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def terminate_when_held(proc: subprocess.Popen, seen: list[dict]) -> None:
    """Reads a subprocess's protocol lines into seen until it says it holds for the stop, then sends SIGTERM."""
    assert proc.stdout is not None
    for line in proc.stdout:
        msg = json.loads(line)
        seen.append(msg)
        if msg["type"] == "log" and msg["message"].startswith(protocol.HOLDING):
            proc.send_signal(signal.SIGTERM)
            return
    raise AssertionError(f"the job ended without holding for the stop: {seen[-3:]}")
