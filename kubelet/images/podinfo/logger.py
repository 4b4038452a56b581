"""zap's production JSON encoder, as podinfo configures it: one JSON object per line on
stderr with level, ts (ISO 8601, ms, zone), caller, msg, then the fields."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

LEVELS = {"debug": 0, "info": 1, "warn": 2, "error": 3, "dpanic": 4, "panic": 5, "fatal": 6}


def _timestamp() -> str:
    now = time.time()
    local = time.localtime(now)
    offset = time.strftime("%z", local)
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{int(now % 1 * 1000):03d}" + (
        "Z" if offset in ("+0000", "-0000") else offset)


class Logger:
    def __init__(self, level: str = "info", fields: dict[str, Any] | None = None) -> None:
        self.threshold = LEVELS.get(level, 1)
        self.fields = fields or {}

    def with_fields(self, **fields: Any) -> Logger:
        child = Logger()
        child.threshold, child.fields = self.threshold, {**self.fields, **fields}
        return child

    def log(self, level: str, msg: str, **fields: Any) -> None:
        if LEVELS[level] < self.threshold:
            return
        frame = sys._getframe(2)
        caller = f"podinfo/{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
        entry = {"level": level, "ts": _timestamp(), "caller": caller, "msg": msg, **self.fields, **fields}
        sys.stderr.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str) + "\n")
        sys.stderr.flush()

    def debug(self, msg: str, **fields: Any) -> None:
        self.log("debug", msg, **fields)

    def info(self, msg: str, **fields: Any) -> None:
        self.log("info", msg, **fields)

    def warn(self, msg: str, **fields: Any) -> None:
        self.log("warn", msg, **fields)

    def error(self, msg: str, **fields: Any) -> None:
        self.log("error", msg, **fields)
