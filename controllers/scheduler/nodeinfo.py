"""NodeInfo, PodInfo and Snapshot: the cluster state one scheduling cycle reads.

A `Snapshot` is what kube-scheduler's cache hands each cycle: every node with the pods
assigned to it and their summed requests, plus the few other objects plugins look up
(PVCs, PVs, StorageClasses, namespace labels, and the Services/ReplicaSets/StatefulSets
whose selectors give PodTopologySpread its default spreading). Like the scheduler's pod
informer (`status.phase!=Succeeded,status.phase!=Failed`), finished pods hold nothing.

`PodInfo` parses what plugins ask of a pod again and again (requests, host ports,
affinity terms) once, so a 10,000-pod snapshot is not re-parsed per node per plugin.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from controllers.scheduler.matching import NOTHING, Selector, label_selector
from controllers.scheduler.resources import Resource, pod_request_summary

Obj = Mapping[str, Any]
DEFAULT_BIND_ALL_HOST_IP = "0.0.0.0"
HostPort = tuple[str, str, int]


def meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def object_key(obj: Obj) -> str:
    """namespace/name (or name for cluster-scoped objects), as cache.MetaNamespaceKeyFunc."""
    m = meta(obj)
    return f"{m['namespace']}/{m.get('name', '')}" if m.get("namespace") else m.get("name", "")


def pod_labels(pod: Obj) -> Mapping[str, str]:
    return meta(pod).get("labels") or {}


def pod_namespace(pod: Obj) -> str:
    return meta(pod).get("namespace", "")


def pod_priority(pod: Obj) -> int:
    """corev1helpers.PodPriority: spec.priority, 0 when unset."""
    return int((pod.get("spec") or {}).get("priority") or 0)


@dataclass(frozen=True)
class AffinityTerm:
    """A parsed v1.PodAffinityTerm (weight 0 for required terms)."""

    namespaces: frozenset[str]
    selector: Selector
    topology_key: str
    namespace_selector: Selector
    weight: int = 0

    def matches(self, pod: PodInfo, ns_labels: Mapping[str, str] | None) -> bool:
        """AffinityTerm.Matches. `ns_labels` None means the namespace is unknown, which
        only the match-everything namespace selector accepts."""
        if pod.namespace in self.namespaces or self._namespace_selected(ns_labels):
            return self.selector.matches(pod.labels)
        return False

    def _namespace_selected(self, ns_labels: Mapping[str, str] | None) -> bool:
        if self.namespace_selector.empty():
            return True
        return ns_labels is not None and self.namespace_selector.matches(ns_labels)


def _affinity_term(pod_namespace: str, term: Obj, weight: int = 0) -> AffinityTerm:
    names = term.get("namespaces") or []
    ns_selector_obj = term.get("namespaceSelector")
    namespaces = frozenset(names) if names or ns_selector_obj is not None else frozenset({pod_namespace})
    ns_selector = label_selector(ns_selector_obj) if ns_selector_obj is not None else NOTHING
    return AffinityTerm(namespaces, label_selector(term.get("labelSelector")),
                        term.get("topologyKey", ""), ns_selector, weight)


class PodInfo:
    """A pod plus everything the plugins derive from it."""

    def __init__(self, pod: Obj) -> None:
        m = meta(pod)
        spec = pod.get("spec") or {}
        self.pod = pod
        self.name: str = m.get("name", "")
        self.namespace: str = m.get("namespace", "")
        self.key = f"{self.namespace}/{self.name}"
        self.labels: Mapping[str, str] = m.get("labels") or {}
        self.terminating = m.get("deletionTimestamp") is not None
        self.priority = pod_priority(pod)
        self.resource, self.non_zero_cpu, self.non_zero_memory = pod_request_summary(pod)
        self.host_ports = _host_ports(spec)
        affinity = spec.get("affinity") or {}
        self.required_affinity_terms = self._terms(affinity, "podAffinity", required=True)
        self.required_anti_affinity_terms = self._terms(affinity, "podAntiAffinity", required=True)
        self.preferred_affinity_terms = self._terms(affinity, "podAffinity", required=False)
        self.preferred_anti_affinity_terms = self._terms(affinity, "podAntiAffinity", required=False)
        self.has_affinity = bool(affinity.get("podAffinity") or affinity.get("podAntiAffinity"))

    # What only the pod being scheduled needs, computed on first use (once per cycle:
    # the cycle's PodInfo is shared by every plugin through CycleState.pod_info).
    @cached_property
    def tolerations(self) -> list[Obj]:
        return list((self.pod.get("spec") or {}).get("tolerations") or [])

    @cached_property
    def node_name(self) -> str:
        return (self.pod.get("spec") or {}).get("nodeName") or ""

    @cached_property
    def has_required_node_affinity(self) -> bool:
        """spec.nodeSelector or required node affinity: without either every node matches."""
        spec = self.pod.get("spec") or {}
        required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                    .get("requiredDuringSchedulingIgnoredDuringExecution"))
        return bool(spec.get("nodeSelector")) or required is not None

    @cached_property
    def images(self) -> list[str]:
        """Images of the init and regular containers, as written."""
        spec = self.pod.get("spec") or {}
        return [c.get("image") or "" for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]]

    def _terms(self, affinity: Obj, kind: str, *, required: bool) -> list[AffinityTerm]:
        section = affinity.get(kind) or {}
        if required:
            return [_affinity_term(self.namespace, t)
                    for t in section.get("requiredDuringSchedulingIgnoredDuringExecution") or []]
        return [_affinity_term(self.namespace, w.get("podAffinityTerm") or {}, int(w.get("weight") or 0))
                for w in section.get("preferredDuringSchedulingIgnoredDuringExecution") or []]

    def __repr__(self) -> str:
        return f"PodInfo({self.key})"


def _host_ports(spec: Obj) -> list[HostPort]:
    """(hostIP, protocol, hostPort) of every container port with a host port, sanitized as
    HostPortInfo does: empty IP is 0.0.0.0, empty protocol is TCP."""
    ports: list[HostPort] = []
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            host_port = int(port.get("hostPort") or 0)
            if host_port > 0:
                ports.append((port.get("hostIP") or DEFAULT_BIND_ALL_HOST_IP,
                              port.get("protocol") or "TCP", host_port))
    return ports


def ports_conflict(used: Mapping[str, set[tuple[str, int]]], ip: str, protocol: str, port: int) -> bool:
    """HostPortInfo.CheckConflict: 0.0.0.0 clashes with every IP, others with themselves
    and with 0.0.0.0."""
    pair = (protocol, port)
    if ip == DEFAULT_BIND_ALL_HOST_IP:
        return any(pair in pairs for pairs in used.values())
    return any(pair in used.get(key, ()) for key in (DEFAULT_BIND_ALL_HOST_IP, ip))


@dataclass(frozen=True)
class ImageState:
    """ImageStateSummary: an image's size and on how many nodes of the snapshot it is."""

    size: int
    num_nodes: int


