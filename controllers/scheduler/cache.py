"""The scheduler cache: one long-lived Snapshot kept current from informers.

kube-scheduler does not list the cluster per pod. Its cache (internal/cache/cache.go)
holds every node with the pods assigned to it, fed by informers, and each cycle reads
a snapshot of it. Here the cycle reads the cache's `LiveSnapshot` itself: the
framework runs synchronously and informer handlers run only between cycles (one event
loop, no threads), so no copy is needed and a cycle costs nothing per pod in the
cluster.

What goes in, and how (mirroring cache.go and eventhandlers.go):
- Nodes. A node update that changes nothing the scheduler reads (heartbeats, status
  timestamps) is ignored; one that changes images only refreshes ImageLocality's data.
- Assigned pods (spec.nodeName set), on their node. Finished pods (Succeeded/Failed)
  hold nothing: kube-scheduler's informer selects them away, so here they count as
  deleted. A pod whose node is not known yet is remembered and appears on the node
  when it arrives (the cache's "ghost" NodeInfo).
- Assumed pods: when the loop picks a node, the pod is assumed there at once so the
  next cycle sees its requests while the binding is still in flight. The informer
  seeing the binding confirms it (on whatever node the API says); a failed binding
  forgets it. Assumed pods never expire on a timer (the default since Kubernetes 1.2x,
  durationToExpireAssumedPod = 0).
- PVCs, PVs, StorageClasses, Namespaces (VolumeBinding, InterPodAffinity's namespace
  selectors) and Services, ReplicaSets, StatefulSets, ReplicationControllers (the
  default spreading of PodTopologySpread).
Each change is also reported as a `ClusterEvent` (Node/Add, Pod/Delete, ...) to a
callback, which the scheduling loop uses to move unschedulable pods back to the queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from controllers.scheduler.framework import ClusterEvent
from controllers.scheduler.matching import Selector
from controllers.scheduler.nodeinfo import NodeInfo, PodInfo, Snapshot, object_key, pod_matches
from controllers.scheduler.volumes import PodVolumes
from minikube_py.client import (
    NAMESPACES,
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODS,
    REPLICASETS,
    SERVICES,
    STATEFULSETS,
    STORAGECLASSES,
    DeletedFinalStateUnknown,
    Resource,
    SharedInformerFactory,
)
from minikube_py.client.resources import REPLICATIONCONTROLLERS

log = logging.getLogger("controllers.scheduler.cache")

Obj = Mapping[str, Any]
OnClusterEvent = Callable[[ClusterEvent], None]

# The other objects plugins read: the resource, and the Snapshot attribute holding them.
OBJECT_TABLES: tuple[tuple[Resource, str], ...] = (
    (PERSISTENTVOLUMECLAIMS, "pvcs"),
    (PERSISTENTVOLUMES, "pvs"),
    (STORAGECLASSES, "storage_classes"),
    (NAMESPACES, "namespaces"),
    (SERVICES, "services"),
    (REPLICASETS, "replica_sets"),
    (STATEFULSETS, "stateful_sets"),
    (REPLICATIONCONTROLLERS, "replication_controllers"),
)


def node_name_of(pod: Obj) -> str:
    return (pod.get("spec") or {}).get("nodeName") or ""


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def unwrap(obj: Obj | DeletedFinalStateUnknown) -> Obj:
    """The object of a delete notification (the last known state for a missed delete)."""
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


def pod_scheduling_changed(old: Obj, new: Obj) -> bool:
    """Did an assigned pod change in anything plugins read (labels, spec, being deleted)?
    Status-only updates do not (PodSchedulingPropertiesChange finds no event in them)."""
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    return (old_meta.get("labels") != new_meta.get("labels") or old.get("spec") != new.get("spec")
            or old_meta.get("deletionTimestamp") != new_meta.get("deletionTimestamp"))


def _rv(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("resourceVersion") or ""


def _node_view(node: Obj, *, images: bool) -> tuple[Any, ...]:
    """What the scheduler reads of a node (nodeSchedulingPropertiesHasChanged): labels,
    annotations, unschedulable, taints, allocatable, condition statuses; plus images."""
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    conditions = [(c.get("type"), c.get("status")) for c in status.get("conditions") or []]
    view = (meta.get("labels"), meta.get("annotations"), spec.get("unschedulable"), spec.get("taints"),
            status.get("allocatable"), conditions)
    return (*view, status.get("images")) if images else view


@dataclass
class DomainCounts:
    """A remembered answer of Snapshot.domain_counts, kept current pod by pod."""

    selector: Selector
    namespace: str
    topology_key: str
    counts: dict[str, int]


MAX_DOMAIN_COUNTS = 16


class LiveSnapshot(Snapshot):
    """A Snapshot changed in place as the cluster changes (nodes come and go; the object
    tables are the Snapshot's own dicts, updated directly).

    It remembers the last few `domain_counts` answers and updates them as pods are
    placed and removed (PodTopologySpread asks the same question of all nodes for every
    replica of a workload: summing it over 500 nodes per cycle was a third of a cycle).
    A node change forgets them all."""

    def __init__(self) -> None:
        super().__init__(())
        self._domain_counts: dict[tuple[str, str], DomainCounts] = {}

    def domain_counts(self, key: str, selector: Selector, namespace: str, topology_key: str) -> dict[str, int]:
        memo = self._domain_counts.get((key, topology_key))
        if memo is None:
            if len(self._domain_counts) >= MAX_DOMAIN_COUNTS:
                self._domain_counts.clear()
            counts = super().domain_counts(key, selector, namespace, topology_key)
            memo = self._domain_counts[(key, topology_key)] = DomainCounts(selector, namespace, topology_key, counts)
        return memo.counts

    def pod_changed(self, node: NodeInfo, pod: PodInfo, sign: int) -> None:
        """`pod` was added to (sign 1) or removed from (-1) `node`."""
        for memo in self._domain_counts.values():
            if not memo.selector.empty() and pod_matches(pod, memo.selector, memo.namespace):
                value = node.labels.get(memo.topology_key, "")
                memo.counts[value] = memo.counts.get(value, 0) + sign

    def put_node(self, info: NodeInfo) -> None:
        """Add a node, or replace the NodeInfo of a known one in its place."""
        self._domain_counts.clear()
        old = self._by_name.get(info.name)
        if old is None:
            self.node_infos.append(info)
        else:
            self.node_infos[self.node_infos.index(old)] = info
        self._by_name[info.name] = info

    def drop_node(self, name: str) -> NodeInfo | None:
        info = self._by_name.pop(name, None)
        if info is not None:
            self.node_infos.remove(info)
            self._domain_counts.clear()
        return info

    def refresh_images(self) -> None:
        """Recount on how many nodes each image is (ImageLocality's spread factor)."""
        for info in self.node_infos:
            info.image_states = {}
        self._fill_image_states()


@dataclass
class CachedPod:
    """A pod the cache counts on a node."""

    pod: Obj
    node: str
    info: PodInfo
    assumed: bool = False
    binding_finished: bool = False


class SchedulerCache:
    """Nodes, assigned and assumed pods, and the objects plugins read (module docstring)."""

    def __init__(self) -> None:
        self._snapshot = LiveSnapshot()
        self._nodes: dict[str, Obj] = {}
        self._pods: dict[str, CachedPod] = {}
        self._pods_by_node: dict[str, dict[str, CachedPod]] = {}
        self._services: dict[str, Obj] = {}
        self._images_dirty = False
        self._services_dirty = False

    # -- reading --------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The cluster as the next cycle should see it (valid until the next await)."""
        if self._images_dirty:
            self._snapshot.refresh_images()
            self._images_dirty = False
        if self._services_dirty:
            self._snapshot.services = list(self._services.values())
            self._services_dirty = False
        return self._snapshot

    def is_assumed(self, key: str) -> bool:
        cached = self._pods.get(key)
        return cached is not None and cached.assumed

    def node_of(self, key: str) -> str | None:
        cached = self._pods.get(key)
        return None if cached is None else cached.node

    def stats(self) -> dict[str, int]:
        """Counts, for logs and tests."""
        return {"nodes": len(self._nodes), "pods": len(self._pods),
                "assumed": sum(1 for p in self._pods.values() if p.assumed)}

    # -- nodes -----------------------------------------------------------------------------
    def add_node(self, node: Obj) -> None:
        """Add or replace a node; its pods (known before it, or already on it) come along."""
        name = (node.get("metadata") or {}).get("name", "")
        self._nodes[name] = node
        pods = [cached.info for cached in self._pods_by_node.get(name, {}).values()]
        self._snapshot.put_node(NodeInfo(node, pods))
        self._images_dirty = True

    def update_node(self, old: Obj | None, new: Obj) -> bool:
        """Apply a node update; True when it may change a scheduling decision."""
        name = (new.get("metadata") or {}).get("name", "")
        known = self._nodes.get(name)
        if known is not None and _node_view(known, images=True) == _node_view(new, images=True):
            self._nodes[name] = new
            return False
        relevant = known is None or _node_view(known, images=False) != _node_view(new, images=False)
        self.add_node(new)
        return relevant

    def remove_node(self, name: str) -> None:
        """Forget a node. Its pods stay known until they are deleted too (a pod on a node
        that comes back is counted again)."""
        if self._nodes.pop(name, None) is not None:
            self._snapshot.drop_node(name)
            self._images_dirty = True

    # -- pods --------------------------------------------------------------------------------
    def _place(self, key: str, pod: Obj, node: str, *, assumed: bool) -> CachedPod:
        cached = CachedPod(pod, node, PodInfo(pod), assumed=assumed)
        self._pods[key] = cached
        self._pods_by_node.setdefault(node, {})[key] = cached
        info = self._snapshot.get(node)
        if info is not None:
            info.add_pod(cached.info)
            self._snapshot.pod_changed(info, cached.info, 1)
        return cached

    def _unplace(self, key: str) -> CachedPod | None:
        cached = self._pods.pop(key, None)
        if cached is None:
            return None
        on_node = self._pods_by_node.get(cached.node, {})
        on_node.pop(key, None)
        if not on_node:
            self._pods_by_node.pop(cached.node, None)
        info = self._snapshot.get(cached.node)
        if info is not None and info.remove_pod(key) is not None:
            self._snapshot.pod_changed(info, cached.info, -1)
        return cached

    def assume_pod(self, pod: Obj, node: str) -> None:
        """AssumePod: count `pod` on `node` before the binding is confirmed."""
        key = object_key(pod)
        if key in self._pods:
            raise ValueError(f"pod {key} is already in the cache, cannot be assumed")
        assumed = {**pod, "spec": {**(pod.get("spec") or {}), "nodeName": node}}
        self._place(key, assumed, node, assumed=True)

    def finish_binding(self, key: str) -> None:
        """FinishBinding: the bind call returned; still assumed until the informer sees it."""
        cached = self._pods.get(key)
        if cached is not None and cached.assumed:
            cached.binding_finished = True

    def forget_pod(self, key: str) -> bool:
        """ForgetPod: the binding failed; give the assumed resources back."""
        if not self.is_assumed(key):
            return False
        self._unplace(key)
        return True

    def add_pod(self, pod: Obj) -> None:
        """An assigned pod seen by the informer: confirms an assumed pod (moving it if the
        API put it on another node), or adds/replaces it."""
        key = object_key(pod)
        cached = self._unplace(key)
        if cached is not None and cached.assumed and cached.node != node_name_of(pod):
            log.warning("pod %s was assumed on %s but is bound to %s", key, cached.node, node_name_of(pod))
        self._place(key, pod, node_name_of(pod), assumed=False)

    def remove_pod(self, key: str) -> bool:
        """An assigned pod was deleted (or finished); True when the cache held it."""
        return self._unplace(key) is not None

    # -- other objects -------------------------------------------------------------------------
    def get_object(self, table: str, key: str) -> Obj | None:
        """A PVC, PV, ... as the cache has it (assumed changes included)."""
        return getattr(self._snapshot, table).get(key)

    def get_node(self, name: str) -> Obj | None:
        return self._nodes.get(name)

    def assume_pod_volumes(self, volumes: PodVolumes) -> None:
        """AssumePodVolumes: count the chosen PVs as taken (claimRef set) and the claims
        as having their node selected, before the API has heard of it."""
        for _, pv in volumes.static_bindings:
            self._snapshot.pvs[object_key(pv)] = pv
        for _, claim in volumes.dynamic_provisions:
            self._snapshot.pvcs[object_key(claim)] = claim

    def revert_pod_volumes(self, volumes: PodVolumes) -> None:
        """RevertAssumedPodVolumes: put back the objects as they were, unless the
        informer has already delivered a newer version (the assume cache's Restore)."""
        for table, pairs in ((self._snapshot.pvs, volumes.static_bindings),
                             (self._snapshot.pvcs, volumes.dynamic_provisions)):
            for original, _ in pairs:
                key = object_key(original)
                current = table.get(key)
                if current is not None and _rv(current) == _rv(original):
                    table[key] = original

    def set_object(self, table: str, obj: Obj) -> None:
        if table == "services":
            self._services[object_key(obj)] = obj
            self._services_dirty = True
        else:
            getattr(self._snapshot, table)[object_key(obj)] = obj

    def delete_object(self, table: str, obj: Obj) -> None:
        if table == "services":
            self._services.pop(object_key(obj), None)
            self._services_dirty = True
        else:
            getattr(self._snapshot, table).pop(object_key(obj), None)

    # -- informers -------------------------------------------------------------------------------
    def connect(self, factory: SharedInformerFactory, on_event: OnClusterEvent) -> None:
        """Feed this cache from `factory`'s informers (nodes, pods, OBJECT_TABLES) and
        report every change as a ClusterEvent to `on_event`."""
        CacheFeeder(self, on_event).connect(factory)


class CacheFeeder:
    """Informer handlers that keep a SchedulerCache current (eventhandlers.go's cache side)."""

    def __init__(self, cache: SchedulerCache, on_event: OnClusterEvent) -> None:
        self.cache = cache
        self.on_event = on_event

    def connect(self, factory: SharedInformerFactory) -> None:
        factory.informer(NODES).add_event_handler(
            on_add=self.node_added, on_update=self.node_updated, on_delete=self.node_deleted)
        factory.informer(PODS).add_event_handler(
            on_add=self.pod_added, on_update=self.pod_updated, on_delete=self.pod_deleted)
        for resource, table in OBJECT_TABLES:
            self._connect_table(factory, resource, table)

    def _connect_table(self, factory: SharedInformerFactory, resource: Resource, table: str) -> None:
        def added(obj: Obj) -> None:
            self.cache.set_object(table, obj)
            self.on_event(ClusterEvent(resource.kind, "Add"))

        def updated(old: Obj, new: Obj) -> None:
            self.cache.set_object(table, new)
            self.on_event(ClusterEvent(resource.kind, "Update"))

        def deleted(obj: Obj | DeletedFinalStateUnknown) -> None:
            self.cache.delete_object(table, unwrap(obj))
            self.on_event(ClusterEvent(resource.kind, "Delete"))

        factory.informer(resource).add_event_handler(on_add=added, on_update=updated, on_delete=deleted)

    # -- nodes -----------------------------------------------------------------------------
    def node_added(self, node: Obj) -> None:
        self.cache.add_node(node)
        self.on_event(ClusterEvent("Node", "Add"))

    def node_updated(self, old: Obj, new: Obj) -> None:
        if self.cache.update_node(old, new):
            self.on_event(ClusterEvent("Node", "Update"))

    def node_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self.cache.remove_node((unwrap(obj).get("metadata") or {}).get("name", ""))
        self.on_event(ClusterEvent("Node", "Delete"))

    # -- assigned pods (the loop handles unassigned ones) ------------------------------------------
    def pod_added(self, pod: Obj) -> None:
        if not node_name_of(pod):
            return
        if is_terminal(pod):
            self._pod_gone(object_key(pod))
            return
        self.cache.add_pod(pod)
        self.on_event(ClusterEvent("Pod", "Add"))

    def pod_updated(self, old: Obj, new: Obj) -> None:
        if not node_name_of(new):
            return
        key = object_key(new)
        if is_terminal(new):
            self._pod_gone(key)
            return
        # Unassigned -> assigned (the binding arrived) is an Add, as client-go's
        # FilteringResourceEventHandler reports an object entering the filter.
        known = bool(node_name_of(old)) and self.cache.node_of(key) is not None and not self.cache.is_assumed(key)
        if known and not pod_scheduling_changed(old, new):
            return  # a status report (kubelet): nothing a plugin reads, no event either
        self.cache.add_pod(new)
        self.on_event(ClusterEvent("Pod", "Update" if known else "Add"))

    def pod_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = unwrap(obj)
        if node_name_of(pod):
            self._pod_gone(object_key(pod))

    def _pod_gone(self, key: str) -> None:
        if self.cache.remove_pod(key):
            self.on_event(ClusterEvent("Pod", "Delete"))
