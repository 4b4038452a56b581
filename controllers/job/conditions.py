"""Job conditions, as the Job controller writes them (newCondition, ensureJobConditionStatus).

Types: Suspended, SuccessCriteriaMet, Complete, FailureTarget, Failed. A Job condition
carries lastProbeTime and lastTransitionTime (both the moment it was set). Since 1.31 the
terminal conditions come second: FailureTarget / SuccessCriteriaMet are written first, the
pods are stopped and counted, and only then Failed / Complete (with the same reason and
message).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controllers.common import objects

Obj = dict[str, Any]
SUSPENDED = "Suspended"
SUCCESS_CRITERIA_MET = "SuccessCriteriaMet"
COMPLETE = "Complete"
FAILURE_TARGET = "FailureTarget"
FAILED = "Failed"

COMPLETIONS_REACHED = ("CompletionsReached", "Reached expected number of succeeded pods")
BACKOFF_LIMIT_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")
POD_FAILURE_POLICY = "PodFailurePolicy"


def new_condition(cond_type: str, status: str, reason: str, message: str, now: datetime) -> Obj:
    stamp = objects.format_time(now)
    condition: Obj = {"type": cond_type, "status": status, "lastProbeTime": stamp, "lastTransitionTime": stamp}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def find(status: Obj, cond_type: str) -> Obj | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == cond_type), None)


def is_true(status: Obj, cond_type: str) -> bool:
    condition = find(status, cond_type)
    return condition is not None and condition.get("status") == "True"


def is_finished(job: Obj) -> bool:
    """util.IsJobFinished: a Complete or Failed condition that is True."""
    status = objects.status(job)
    return is_true(status, COMPLETE) or is_true(status, FAILED)


def ensure(status: Obj, cond_type: str, cond_status: str, reason: str, message: str, now: datetime) -> bool:
    """ensureJobConditionStatus, in place; True when the list changed.

    An existing condition is replaced when status, reason or message differ; a missing
    one is added unless it would be False (nothing -> False says nothing).
    """
    conditions = status.setdefault("conditions", [])
    for i, condition in enumerate(conditions):
        if condition.get("type") == cond_type:
            if (condition.get("status"), condition.get("reason", ""), condition.get("message", "")) != \
                    (cond_status, reason, message):
                conditions[i] = new_condition(cond_type, cond_status, reason, message, now)
                return True
            return False
    if cond_status != "False":
        conditions.append(new_condition(cond_type, cond_status, reason, message, now))
        return True
    if not conditions:
        status.pop("conditions")
    return False
