"""Which nodes a DaemonSet's pod belongs on, and the pod it gets there (pkg/controller/daemon/util).

`node_should_run(node, ds)` is NodeShouldRunDaemonPod. It answers two questions:
  - should_run: a new daemon pod would be placed on this node now;
  - should_continue_running: an existing daemon pod may stay.
Both are False when the template's nodeName names another node or the node fails the
pod's nodeSelector / required node affinity. A NoSchedule or NoExecute taint the pod
does not tolerate makes should_run False, but only an untolerated NoExecute taint evicts
an existing pod (should_continue_running False): tainting a node NoSchedule keeps the
daemon pod that is already there, as in Kubernetes.

The pod tested is the DaemonSet's template with the default daemon tolerations added
(AddOrUpdateDaemonPodTolerations): not-ready and unreachable (NoExecute), disk-pressure,
memory-pressure, pid-pressure and unschedulable (NoSchedule), and network-unavailable
(NoSchedule) for hostNetwork pods. Created pods carry the same tolerations.

Pods are bound by the scheduler, not by the controller: each pod gets a required node
affinity `matchFields metadata.name In [<node>]` that replaces the template's required
node selector terms (ReplaceDaemonSetPodNodeNameNodeAffinity). `target_node_name` reads
the node back from a pod that is not bound yet (GetTargetNodeName).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

from controllers.common import objects
from controllers.scheduler.matching import find_untolerated_taint, required_node_affinity_matches

Obj = dict[str, Any]

NODE_NAME_FIELD = "metadata.name"
NO_SCHEDULE = "NoSchedule"
NO_EXECUTE = "NoExecute"

# (key, effect) of the tolerations every daemon pod gets, in Kubernetes' order.
DEFAULT_TOLERATIONS: tuple[tuple[str, str], ...] = (
    ("node.kubernetes.io/not-ready", NO_EXECUTE),
    ("node.kubernetes.io/unreachable", NO_EXECUTE),
    ("node.kubernetes.io/disk-pressure", NO_SCHEDULE),
    ("node.kubernetes.io/memory-pressure", NO_SCHEDULE),
    ("node.kubernetes.io/pid-pressure", NO_SCHEDULE),
    ("node.kubernetes.io/unschedulable", NO_SCHEDULE),
)
HOST_NETWORK_TOLERATION = ("node.kubernetes.io/network-unavailable", NO_SCHEDULE)


def _same_toleration(a: Obj, b: Obj) -> bool:
    """v1.Toleration.MatchToleration: same key, operator, value and effect."""
    return all((a.get(f) or "") == (b.get(f) or "") for f in ("key", "operator", "value", "effect"))


def add_or_update_toleration(tolerations: list[Obj], toleration: Obj) -> list[Obj]:
    """AddOrUpdateTolerationInPodSpec: replace a matching toleration, else append."""
    updated, out = False, []
    for existing in tolerations:
        if _same_toleration(existing, toleration):
            out.append(dict(toleration))
            updated = True
        else:
            out.append(existing)
    if not updated:
        out.append(dict(toleration))
    return out


def add_daemon_tolerations(pod_spec: Obj) -> Obj:
    """AddOrUpdateDaemonPodTolerations on a copy of `pod_spec`."""
    spec = copy.deepcopy(pod_spec)
    defaults = list(DEFAULT_TOLERATIONS)
    if spec.get("hostNetwork"):
        defaults.append(HOST_NETWORK_TOLERATION)
    tolerations = list(spec.get("tolerations") or [])
    for key, effect in defaults:
        tolerations = add_or_update_toleration(tolerations, {"key": key, "operator": "Exists", "effect": effect})
    spec["tolerations"] = tolerations
    return spec


def new_pod(ds: Obj, node_name: str) -> Obj:
    """NewPod: the template as a pod on `node_name`, with the daemon tolerations."""
    template = objects.spec(ds).get("template") or {}
    spec = add_daemon_tolerations(template.get("spec") or {})
    spec["nodeName"] = node_name
    return {"metadata": copy.deepcopy(template.get("metadata") or {}), "spec": spec}


# DaemonSet (uid, resourceVersion) -> its pod with the daemon tolerations. A sync asks about
# every node, several times; the template only changes with the resourceVersion.
_POD_CACHE: OrderedDict[tuple[str, str], Obj] = OrderedDict()
_POD_CACHE_SIZE = 256


def _daemon_pod(ds: Obj) -> Obj:
    """NewPod without the node name (matching does not read it), cached per DaemonSet version."""
    version = objects.metadata(ds).get("resourceVersion")
    key = (objects.uid(ds), str(version))
    if version and key in _POD_CACHE:
        _POD_CACHE.move_to_end(key)
        return _POD_CACHE[key]
    pod = new_pod(ds, "")
    if version:
        _POD_CACHE[key] = pod
        if len(_POD_CACHE) > _POD_CACHE_SIZE:
            _POD_CACHE.popitem(last=False)
    return pod


def node_should_run(node: Obj, ds: Obj) -> tuple[bool, bool]:
    """NodeShouldRunDaemonPod: (should_run, should_continue_running)."""
    name = objects.name(node)
    template_node = objects.spec(objects.spec(ds).get("template")).get("nodeName") or ""
    if template_node and template_node != name:
        return False, False
    pod = _daemon_pod(ds)
    if not required_node_affinity_matches(pod, node):
        return False, False
    taints = objects.spec(node).get("taints") or []
    tolerations = pod["spec"]["tolerations"]
    if find_untolerated_taint(taints, tolerations, frozenset({NO_SCHEDULE, NO_EXECUTE})) is None:
        return True, True
    evicting = find_untolerated_taint(taints, tolerations, frozenset({NO_EXECUTE}))
    return False, evicting is None


def node_affinity_for(affinity: Obj | None, node_name: str) -> Obj:
    """ReplaceDaemonSetPodNodeNameNodeAffinity: pin the pod to `node_name` by matchFields."""
    term = {"matchFields": [{"key": NODE_NAME_FIELD, "operator": "In", "values": [node_name]}]}
    result = copy.deepcopy(affinity) if affinity else {}
    node_affinity = result.get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [term]}
    else:
        required["nodeSelectorTerms"] = [term]
    result["nodeAffinity"] = node_affinity
    return result


def target_node_name(pod: Obj) -> str | None:
    """GetTargetNodeName: spec.nodeName, else the first `metadata.name In [node]` field
    requirement of the required node affinity (None, as Kubernetes' error, when there is
    none or it names more than one node)."""
    spec = objects.spec(pod)
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for requirement in term.get("matchFields") or []:
            if requirement.get("key") == NODE_NAME_FIELD and requirement.get("operator") == "In":
                values = requirement.get("values") or []
                return str(values[0]) if len(values) == 1 else None
    return None
