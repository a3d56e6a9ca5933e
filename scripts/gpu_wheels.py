"""scripts/gpu-wheels.txt for the shell scripts: `python3 scripts/gpu_wheels.py all [--with-arrow]`
prints the pins to download; `python3 scripts/gpu_wheels.py missing` prints those whose module this
Python cannot import (the ones to install), and fails when it has no PyTorch, transformers or accelerate."""
from __future__ import annotations

import importlib.util
import os
import re
import sys

LIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gpu-wheels.txt")
LINE = re.compile(r"^([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)\s*#\s*import\s+([A-Za-z0-9_.]+)\s*(;\s*arrow)?\s*$")


def pins(path: str = LIST) -> list[tuple[str, str, bool]]:
    """(name==version, module, arrow) per line."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            m = LINE.match(line)
            if not m:
                sys.exit(f"{path}:{n}: expected 'NAME==VERSION  # import MODULE[; arrow]', not {line!r}")
            out.append((f"{m.group(1)}=={m.group(2)}", m.group(3), bool(m.group(4))))
    return out


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("all", "missing"):
        sys.exit("usage: gpu_wheels.py all [--with-arrow] | missing")
    if argv[0] == "missing":
        lacking = [m for m in ("torch", "transformers", "accelerate") if importlib.util.find_spec(m) is None]
        if lacking:
            print(f"gpu-check: {sys.executable} has no {', '.join(lacking)}: set DOCTOR_AGENT_PYTHON to a Python with "
                  "PyTorch, transformers and accelerate", file=sys.stderr)
            return 2
    for spec, module, arrow in pins():
        if argv[0] == "all" and (not arrow or "--with-arrow" in argv[1:]):
            print(spec)
        elif argv[0] == "missing" and importlib.util.find_spec(module) is None:
            print(spec)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
