"""Envoy's run-time log levels (admin `/logging`) over Python's logging for the engine.

Envoy names its loggers by component (`admin`, `http`, `upstream` ...) and its levels
trace, debug, info, warning, error, critical, off. Ours are the `proxy.engine.*` Python
loggers, listed by the part after `proxy.engine.` (`flow`, `server`,
`telemetry.tracing`; the parent itself is `engine`); a full dotted name is accepted too.
A level set on one logger applies to it and, as in Python, to its children that have no
level of their own; `level=` sets every engine logger.
"""

from __future__ import annotations

import logging

ROOT = "proxy.engine"
TRACE = 5  # below DEBUG, so `trace` shows more than `debug`, as in Envoy
OFF = logging.CRITICAL + 10
LEVELS = {"trace": TRACE, "debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "warn": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL, "off": OFF}
USAGE = ("usage: /logging?<name>=<level> (change single level)\n"
         "usage: /logging?paths=<name>:<level>,<name>:<level> (change multiple levels)\n"
         "usage: /logging?level=<level> (change all levels)\n"
         "levels: trace debug info warning error critical off\n")

logging.addLevelName(TRACE, "TRACE")


class LoggingError(ValueError):
    """An unknown logger or level; the message says which, as Envoy's does."""


def short_name(name: str) -> str:
    return "engine" if name == ROOT else name[len(ROOT) + 1:]


def engine_loggers() -> dict[str, logging.Logger]:
    """Short name -> Logger, for every engine logger created so far (and the parent)."""
    out = {"engine": logging.getLogger(ROOT)}
    for name, obj in list(logging.root.manager.loggerDict.items()):
        if name.startswith(ROOT + ".") and isinstance(obj, logging.Logger):
            out[short_name(name)] = obj
    return dict(sorted(out.items()))


def level_name(level: int) -> str:
    if level >= OFF:
        return "off"
    for name, value in sorted(LEVELS.items(), key=lambda kv: -kv[1]):
        if level >= value and name != "warn":
            return name
    return "trace"


def active_loggers() -> str:
    """Envoy's listing: `active loggers:` then `  <name>: <level>` lines."""
    lines = ["active loggers:"]
    lines += [f"  {name}: {level_name(lg.getEffectiveLevel())}" for name, lg in engine_loggers().items()]
    return "\n".join(lines) + "\n"


def _level(value: str) -> int:
    level = LEVELS.get(value.strip().lower())
    if level is None:
        raise LoggingError(f"error: unknown logger level {value!r}")
    return level


def _logger(name: str, known: dict[str, logging.Logger]) -> logging.Logger:
    found = known.get(name) or known.get(short_name(name) if name.startswith(ROOT) else "")
    if found is None:
        raise LoggingError(f"error: unknown logger name {name!r}")
    return found


def change(params: dict[str, str]) -> None:
    """Apply `/logging` query parameters: level=, paths=, or <name>=<level>. Everything is
    checked before anything changes, so a bad request changes nothing."""
    known = engine_loggers()
    plan: list[tuple[logging.Logger, int]] = []
    for key, value in params.items():
        if key == "level":
            level = _level(value)
            plan += [(lg, level) for lg in known.values()]
        elif key == "paths":
            for item in filter(None, (p.strip() for p in value.split(","))):
                name, sep, lvl = item.rpartition(":")
                if not sep:
                    raise LoggingError(f"error: {item!r} is not <name>:<level>")
                plan.append((_logger(name, known), _level(lvl)))
        else:
            plan.append((_logger(key, known), _level(value)))
    for lg, level in plan:
        lg.setLevel(level)
