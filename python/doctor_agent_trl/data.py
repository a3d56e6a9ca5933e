"""Reading the prepared data files the TypeScript job writes (JSON Lines, one object per line)."""
from __future__ import annotations

import json
from typing import Any

from .protocol import UserError


def read_jsonl(path: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{path}:{n}: not JSON ({e.msg})", where=f"{path}:{n}") from e
            if not isinstance(row, dict):
                raise UserError(f"{path}:{n}: expected an object", where=f"{path}:{n}")
            rows.append(row)
    if not rows:
        raise UserError(f"{path}: no items", where=path, hint="give a data file with at least one item")
    return rows
