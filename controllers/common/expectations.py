"""Expectations: what a controller is waiting to see before it acts on a key again.

Informer caches lag behind the API. Right after a ReplicaSet sync creates 3 pods, the
next sync may still see 0 pods and would create 3 more. Kubernetes prevents that with
ControllerExpectations (pkg/controller/controller_utils.go): before creating N pods the
controller records "expect N adds"; each pod creation the informer reports lowers the
count; until it reaches 0 (or 5 minutes pass: the TTL, in case a watch event was lost) the
controller still syncs status but does not create or delete pods. Deletions are tracked
by pod key (UIDTrackingControllerExpectations), so a pod seen twice (first with a
deletionTimestamp, then gone) is counted once.

Here the record is an immutable value (`ControlleeExpectations`) that the reconcile
function reads, and `SetExpectations` is an action it returns; the runtime keeps the
records in an `ExpectationsStore` and feeds it informer events:
  - pod added (with a controllerRef to the ReplicaSet): `creation_observed(rs_key)`;
    a pod added already being deleted counts as a deletion instead;
  - pod updated to have a deletionTimestamp, or pod deleted: `deletion_observed(rs_key,
    pod_key)` for its controller;
  - a create the runtime skipped or that failed: `creation_observed(rs_key)` too (the
    informer will never report it); a delete that failed: `deletion_observed`;
  - ReplicaSet deleted: `forget(rs_key)`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from controllers.common.actions import SetExpectations

EXPECTATIONS_TIMEOUT = timedelta(minutes=5)


@dataclass(frozen=True)
class ControlleeExpectations:
    """Pending creations (`add`) and deletions (pod keys) since `timestamp`."""

    timestamp: datetime
    add: int = 0
    deletes: frozenset[str] = frozenset()

    def fulfilled(self) -> bool:
        return self.add <= 0 and not self.deletes

    def expired(self, now: datetime) -> bool:
        return now - self.timestamp > EXPECTATIONS_TIMEOUT


def satisfied(expectations: ControlleeExpectations | None, now: datetime) -> bool:
    """SatisfiedExpectations: no record, fulfilled, or expired means the controller may act."""
    return expectations is None or expectations.fulfilled() or expectations.expired(now)


class ExpectationsStore:
    """The runtime's record of expectations per controller key (e.g. `ns/rs-name`)."""

    def __init__(self) -> None:
        self._records: dict[str, ControlleeExpectations] = {}

    def get(self, key: str) -> ControlleeExpectations | None:
        return self._records.get(key)

    def apply(self, key: str, action: SetExpectations, now: datetime) -> None:
        """Record a reconcile's SetExpectations (replacing any earlier record)."""
        self._records[key] = ControlleeExpectations(now, action.add, frozenset(action.deletes))

    def creation_observed(self, key: str) -> None:
        record = self._records.get(key)
        if record is not None:
            self._records[key] = replace(record, add=record.add - 1)

    def deletion_observed(self, key: str, pod_key: str) -> None:
        record = self._records.get(key)
        if record is not None and pod_key in record.deletes:
            self._records[key] = replace(record, deletes=record.deletes - {pod_key})

    def forget(self, key: str) -> None:
        self._records.pop(key, None)
