"""Completion indexes of Indexed Jobs as interval strings ("0-2,4"), as status.completedIndexes.

Kubernetes keeps the set as ordered intervals and prints every run longer than one index
as `first-last` (so {0,1} is "0-1"); indexes outside [0, completions) are ignored when
parsing, as parseIndexesFromString does.
"""

from __future__ import annotations

from collections.abc import Iterable


def parse(text: str | None, completions: int) -> set[int]:
    """The indexes in `text` below `completions` (malformed parts are skipped)."""
    found: set[int] = set()
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        try:
            lo, hi = int(first), int(last or first)
        except ValueError:
            continue
        found.update(i for i in range(max(lo, 0), min(hi, completions - 1) + 1))
    return found


def format_indexes(indexes: Iterable[int]) -> str:
    """`{0,1,2,4}` -> "0-2,4"."""
    parts: list[str] = []
    run: list[int] = []
    for index in sorted(set(indexes)):
        if run and index == run[-1] + 1:
            run.append(index)
            continue
        if run:
            parts.append(_run_text(run))
        run = [index]
    if run:
        parts.append(_run_text(run))
    return ",".join(parts)


def _run_text(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"
