"""Shared test helpers: a fixed clock and timestamps relative to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def ago(**delta: float) -> str:
    """An RFC 3339 timestamp `delta` before NOW, e.g. ago(minutes=5)."""
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str = "x", *, age: dict[str, float] | None = None, **extra: Any) -> dict[str, Any]:
    """Object metadata created `age` ago (default 5 minutes), with extra fields."""
    return {"name": name, "creationTimestamp": ago(**(age or {"minutes": 5})), **extra}


def by_name(columns: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    """(name, type, priority) of each column, for compact assertions."""
    return [(c["name"], c["type"], c["priority"]) for c in columns]
