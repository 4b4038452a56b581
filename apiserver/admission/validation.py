"""`validate_object`: the validation kube-apiserver runs before storing a built-in object.

One entry point for every built-in kind, dispatching to the group modules
(validation_core, _pod, _service, _storage, _apps, _batch, _networking, _autoscaling,
_rbac, _cluster). It returns a list of FieldErrors worded like Kubernetes'; the caller
turns a non-empty list into a 422 with `errors.invalid_object(kind, group, name, errs)`.

Like the generic registry, an update is checked in two passes: the common metadata rules
every object obeys (names usable as URL path segments, immutable name/uid/...), then
the kind's own update rules. Kinds without their own rules (custom resources, kinds not
covered here) get only the common metadata checks. Objects should already be defaulted
(`default_object`); whether metadata.namespace must be set or must be empty depends on
whether the kind is namespaced, which the caller checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apiserver.admission import validation_apps as apps
from apiserver.admission import validation_autoscaling as autoscaling
from apiserver.admission import validation_batch as batch
from apiserver.admission import validation_cluster as cluster
from apiserver.admission import validation_core as core
from apiserver.admission import validation_networking as networking
from apiserver.admission import validation_pod as pod
from apiserver.admission import validation_rbac as rbac
from apiserver.admission import validation_service as service
from apiserver.admission import validation_storage as storage
from apiserver.admission.validation_meta import validate_object_meta, validate_object_meta_update
from apiserver.admission.validation_names import name_is_path_segment
from apiserver.admission.validation_util import dedupe
from apiserver.errors import FieldError

Create = Callable[[dict[str, Any]], list[FieldError]]
Update = Callable[[dict[str, Any], dict[str, Any]], list[FieldError]]


def _meta_update_then(create: Create) -> Update:
    """Update rules for kinds whose update check is `ObjectMetaUpdate + full validation`."""
    def update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
        return validate_object_meta_update(new.get("metadata"), old.get("metadata")) + create(new)
    return update


VALIDATORS: dict[tuple[str, str], tuple[Create, Update]] = {
    ("", "Pod"): (pod.validate_pod, pod.validate_pod_update),
    ("", "Service"): (service.validate_service, service.validate_service_update),
    ("", "Endpoints"): (service.validate_endpoints, service.validate_endpoints_update),
    ("", "ConfigMap"): (core.validate_config_map, core.validate_config_map_update),
    ("", "Secret"): (core.validate_secret, core.validate_secret_update),
    ("", "Namespace"): (core.validate_namespace, core.validate_namespace_update),
    ("", "Node"): (core.validate_node, core.validate_node_update),
    ("", "ServiceAccount"): (core.validate_service_account, _meta_update_then(core.validate_service_account)),
    ("", "LimitRange"): (core.validate_limit_range, _meta_update_then(core.validate_limit_range)),
    ("", "ResourceQuota"): (core.validate_resource_quota, core.validate_resource_quota_update),
    ("", "Event"): (core.validate_core_event, lambda new, old: core.validate_core_event(new)),
    ("", "PodTemplate"): (core.validate_pod_template, _meta_update_then(core.validate_pod_template)),
    ("", "ReplicationController"): (core.validate_replication_controller,
                                    _meta_update_then(core.validate_replication_controller)),
    ("", "PersistentVolumeClaim"): (storage.validate_pvc, storage.validate_pvc_update),
    ("", "PersistentVolume"): (storage.validate_pv, storage.validate_pv_update),
    ("storage.k8s.io", "StorageClass"): (storage.validate_storage_class, storage.validate_storage_class_update),
    ("apps", "Deployment"): (apps.validate_deployment, apps.validate_deployment_update),
    ("apps", "ReplicaSet"): (apps.validate_replica_set, apps.validate_replica_set_update),
    ("apps", "StatefulSet"): (apps.validate_stateful_set, apps.validate_stateful_set_update),
    ("apps", "DaemonSet"): (apps.validate_daemon_set, apps.validate_daemon_set_update),
    ("apps", "ControllerRevision"): (apps.validate_controller_revision, apps.validate_controller_revision_update),
    ("batch", "Job"): (batch.validate_job, batch.validate_job_update),
    ("batch", "CronJob"): (batch.validate_cron_job, batch.validate_cron_job_update),
    ("autoscaling", "HorizontalPodAutoscaler"): (autoscaling.validate_hpa, autoscaling.validate_hpa_update),
    ("networking.k8s.io", "Ingress"): (networking.validate_ingress, networking.validate_ingress_update),
    ("networking.k8s.io", "IngressClass"): (networking.validate_ingress_class, networking.validate_ingress_class_update),
    ("networking.k8s.io", "NetworkPolicy"): (networking.validate_network_policy,
                                             networking.validate_network_policy_update),
    ("rbac.authorization.k8s.io", "Role"): (rbac.validate_role, rbac.validate_role_update),
    ("rbac.authorization.k8s.io", "ClusterRole"): (rbac.validate_cluster_role, rbac.validate_cluster_role_update),
    ("rbac.authorization.k8s.io", "RoleBinding"): (rbac.validate_role_binding, rbac.validate_role_binding_update),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (rbac.validate_cluster_role_binding,
                                                          rbac.validate_cluster_role_binding_update),
    ("policy", "PodDisruptionBudget"): (cluster.validate_pdb, cluster.validate_pdb_update),
    ("discovery.k8s.io", "EndpointSlice"): (cluster.validate_endpoint_slice, cluster.validate_endpoint_slice_update),
    ("coordination.k8s.io", "Lease"): (cluster.validate_lease, cluster.validate_lease_update),
    ("events.k8s.io", "Event"): (cluster.validate_events_event, lambda new, old: cluster.validate_events_event(new)),
}


def _generic_meta(obj: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta(obj.get("metadata"), name_is_path_segment, core=False)


def validate_object(group: str, kind: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    """Validate `obj` for create (old is None) or for an update from `old`."""
    if not isinstance(obj, dict):
        return []
    create, update = VALIDATORS.get((group, kind), (_generic_meta, None))
    if old is None:
        return dedupe(create(obj))
    errors = _generic_meta(obj) + validate_object_meta_update(obj.get("metadata"), old.get("metadata"), core=False)
    if update is not None:
        errors += update(obj, old)
    return dedupe(errors)