class NodeInfo:
    """framework.NodeInfo: a node, the pods assigned to it, and what they use."""

    def __init__(self, node: Obj, pods: Iterable[PodInfo | Obj] = ()) -> None:
        self.node = node
        self.name: str = meta(node).get("name", "")
        self.labels: Mapping[str, str] = meta(node).get("labels") or {}
        self.taints: list[Obj] = (node.get("spec") or {}).get("taints") or []
        self.unschedulable = bool((node.get("spec") or {}).get("unschedulable"))
        self.allocatable = Resource.from_list((node.get("status") or {}).get("allocatable"))
        self.pods: list[PodInfo] = []
        self.pods_with_affinity: list[PodInfo] = []
        self.pods_with_required_anti_affinity: list[PodInfo] = []
        self.requested = Resource()
        self.non_zero_requested = Resource()
        self.used_ports: dict[str, set[tuple[str, int]]] = {}
        self.image_states: dict[str, ImageState] = {}
        self.match_counts: dict[tuple[Any, str], int] = {}
        for pod in pods:
            self.add_pod(pod)

    def add_pod(self, pod: PodInfo | Obj) -> PodInfo:
        info = pod if isinstance(pod, PodInfo) else PodInfo(pod)
        self.pods.append(info)
        if info.has_affinity:
            self.pods_with_affinity.append(info)
        if info.required_anti_affinity_terms:
            self.pods_with_required_anti_affinity.append(info)
        self._update(info, 1)
        return info

    def remove_pod(self, key: str) -> PodInfo | None:
        """Remove the pod with key namespace/name; None when it is not on this node."""
        for i, info in enumerate(self.pods):
            if info.key == key:
                del self.pods[i]
                self.pods_with_affinity = [p for p in self.pods_with_affinity if p is not info]
                self.pods_with_required_anti_affinity = [
                    p for p in self.pods_with_required_anti_affinity if p is not info]
                self._update(info, -1)
                return info
        return None

    def _update(self, info: PodInfo, sign: int) -> None:
        self.match_counts.clear()
        self.requested.add(info.resource, sign)
        self.non_zero_requested.milli_cpu += sign * info.non_zero_cpu
        self.non_zero_requested.memory += sign * info.non_zero_memory
        for ip, protocol, port in info.host_ports:
            pairs = self.used_ports.setdefault(ip, set())
            if sign > 0:
                pairs.add((protocol, port))
            else:
                pairs.discard((protocol, port))

    def count_matching(self, selector: Selector, namespace: str, key: Any = None) -> int:
        """countPodsMatchSelector over this node's pods: an empty selector counts nothing;
        terminating pods and other namespaces are skipped. Memoized until the node's pods
        change, since every cycle of a Deployment's pods asks the same question of every
        node; `key` names the question cheaply (default: selector and namespace)."""
        if selector.empty():
            return 0
        if key is None:
            key = (selector, namespace)
        count = self.match_counts.get(key)
        if count is None:
            count = self.match_counts[key] = sum(1 for p in self.pods if pod_matches(p, selector, namespace))
        return count

    def clone(self) -> NodeInfo:
        """A copy whose pod list and sums can change without touching this one."""
        copy = NodeInfo.__new__(NodeInfo)
        copy.__dict__.update(self.__dict__)
        copy.pods = list(self.pods)
        copy.pods_with_affinity = list(self.pods_with_affinity)
        copy.pods_with_required_anti_affinity = list(self.pods_with_required_anti_affinity)
        copy.requested = self.requested.clone()
        copy.non_zero_requested = self.non_zero_requested.clone()
        copy.used_ports = {ip: set(pairs) for ip, pairs in self.used_ports.items()}
        copy.match_counts = {}
        return copy

    def __repr__(self) -> str:
        return f"NodeInfo({self.name}, pods={len(self.pods)})"


