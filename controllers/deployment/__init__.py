"""The Deployment controller's reconcile logic, as pure functions.

`reconcile_deployment(deployment, replica_sets, pods, now=...)` returns the actions that
pkg/controller/deployment would take in one sync: create, scale, update or delete
ReplicaSets, adopt or release them, write status (with the revision annotation) and record
events. See `reconcile.py` for the state machine and the other modules for its steps.

Runtime wiring (what Kubernetes' event handlers do, for the informer side): enqueue a
Deployment when it changes; when a ReplicaSet is added, updated or deleted, enqueue its
controlling Deployment (for an orphan, every Deployment whose selector matches its
labels); when a pod is deleted, enqueue the Deployment owning its ReplicaSet (Recreate
waits for old pods to be gone). Honour `RequeueAfter` (the progress-deadline check). When
executing `CreateReplicaSet` fails with anything but AlreadyExists, execute
`replica_set_create_failed(...)`'s actions.
"""

from controllers.deployment.reconcile import reconcile_deployment

__all__ = ["reconcile_deployment"]
