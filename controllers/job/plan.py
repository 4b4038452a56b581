"""The data one Job sync works on (`JobCtx`) and what it decides (`SyncPlan`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controllers.common.actions import Event
from controllers.job.backoff import BackoffRecord

Obj = dict[str, Any]


@dataclass
class SyncPlan:
    """What one sync decided; `controller.py` carries it out in this order:
    delete/create pods, flush `status` (if `needs_flush`), remove finalizers, then settle
    counters and the terminal condition (`tracking.settle`)."""

    status: Obj
    needs_flush: bool = False
    delete_active: list[Obj] = field(default_factory=list)  # finished Job: finalizers kept
    delete_excess: list[Obj] = field(default_factory=list)  # suspend/too many: finalizer removed first
    create: list[tuple[Obj, str]] = field(default_factory=list)  # (pod template, generateName)
    remove_finalizers: list[Obj] = field(default_factory=list)
    uids_with_finalizer: set[str] = field(default_factory=set)
    finished_condition: Obj | None = None  # the Complete/Failed condition to add once possible
    terminating: int = 0
    reached_max_uncounted: bool = False
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None
    backoff: BackoffRecord = field(default_factory=BackoffRecord)
    policy_failures: int = 0


@dataclass
class JobCtx:
    """What one sync knows and derives (syncJobCtx): the Job (with its working status),
    its pods, the clock reading, finalizer removals under way, and the counts."""

    job: Obj
    pods: list[Obj]
    now: datetime
    expected_rm: set[str]
    active_pods: list[Obj] = field(default_factory=list)
    succeeded: int = 0
    failed: int = 0
    ready: int = 0
    terminating: int = 0
    prev_indexes: set[int] = field(default_factory=set)
    succeeded_indexes: set[int] = field(default_factory=set)
    failed_indexes: set[int] | None = None  # backoffLimitPerIndex only
    delayed: dict[int, Obj] = field(default_factory=dict)  # index -> failed pod awaiting its replacement
