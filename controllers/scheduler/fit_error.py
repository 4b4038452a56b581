"""The FailedScheduling message, built exactly as Kubernetes 1.32's FitError.Error().

    0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: },
    2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for
    scheduling, 2 No preemption victims found for incoming pod.

How it is assembled (pkg/scheduler/framework/types.go, FitError.Error):
- "0/<all nodes> nodes are available:".
- If a PreFilter plugin rejected the pod, its message follows (" <msg>.") and the
  per-node counts are left out (every node would repeat the same reason).
- Otherwise every reason of every rejected node is counted once per node; nodes never
  filtered (excluded by a PreFilter result) count with the "absent nodes" status. Each
  entry is "<count> <reason>", and the entries are sorted *as strings*, so "10 X" sorts
  before "2 Y". They are joined with ", " and end with ".".
- The PostFilter message, if any, is appended after a space. DefaultPreemption prefixes
  its own with "preemption: " and, when no node can be helped, formats a second FitError
  over all nodes: nodes rejected as UnschedulableAndUnresolvable (taints, affinity,
  node name, ...) count as "Preemption is not helpful for scheduling"; nodes rejected as
  merely Unschedulable (resources, ports, anti-affinity) are dry-run without their
  lower-priority pods and count with the reason that still fails, or "No preemption
  victims found for incoming pod" when there are no lower-priority pods at all.

In 1.32 "Insufficient cpu" is always Unschedulable, even when the pod is bigger than the
whole node, so a too-small node reads "No preemption victims found ...": the variant
"3 Preemption is not helpful for scheduling" for too-small nodes only appears from 1.34,
where NodeResourcesFit returns UnschedulableAndUnresolvable in that case.

The event note is cut at 1024 bytes with " ..." (validation.NoteLengthLimit); the pod's
PodScheduled condition carries the whole message.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controllers.scheduler.framework import Diagnosis, ScheduleResult

NO_NODE_AVAILABLE_MSG = "0/{} nodes are available"
NOTE_LENGTH_LIMIT = 1024


def fit_error_message(num_all_nodes: int, diagnosis: Diagnosis) -> str:
    """FitError.Error(): see the module docstring."""
    message = NO_NODE_AVAILABLE_MSG.format(num_all_nodes) + ":"
    if diagnosis.pre_filter_msg:
        message += f" {diagnosis.pre_filter_msg}."
    else:
        histogram = reason_histogram(num_all_nodes, diagnosis)
        if histogram:
            message += " " + ", ".join(histogram) + "."
    if diagnosis.post_filter_msg:
        message += f" {diagnosis.post_filter_msg}"
    return message


def reason_histogram(num_all_nodes: int, diagnosis: Diagnosis) -> list[str]:
    """The sorted "<count> <reason>" entries of a FitError."""
    counts: Counter[str] = Counter()
    for status in diagnosis.node_to_status.values():
        for reason in status.reasons:
            counts[reason] += 1
    absent = num_all_nodes - len(diagnosis.node_to_status)
    if absent > 0:
        for reason in diagnosis.absent_nodes_status.reasons:
            counts[reason] += absent
    return sorted(f"{count} {reason}" for reason, count in counts.items())


def truncate_message(message: str, limit: int = NOTE_LENGTH_LIMIT) -> str:
    """truncateMessage: at most `limit` bytes, ending in " ..." when cut."""
    data = message.encode()
    if len(data) <= limit:
        return message
    suffix = " ..."
    return data[:limit - len(suffix)].decode(errors="ignore") + suffix


def failure_message(result: ScheduleResult, *, truncate: bool = False) -> str:
    """The message of a failed cycle ('' when it succeeded): the scheduler error, or the
    FitError. `truncate=True` gives the FailedScheduling event's note."""
    if result.scheduled:
        return ""
    if result.error is not None:
        message = result.error.message()
    else:
        message = fit_error_message(result.num_all_nodes, result.diagnosis)
    return truncate_message(message) if truncate else message
