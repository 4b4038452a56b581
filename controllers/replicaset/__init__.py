"""The ReplicaSet controller's reconcile logic, as pure functions.

`reconcile_replicaset(rs, pods, now=..., expectations=...)` returns the actions that
pkg/controller/replicaset would take in one sync: adopt or release pods, create or delete
pods to match spec.replicas (guarded by expectations), and write status.

Runtime wiring: enqueue a ReplicaSet when it changes and when a pod it controls is added,
updated or deleted (an orphan pod: every ReplicaSet whose selector matches it); keep an
`ExpectationsStore` fed as `controllers/common/expectations.py` describes and pass the
ReplicaSet's record in; execute `SetExpectations` before the creates/deletes that follow
it; after a failed create or delete write `status.with_replica_failure(...)`.
"""

from controllers.replicaset.reconcile import reconcile_replicaset

__all__ = ["reconcile_replicaset"]
