"""The built-in resources served, as Kubernetes 1.32 lists them in discovery.

One row per resource: group, storage version, kind, plural, scope, short names,
categories (`all` makes `kubectl get all` include it), subresources and verbs. Discovery,
routing, OpenAPI and tables are derived from these rows; nothing else in the server
hard-codes a kind's names.
"""

from __future__ import annotations

from apiserver.registry.resource import STANDARD_VERBS, ResourceInfo

_NO_COLLECTION = [v for v in STANDARD_VERBS if v != "deletecollection"]
_CREATE_ONLY = ["create"]


def _r(group: str, version: str, kind: str, plural: str, namespaced: bool = True, *,
       short: tuple[str, ...] = (), cats: tuple[str, ...] = (), sub: tuple[str, ...] = (),
       verbs: list[str] | None = None, versions: tuple[str, ...] = ()) -> ResourceInfo:
    return ResourceInfo(
        group=group, version=version, kind=kind, plural=plural, namespaced=namespaced,
        short_names=list(short), categories=list(cats), subresources=list(sub),
        verbs=list(verbs or STANDARD_VERBS), versions=list(versions),
    )


_POD_SUBRESOURCES = ("attach", "binding", "ephemeralcontainers", "eviction", "exec", "log",
                     "portforward", "proxy", "resize", "status")

BUILTIN: list[ResourceInfo] = [
    # core/v1
    _r("", "v1", "Binding", "bindings", verbs=_CREATE_ONLY),
    _r("", "v1", "ComponentStatus", "componentstatuses", False, short=("cs",), verbs=["get", "list"]),
    _r("", "v1", "ConfigMap", "configmaps", short=("cm",)),
    _r("", "v1", "Endpoints", "endpoints", short=("ep",)),
    _r("", "v1", "Event", "events", short=("ev",)),
    _r("", "v1", "LimitRange", "limitranges", short=("limits",)),
    _r("", "v1", "Namespace", "namespaces", False, short=("ns",), sub=("finalize", "status"),
       verbs=_NO_COLLECTION),
    _r("", "v1", "Node", "nodes", False, short=("no",), sub=("proxy", "status")),
    _r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short=("pvc",), sub=("status",)),
    _r("", "v1", "PersistentVolume", "persistentvolumes", False, short=("pv",), sub=("status",)),
    _r("", "v1", "Pod", "pods", short=("po",), cats=("all",), sub=_POD_SUBRESOURCES),
    _r("", "v1", "PodTemplate", "podtemplates"),
    _r("", "v1", "ReplicationController", "replicationcontrollers", short=("rc",), cats=("all",),
       sub=("scale", "status")),
    _r("", "v1", "ResourceQuota", "resourcequotas", short=("quota",), sub=("status",)),
    _r("", "v1", "Secret", "secrets"),
    _r("", "v1", "ServiceAccount", "serviceaccounts", short=("sa",), sub=("token",)),
    _r("", "v1", "Service", "services", short=("svc",), cats=("all",), sub=("proxy", "status"),
       verbs=_NO_COLLECTION),
    # apps/v1
    _r("apps", "v1", "ControllerRevision", "controllerrevisions"),
    _r("apps", "v1", "DaemonSet", "daemonsets", short=("ds",), cats=("all",), sub=("status",)),
    _r("apps", "v1", "Deployment", "deployments", short=("deploy",), cats=("all",), sub=("scale", "status")),
    _r("apps", "v1", "ReplicaSet", "replicasets", short=("rs",), cats=("all",), sub=("scale", "status")),
    _r("apps", "v1", "StatefulSet", "statefulsets", short=("sts",), cats=("all",), sub=("scale", "status")),
    # batch/v1
    _r("batch", "v1", "CronJob", "cronjobs", short=("cj",), cats=("all",), sub=("status",)),
    _r("batch", "v1", "Job", "jobs", cats=("all",), sub=("status",)),
    # autoscaling: stored as v2, served as v2 (preferred) and v1
    _r("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short=("hpa",),
       cats=("all",), sub=("status",), versions=("v2", "v1")),
    # networking.k8s.io/v1
    _r("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    _r("networking.k8s.io", "v1", "Ingress", "ingresses", short=("ing",), sub=("status",)),
    _r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short=("netpol",)),
    # discovery.k8s.io/v1
    _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    # rbac.authorization.k8s.io/v1
    _r("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _r("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    # authorization / authentication reviews: create-only, never stored
    _r("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", verbs=_CREATE_ONLY),
    _r("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False,
       verbs=_CREATE_ONLY),
    _r("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", False,
       verbs=_CREATE_ONLY),
    _r("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", False, verbs=_CREATE_ONLY),
    _r("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False, verbs=_CREATE_ONLY),
    _r("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False, verbs=_CREATE_ONLY),
    # coordination.k8s.io/v1
    _r("coordination.k8s.io", "v1", "Lease", "leases"),
    # storage.k8s.io/v1
    _r("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, short=("sc",)),
    # events.k8s.io/v1 (the same objects as core/v1 events, another shape)
    ResourceInfo(group="events.k8s.io", version="v1", kind="Event", plural="events", namespaced=True,
                 short_names=["ev"], shares_storage_with="events"),
    # policy/v1
    _r("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short=("pdb",), sub=("status",)),
    # scheduling.k8s.io/v1
    _r("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, short=("pc",)),
    # apiextensions.k8s.io/v1
    _r("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False,
       short=("crd", "crds"), cats=("api-extensions",), sub=("status",)),
]

# Group order in discovery, as kube-apiserver lists its groups (preferred first).
GROUP_ORDER = [
    "", "apiregistration.k8s.io", "apps", "events.k8s.io", "authentication.k8s.io",
    "authorization.k8s.io", "autoscaling", "batch", "certificates.k8s.io", "networking.k8s.io",
    "policy", "rbac.authorization.k8s.io", "storage.k8s.io", "admissionregistration.k8s.io",
    "apiextensions.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "node.k8s.io",
    "discovery.k8s.io", "flowcontrol.apiserver.k8s.io",
]

# Kinds whose objects are computed per request and never stored.
VIRTUAL_KINDS = {
    ("", "Binding"), ("", "ComponentStatus"),
    ("authorization.k8s.io", "LocalSubjectAccessReview"),
    ("authorization.k8s.io", "SelfSubjectAccessReview"),
    ("authorization.k8s.io", "SelfSubjectRulesReview"),
    ("authorization.k8s.io", "SubjectAccessReview"),
    ("authentication.k8s.io", "SelfSubjectReview"),
    ("authentication.k8s.io", "TokenReview"),
}
