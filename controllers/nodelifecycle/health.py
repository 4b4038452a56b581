"""Node health as the node lifecycle controller sees it (tryUpdateNodeHealth), pure.

The controller never trusts the timestamps a kubelet writes: it remembers *when it saw*
a node show life (`probe_time`, on its own clock): a new Ready condition heartbeat
(lastHeartbeatTime changed) or a newer Lease renewTime in kube-node-lease. A node not
seen alive for the grace period (--node-monitor-grace-period; a node that never posted
a Ready condition gets --node-startup-grace-period, counted from its creation) has its
Ready, MemoryPressure, DiskPressure and PIDPressure conditions set to Unknown:
reason NodeStatusUnknown, "Kubelet stopped posting node status.", or for a condition
never posted NodeStatusNeverUpdated, "Kubelet never posted node status.".
NetworkUnavailable is left alone (it belongs to the network plugin).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from controllers.common import objects

Obj = dict[str, Any]
MONITORED_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


@dataclass
class NodeHealth:
    """What the controller remembers about one node between syncs."""

    probe_time: datetime
    ready_transition_time: datetime
    ready: Obj | None  # the Ready condition last seen
    lease_renew: datetime | None


def condition(node: Obj | None, cond_type: str) -> Obj | None:
    for cond in objects.status(node).get("conditions") or []:
        if cond.get("type") == cond_type:
            return cond
    return None


def ready_status(node: Obj | None) -> str:
    """True / False / Unknown; a node without a Ready condition counts as Unknown."""
    cond = condition(node, "Ready")
    return str(cond.get("status")) if cond else "Unknown"


def grace_period(node: Obj, monitor_grace: float, startup_grace: float) -> float:
    return monitor_grace if condition(node, "Ready") is not None else startup_grace


def observe(node: Obj, lease: Obj | None, saved: NodeHealth | None, now: datetime) -> NodeHealth:
    """The node's health record after looking at it (and its Lease) at `now`."""
    current = condition(node, "Ready")
    created = objects.creation_time(node)
    if current is None:
        health = saved or NodeHealth(created, created, None, None)
        health = NodeHealth(health.probe_time, health.ready_transition_time, None, health.lease_renew)
    elif saved is None or saved.ready is None:
        health = NodeHealth(now, now, copy.deepcopy(current), saved.lease_renew if saved else None)
    elif saved.ready.get("lastHeartbeatTime") != current.get("lastHeartbeatTime"):
        changed = saved.ready.get("lastTransitionTime") != current.get("lastTransitionTime")
        health = NodeHealth(now, now if changed else saved.ready_transition_time, copy.deepcopy(current),
                            saved.lease_renew)
    else:
        health = NodeHealth(saved.probe_time, saved.ready_transition_time, copy.deepcopy(current),
                            saved.lease_renew)
    renew = objects.parse_time(objects.spec(lease).get("renewTime") if lease else None)
    if renew is not None and (health.lease_renew is None or health.lease_renew < renew):
        health.lease_renew = renew
        health.probe_time = now
    return health


def expired(health: NodeHealth, node: Obj, now: datetime, monitor_grace: float, startup_grace: float) -> bool:
    grace = grace_period(node, monitor_grace, startup_grace)
    return now > health.probe_time + timedelta(seconds=grace)


def unknown_status(node: Obj, now: datetime) -> Obj:
    """The node's status with every monitored condition Unknown (see the module docstring)."""
    status = copy.deepcopy(objects.status(node))
    conditions = status.setdefault("conditions", [])
    stamp = objects.format_time(now)
    for cond_type in MONITORED_CONDITIONS:
        current = next((c for c in conditions if c.get("type") == cond_type), None)
        if current is None:
            conditions.append({"type": cond_type, "status": "Unknown",
                               "lastHeartbeatTime": objects.metadata(node).get("creationTimestamp"),
                               "lastTransitionTime": stamp, "reason": "NodeStatusNeverUpdated",
                               "message": "Kubelet never posted node status."})
        elif current.get("status") != "Unknown":
            current.update({"status": "Unknown", "reason": "NodeStatusUnknown",
                            "message": "Kubelet stopped posting node status.", "lastTransitionTime": stamp})
    return status
