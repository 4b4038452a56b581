"""`Resource`: which REST collection a call addresses, and the built-in ones.

A Resource is the (group, version, plural) triple that makes a URL, plus whether it is
namespaced and the kind its objects carry. It is plain data so that custom resources
(Istio's VirtualService, our Rollout) are addressed exactly like Pods:
`Resource("networking.istio.io", "v1", "virtualservices", True, "VirtualService")`.

URL shapes (as kube-apiserver serves them):
    /api/v1/namespaces/{ns}/pods/{name}/{subresource}          core group
    /apis/{group}/{version}/namespaces/{ns}/{plural}/{name}     named groups
    /api/v1/nodes/{name}                                        cluster-scoped
and, without a namespace, a namespaced collection lists across all namespaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True, slots=True)
class Resource:
    """A served resource: group ("" for core), version, plural, scope and kind."""

    group: str
    version: str
    plural: str
    namespaced: bool
    kind: str

    @property
    def api_version(self) -> str:
        """What objects of this resource carry in `apiVersion` (`v1`, `apps/v1`)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        """The URL path of the collection, one object, or one of its subresources."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [base]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{quote(namespace, safe='')}")
        parts.append(self.plural)
        if name:
            parts.append(quote(name, safe=""))
            if subresource:
                parts.append(subresource)
        elif subresource:
            raise ValueError(f"subresource {subresource!r} needs an object name")
        return "/".join(parts)

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _core(plural: str, kind: str, namespaced: bool = True) -> Resource:
    return Resource("", "v1", plural, namespaced, kind)


# core/v1
PODS = _core("pods", "Pod")
NODES = _core("nodes", "Node", namespaced=False)
NAMESPACES = _core("namespaces", "Namespace", namespaced=False)
SERVICES = _core("services", "Service")
ENDPOINTS = _core("endpoints", "Endpoints")
CONFIGMAPS = _core("configmaps", "ConfigMap")
SECRETS = _core("secrets", "Secret")
SERVICEACCOUNTS = _core("serviceaccounts", "ServiceAccount")
EVENTS = _core("events", "Event")
PERSISTENTVOLUMES = _core("persistentvolumes", "PersistentVolume", namespaced=False)
PERSISTENTVOLUMECLAIMS = _core("persistentvolumeclaims", "PersistentVolumeClaim")
REPLICATIONCONTROLLERS = _core("replicationcontrollers", "ReplicationController")
RESOURCEQUOTAS = _core("resourcequotas", "ResourceQuota")
LIMITRANGES = _core("limitranges", "LimitRange")
PODTEMPLATES = _core("podtemplates", "PodTemplate")
# apps/v1
DEPLOYMENTS = Resource("apps", "v1", "deployments", True, "Deployment")
REPLICASETS = Resource("apps", "v1", "replicasets", True, "ReplicaSet")
STATEFULSETS = Resource("apps", "v1", "statefulsets", True, "StatefulSet")
DAEMONSETS = Resource("apps", "v1", "daemonsets", True, "DaemonSet")
CONTROLLERREVISIONS = Resource("apps", "v1", "controllerrevisions", True, "ControllerRevision")
# batch/v1
JOBS = Resource("batch", "v1", "jobs", True, "Job")
CRONJOBS = Resource("batch", "v1", "cronjobs", True, "CronJob")
# others
LEASES = Resource("coordination.k8s.io", "v1", "leases", True, "Lease")
ENDPOINTSLICES = Resource("discovery.k8s.io", "v1", "endpointslices", True, "EndpointSlice")
HORIZONTALPODAUTOSCALERS = Resource("autoscaling", "v2", "horizontalpodautoscalers", True, "HorizontalPodAutoscaler")
PODDISRUPTIONBUDGETS = Resource("policy", "v1", "poddisruptionbudgets", True, "PodDisruptionBudget")
STORAGECLASSES = Resource("storage.k8s.io", "v1", "storageclasses", False, "StorageClass")
INGRESSES = Resource("networking.k8s.io", "v1", "ingresses", True, "Ingress")
NETWORKPOLICIES = Resource("networking.k8s.io", "v1", "networkpolicies", True, "NetworkPolicy")
PRIORITYCLASSES = Resource("scheduling.k8s.io", "v1", "priorityclasses", False, "PriorityClass")
CUSTOMRESOURCEDEFINITIONS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", False,
                                     "CustomResourceDefinition")
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles", True, "Role")
ROLEBINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", True, "RoleBinding")
CLUSTERROLES = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", False, "ClusterRole")
CLUSTERROLEBINDINGS = Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", False, "ClusterRoleBinding")

BUILTIN: dict[tuple[str, str], Resource] = {
    (r.group, r.kind): r for r in (
        PODS, NODES, NAMESPACES, SERVICES, ENDPOINTS, CONFIGMAPS, SECRETS, SERVICEACCOUNTS, EVENTS,
        PERSISTENTVOLUMES, PERSISTENTVOLUMECLAIMS, REPLICATIONCONTROLLERS, RESOURCEQUOTAS, LIMITRANGES,
        PODTEMPLATES, DEPLOYMENTS, REPLICASETS, STATEFULSETS, DAEMONSETS, CONTROLLERREVISIONS, JOBS, CRONJOBS,
        LEASES, ENDPOINTSLICES, HORIZONTALPODAUTOSCALERS, PODDISRUPTIONBUDGETS, STORAGECLASSES, INGRESSES,
        NETWORKPOLICIES, PRIORITYCLASSES, CUSTOMRESOURCEDEFINITIONS, ROLES, ROLEBINDINGS, CLUSTERROLES,
        CLUSTERROLEBINDINGS,
    )
}


def for_kind(api_version: str, kind: str) -> Resource:
    """The built-in Resource for an object's apiVersion and kind (KeyError if unknown)."""
    group = api_version.rpartition("/")[0]
    return BUILTIN[(group, kind)]
