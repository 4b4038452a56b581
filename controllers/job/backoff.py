"""The delay before replacing failed pods (the Job controller's backoffRecord).

Each Job has a record of failures since its last success and the time of the latest one.
New finished pods update it (newBackoffRecord): only failures update it while nothing
succeeded; a success resets it and only failures finishing after that success count.
The delay is 10 s * 2^(failures-1), capped at 10 minutes (DefaultJobPodFailureBackOff,
MaxJobPodFailureBackOff in Kubernetes 1.32; the docs still say six minutes), measured
from the latest failure. The record lives in memory, as in kube-controller-manager.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controllers.job import jobpods

Obj = dict[str, Any]
BASE_SECONDS = 10.0
MAX_SECONDS = 600.0


@dataclass(frozen=True)
class BackoffRecord:
    failures_after_last_success: int = 0
    last_failure_time: datetime | None = None


def new_backoff_record(record: BackoffRecord, succeeded: Sequence[Obj], failed: Sequence[Obj],
                       now: datetime) -> BackoffRecord:
    if not succeeded and not failed:
        return record
    failed_times = sorted(jobpods.finished_time(p, now) for p in failed)
    if not succeeded:
        return BackoffRecord(record.failures_after_last_success + len(failed), failed_times[-1])
    last_success = max(jobpods.finished_time(p, now) for p in succeeded)
    after = [t for t in failed_times if t > last_success]
    return BackoffRecord(len(after), after[-1] if after else None)


def remaining_seconds(record: BackoffRecord, now: datetime, *, base: float = BASE_SECONDS,
                      cap: float = MAX_SECONDS) -> float:
    """How long new pods must still wait (0: create now)."""
    if record.failures_after_last_success == 0 or record.last_failure_time is None:
        return 0.0
    delay = min(base * 2 ** (record.failures_after_last_success - 1), cap)
    elapsed = (now - record.last_failure_time).total_seconds()
    return max(delay - elapsed, 0.0)
