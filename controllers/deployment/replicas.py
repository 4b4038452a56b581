"""Replica arithmetic of a Deployment (deployment/util/deployment_util.go).

maxSurge and maxUnavailable are ints or percentages of spec.replicas. A percentage of
surge rounds up and one of unavailability rounds down; if both resolve to 0 (say 1%/1% of
2 replicas), maxUnavailable becomes 1 so the rollout can move at all. For Recreate both
are 0. Missing values get the API server's defaults (25% / 25%, RollingUpdate).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from controllers.common import objects

ROLLING_UPDATE = "RollingUpdate"
RECREATE = "Recreate"
DEFAULT_FENCEPOST = "25%"
MAX_INT32 = 2**31 - 1

Obj = dict[str, Any]


def strategy_type(d: Obj) -> str:
    return (objects.spec(d).get("strategy") or {}).get("type") or ROLLING_UPDATE


def is_rolling_update(d: Obj) -> bool:
    return strategy_type(d) == ROLLING_UPDATE


def value_from_int_or_percent(value: int | str, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent; a string must be a percentage."""
    if isinstance(value, bool):
        raise ValueError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    if not value.endswith("%"):
        raise ValueError(f"invalid value for IntOrString: invalid type: string is not a percentage: {value!r}")
    scaled = int(value[:-1]) * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


def resolve_fenceposts(max_surge: int | str | None, max_unavailable: int | str | None,
                       desired: int) -> tuple[int, int]:
    """ResolveFenceposts: (surge, unavailable) for `desired` replicas."""
    surge = value_from_int_or_percent(0 if max_surge is None else max_surge, desired, True)
    unavailable = value_from_int_or_percent(0 if max_unavailable is None else max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _fenceposts(d: Obj) -> tuple[int, int]:
    rolling = (objects.spec(d).get("strategy") or {}).get("rollingUpdate") or {}
    return resolve_fenceposts(rolling.get("maxSurge", DEFAULT_FENCEPOST),
                              rolling.get("maxUnavailable", DEFAULT_FENCEPOST), objects.spec_replicas(d))


def max_surge(d: Obj) -> int:
    return _fenceposts(d)[0] if is_rolling_update(d) else 0


def max_unavailable(d: Obj) -> int:
    """MaxUnavailable: never more than spec.replicas; 0 for Recreate or 0 replicas."""
    replicas = objects.spec_replicas(d)
    if not is_rolling_update(d) or replicas == 0:
        return 0
    return min(_fenceposts(d)[1], replicas)


def replica_count(replica_sets: Iterable[Obj | None]) -> int:
    """GetReplicaCountForReplicaSets: the sum of spec.replicas."""
    return sum(objects.spec_replicas(rs) for rs in replica_sets if rs is not None)


def status_count(replica_sets: Iterable[Obj | None], field: str) -> int:
    """The sum of status.<field> (replicas, readyReplicas, availableReplicas)."""
    return sum(objects.status_int(rs, field) for rs in replica_sets if rs is not None)


def new_rs_new_replicas(d: Obj, all_rss: Iterable[Obj | None], new_rs: Obj) -> int:
    """NewRSNewReplicas: how big the new ReplicaSet may be right now."""
    desired = objects.spec_replicas(d)
    if not is_rolling_update(d):
        return desired
    current = replica_count(all_rss)
    max_total = desired + max_surge(d)
    new_replicas = objects.spec_replicas(new_rs)
    if current >= max_total:
        return new_replicas
    return new_replicas + min(max_total - current, desired - new_replicas)


def round_to_int(value: float) -> int:
    """k8s.io/utils/integer.RoundToInt32: halves round away from zero."""
    return int(value - 0.5) if value < 0 else int(value + 0.5)


def replica_set_fraction(rs: Obj, d: Obj, max_replicas_annotation: int | None) -> int:
    """getReplicaSetFraction: this ReplicaSet's share of a resize, as a delta."""
    rs_replicas = objects.spec_replicas(rs)
    if objects.spec_replicas(d) == 0:
        return -rs_replicas
    deployment_replicas = objects.spec_replicas(d) + max_surge(d)
    annotated = max_replicas_annotation
    if annotated is None:
        annotated = objects.status_int(d, "replicas")
    if annotated == 0:
        # Kubernetes would divide by zero here (it argues this cannot happen); stay put.
        return 0
    return round_to_int(rs_replicas * deployment_replicas / annotated) - rs_replicas


def proportion(rs: Obj | None, d: Obj, to_add: int, added: int, max_replicas_annotation: int | None) -> int:
    """GetProportion: the delta for `rs`, clamped to what is left to add or remove."""
    if rs is None or objects.spec_replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = replica_set_fraction(rs, d, max_replicas_annotation)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)
