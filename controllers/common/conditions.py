"""Status conditions as lists of dicts (Deployment and ReplicaSet conditions alike).

Kubernetes' SetDeploymentCondition / SetCondition: setting a condition whose status and
reason are unchanged is a no-op; if only the reason changes, lastTransitionTime is kept;
the new condition replaces the old one at the *end* of the list (which is why `kubectl
describe` lists Available before Progressing once a rollout has progressed).
"""

from __future__ import annotations

from typing import Any

Condition = dict[str, Any]


def get_condition(status: dict[str, Any], cond_type: str) -> Condition | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == cond_type:
            return condition
    return None


def set_condition(status: dict[str, Any], condition: Condition, *, keep_transition_time: bool = True) -> None:
    """Add or replace `condition` in `status["conditions"]`, in place, with Kubernetes' rules.

    `keep_transition_time=False` is the ReplicaSet flavour, which never carries it over.
    """
    current = get_condition(status, condition["type"])
    if current is not None and current.get("status") == condition["status"] \
            and current.get("reason") == condition.get("reason"):
        return
    if keep_transition_time and current is not None and current.get("status") == condition["status"] \
            and "lastTransitionTime" in current:
        condition = {**condition, "lastTransitionTime": current["lastTransitionTime"]}
    remove_condition(status, condition["type"])
    status.setdefault("conditions", []).append(condition)


def remove_condition(status: dict[str, Any], cond_type: str) -> None:
    kept = [c for c in status.get("conditions") or [] if c.get("type") != cond_type]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)
