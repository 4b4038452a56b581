"""`default_object`: what kube-apiserver fills in before it validates and stores an object.

One entry point for every built-in kind. It applies the group's SetDefaults_* functions
(see defaults_core / _pod / _apps / _batch / _other), the v1 conversions' visible
effects, and the create-time parts of the REST strategies and default admission plugins
that every real cluster shows in `kubectl get -o yaml`.

Create versus update: strategy and admission defaults (Namespace finalizers, Job
selector generation, Pod service account / priority / tolerations / status, the
DaemonSet template-generation annotation) apply only to objects without
`metadata.resourceVersion`, i.e. objects being created. The caller should assign
`metadata.uid` (and turn `generateName` into `name`) before calling, because the Job
selector and the Namespace name label are built from them.

Quantities are canonicalized ("1000m" -> "1"); one that does not parse makes the whole
request fail the way decoding fails in Kubernetes: a 400 `Deployment in version "v1"
cannot be handled as a Deployment: quantities must match the regular expression ...`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apiserver.admission import defaults_apps as apps
from apiserver.admission import defaults_batch as batch
from apiserver.admission import defaults_core as core
from apiserver.admission import defaults_other as other
from apiserver.admission.defaults_admission import admit_pod
from apiserver.admission.defaults_pod import default_pod
from apiserver.errors import bad_request
from minikube_py.api.quantity import QuantityError

Defaulter = Callable[[dict[str, Any]], None]


def _pod(pod: dict[str, Any]) -> None:
    default_pod(pod)
    if not (pod.get("metadata") or {}).get("resourceVersion"):
        admit_pod(pod)


def _hpa_v1(hpa: dict[str, Any]) -> None:
    """autoscaling/v1 only defaults minReplicas; the v2 shape differs."""
    spec = hpa.setdefault("spec", {})
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1


DEFAULTERS: dict[tuple[str, str], Defaulter] = {
    ("", "Pod"): _pod,
    ("", "PodTemplate"): core.default_pod_template_object,
    ("", "ReplicationController"): core.default_replication_controller,
    ("", "Service"): core.default_service,
    ("", "Secret"): core.default_secret,
    ("", "Namespace"): core.default_namespace,
    ("", "PersistentVolumeClaim"): core.default_pvc,
    ("", "PersistentVolume"): core.default_pv,
    ("", "Node"): core.default_node,
    ("", "Endpoints"): core.default_endpoints,
    ("", "LimitRange"): core.default_limit_range,
    ("", "ResourceQuota"): core.default_resource_quota,
    ("apps", "Deployment"): apps.default_deployment,
    ("apps", "ReplicaSet"): apps.default_replica_set,
    ("apps", "StatefulSet"): apps.default_stateful_set,
    ("apps", "DaemonSet"): apps.default_daemon_set,
    ("batch", "Job"): batch.default_job,
    ("batch", "CronJob"): batch.default_cron_job,
    ("autoscaling", "HorizontalPodAutoscaler"): other.default_hpa,
    ("networking.k8s.io", "NetworkPolicy"): other.default_network_policy,
    ("networking.k8s.io", "Ingress"): other.default_ingress,
    ("networking.k8s.io", "IngressClass"): other.default_ingress_class,
    ("rbac.authorization.k8s.io", "RoleBinding"): other.default_role_binding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): other.default_role_binding,
    ("storage.k8s.io", "StorageClass"): other.default_storage_class,
    ("discovery.k8s.io", "EndpointSlice"): other.default_endpoint_slice,
    ("policy", "PodDisruptionBudget"): other.default_pdb,
}


def default_object(group: str, version: str, kind: str, obj: dict[str, Any]) -> None:
    """Fill in defaults in place. Kinds without defaults are left alone.

    Raises StatusError(400) when a quantity in the object cannot be parsed.
    """
    defaulter = DEFAULTERS.get((group, kind))
    if defaulter is None or not isinstance(obj, dict):
        return
    if (group, version, kind) == ("autoscaling", "v1", "HorizontalPodAutoscaler"):
        defaulter = _hpa_v1
    try:
        defaulter(obj)
    except QuantityError as err:
        raise bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: {err}') from None
