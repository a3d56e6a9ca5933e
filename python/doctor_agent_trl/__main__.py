"""python -m doctor_agent_trl SPEC.json: runs one job and reports over the JSON-lines protocol."""
from __future__ import annotations

import importlib
import sys
import traceback

from . import protocol

KINDS = {"train.sft": "sft", "rl.grpo": "grpo", "rl.ppo": "ppo"}


def main(argv: list[str]) -> int:
    protocol.redirect_library_output()
    if len(argv) != 1:
        protocol.error("usage: python -m doctor_agent_trl SPEC.json", user=True)
        return 2
    return run_job(argv[0])


def run_job(spec_path: str) -> int:
    """Runs the job of a spec file, reporting over the protocol; the process's exit status."""
    try:
        spec = protocol.load_spec(spec_path)
        module = KINDS.get(spec["kind"])
        if module is None:
            raise protocol.UserError(f'the TRL runner has no step kind "{spec["kind"]}" (it runs {", ".join(KINDS)})', where="uses")
        outputs = importlib.import_module(f".{module}", __package__).run(spec)
        if outputs is None:
            return 143  # stopped on request after a checkpoint
        protocol.result(outputs)
        return 0
    except protocol.UserError as e:
        protocol.error(e.message, user=True, where=e.where, hint=e.hint)
        return 2
    except Exception as e:  # a crash: retried by the supervisor
        traceback.print_exc(file=sys.stderr)
        protocol.error(f"{type(e).__name__}: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