def pod_matches(pod: PodInfo, selector: Selector, namespace: str) -> bool:
    """Does `pod` count for a spreading selector (countPodsMatchSelector's test)?"""
    return not pod.terminating and pod.namespace == namespace and selector.matches(pod.labels)


def _is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _by_key(objects: Iterable[Obj]) -> dict[str, Obj]:
    return {object_key(o): o for o in objects}


class Snapshot:
    """All nodes with their assigned pods, and the other objects plugins read."""

    def __init__(self, nodes: Iterable[Obj], pods: Iterable[Obj] = (), *,
                 pvcs: Iterable[Obj] = (), pvs: Iterable[Obj] = (), storage_classes: Iterable[Obj] = (),
                 namespaces: Iterable[Obj] = (), services: Iterable[Obj] = (),
                 replica_sets: Iterable[Obj] = (), stateful_sets: Iterable[Obj] = (),
                 replication_controllers: Iterable[Obj] = ()) -> None:
        self.node_infos = [NodeInfo(n) for n in nodes]
        self._by_name = {info.name: info for info in self.node_infos}
        for pod in pods:
            info = self._by_name.get((pod.get("spec") or {}).get("nodeName") or "")
            if info is not None and not _is_terminal(pod):
                info.add_pod(pod)
        self.pvcs = _by_key(pvcs)
        self.pvs = _by_key(pvs)
        self.storage_classes = _by_key(storage_classes)
        self.namespaces = _by_key(namespaces)
        self.services = list(services)
        self.replica_sets = _by_key(replica_sets)
        self.stateful_sets = _by_key(stateful_sets)
        self.replication_controllers = _by_key(replication_controllers)
        self._fill_image_states()

    def _fill_image_states(self) -> None:
        counts: dict[str, int] = {}
        for info in self.node_infos:
            for name in {n for image in _images(info.node) for n in image.get("names") or ()}:
                counts[name] = counts.get(name, 0) + 1
        for info in self.node_infos:
            for image in _images(info.node):
                for name in image.get("names") or ():
                    info.image_states[name] = ImageState(int(image.get("sizeBytes") or 0), counts[name])

    def get(self, name: str) -> NodeInfo | None:
        return self._by_name.get(name)

    def domain_counts(self, key: str, selector: Selector, namespace: str, topology_key: str) -> dict[str, int]:
        """Pods matching `selector` in `namespace`, summed per value of the nodes'
        `topology_key` label ("" for nodes without it), over every node. `key` names
        the selector and namespace (see NodeInfo.count_matching)."""
        counts: dict[str, int] = {}
        for node in self.node_infos:
            value = node.labels.get(topology_key, "")
            counts[value] = counts.get(value, 0) + node.count_matching(selector, namespace, key)
        return counts

    def have_pods_with_affinity(self) -> list[NodeInfo]:
        return [n for n in self.node_infos if n.pods_with_affinity]

    def have_pods_with_required_anti_affinity(self) -> list[NodeInfo]:
        return [n for n in self.node_infos if n.pods_with_required_anti_affinity]

    def namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        """The namespace's labels, or None when the snapshot does not know it."""
        ns = self.namespaces.get(namespace)
        return None if ns is None else (meta(ns).get("labels") or {})

    def add_pod(self, pod: Obj, node_name: str) -> PodInfo | None:
        """Assume `pod` runs on `node_name` (the scheduler cache's AssumePod)."""
        info = self._by_name.get(node_name)
        return None if info is None else info.add_pod(pod)

    def remove_pod(self, key: str, node_name: str) -> PodInfo | None:
        """Forget pod `namespace/name` on `node_name` (deleted, or binding failed)."""
        info = self._by_name.get(node_name)
        return None if info is None else info.remove_pod(key)

    def with_node(self, replacement: NodeInfo) -> Snapshot:
        """A shallow copy in which one node's NodeInfo is replaced (preemption dry runs)."""
        copy = Snapshot.__new__(Snapshot)
        copy.__dict__.update(self.__dict__)
        copy.node_infos = [replacement if n.name == replacement.name else n for n in self.node_infos]
        copy._by_name = {**self._by_name, replacement.name: replacement}
        return copy


def _images(node: Obj) -> list[Obj]:
    return (node.get("status") or {}).get("images") or []
