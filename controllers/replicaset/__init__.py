"""The ReplicaSet controller's reconcile logic, as pure functions.

`reconcile_replicaset(rs, pods, now=..., expectations=...)` returns the actions that
pkg/controller/replicaset would take in one sync: adopt or release pods, create or delete
pods to match spec.replicas (guarded by expectations), and write status.
"""

from controllers.replicaset.reconcile import reconcile_replicaset

__all__ = ["reconcile_replicaset"]
