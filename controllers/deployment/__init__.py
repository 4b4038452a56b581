"""The Deployment controller's reconcile logic, as pure functions.

`reconcile_deployment(deployment, replica_sets, pods, now=...)` returns the actions that
pkg/controller/deployment would take in one sync: create, scale, update or delete
ReplicaSets, adopt or release them, write status (with the revision annotation) and record
events. See `reconcile.py` for the state machine and the other modules for its steps.
"""

from controllers.deployment.reconcile import reconcile_deployment

__all__ = ["reconcile_deployment"]
