"""spec.podFailurePolicy (matchPodFailurePolicy) and the OnFailure restart limit.

Rules are tried in order on a pod in phase Failed; the first that matches decides:
  FailJob -> the Job fails (reason PodFailurePolicy) with a message naming the rule;
  Ignore  -> the failure is not counted against backoffLimit;
  Count   -> counted as usual (also what happens when no rule matches);
  FailIndex -> counted (backoffLimitPerIndex, which this controller does not implement).
onExitCodes looks at terminated containers with a non-zero exit code (optionally only the
named one); onPodConditions at the pod's conditions (status defaults to True).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controllers.common import objects

Obj = dict[str, Any]


@dataclass(frozen=True)
class PolicyMatch:
    """The outcome for one failed pod: the FailJob message (if any), counted, action."""

    fail_message: str | None
    count_failed: bool
    action: str | None


def match_pod_failure_policy(policy: Obj | None, pod: Obj) -> PolicyMatch:
    if not policy or objects.status(pod).get("phase") != "Failed":
        return PolicyMatch(None, True, None)
    for index, rule in enumerate(policy.get("rules") or []):
        message = _rule_matches(rule, pod, index)
        if message is None:
            continue
        action = str(rule.get("action") or "")
        if action == "FailJob":
            return PolicyMatch(message, True, action)
        if action == "Ignore":
            return PolicyMatch(None, False, action)
        return PolicyMatch(None, True, action)
    return PolicyMatch(None, True, None)


def _rule_matches(rule: Obj, pod: Obj, index: int) -> str | None:
    """The FailJob message shape if `rule` matches `pod`, else None."""
    action = rule.get("action")
    pod_ref = f"{objects.namespace(pod)}/{objects.name(pod)}"
    on_codes = rule.get("onExitCodes")
    if on_codes:
        container = _matching_container(on_codes, pod)
        if container is not None:
            name, code = container
            return (f"Container {name} for pod {pod_ref} failed with exit code {code} "
                    f"matching {action} rule at index {index}")
        return None
    for pattern in rule.get("onPodConditions") or []:
        wanted = pattern.get("status") or "True"
        for condition in objects.status(pod).get("conditions") or []:
            if condition.get("type") == pattern.get("type") and condition.get("status") == wanted:
                return f"Pod {pod_ref} has condition {pattern.get('type')} matching {action} rule at index {index}"
    return None


def _matching_container(requirement: Obj, pod: Obj) -> tuple[str, int] | None:
    status = objects.status(pod)
    values = {int(v) for v in requirement.get("values") or []}
    wanted_name = requirement.get("containerName")
    operator = requirement.get("operator")
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        terminated = (cs.get("state") or {}).get("terminated")
        if not terminated or int(terminated.get("exitCode") or 0) == 0:
            continue
        if wanted_name and cs.get("name") != wanted_name:
            continue
        code = int(terminated["exitCode"])
        if (operator == "In" and code in values) or (operator == "NotIn" and code not in values):
            return str(cs.get("name")), code
    return None


def fail_job_message(job: Obj, pods: list[Obj], is_failed: Any) -> str | None:
    """getFailJobMessage: the first failed pod matching a FailJob rule."""
    policy = objects.spec(job).get("podFailurePolicy")
    if not policy:
        return None
    for pod in pods:
        if is_failed(pod, job):
            match = match_pod_failure_policy(policy, pod)
            if match.fail_message is not None:
                return match.fail_message
    return None


def past_backoff_limit_on_failure(job: Obj, pods: list[Obj]) -> bool:
    """restartPolicy OnFailure: container restarts of running/pending pods reach backoffLimit."""
    spec = objects.spec(job)
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    restarts = 0
    for pod in pods:
        status = objects.status(pod)
        if status.get("phase") in ("Running", "Pending"):
            for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
                restarts += int(cs.get("restartCount") or 0)
    limit = int(spec.get("backoffLimit") or 0)
    return restarts > 0 if limit == 0 else restarts >= limit
