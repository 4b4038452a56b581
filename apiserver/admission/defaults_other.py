"""Defaulting of the smaller API groups: autoscaling/v2, networking.k8s.io/v1,
rbac.authorization.k8s.io/v1, storage.k8s.io/v1, discovery.k8s.io/v1 and policy/v1.

Mirrors their v1 defaults.go files: HPA minReplicas 1, an 80% CPU metric when none is
given and every unset behavior field filled from the defaults (scale up: 0s window,
max of 4 pods or 100% per 15s; scale down: 100% per 15s, window left to the controller);
NetworkPolicy policyTypes derived from its rules and port protocols TCP; RBAC binding
apiGroups; StorageClass reclaimPolicy Delete and volumeBindingMode Immediate;
EndpointSlice port names "" and protocols TCP. Status structs that Go always serializes
are filled as well.
"""

from __future__ import annotations

import copy
from typing import Any

from apiserver.admission.defaults_pod import _dict, _dicts, canonicalize_quantity

RBAC_GROUP = "rbac.authorization.k8s.io"
_SCALE_UP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
    {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]}
_SCALE_DOWN = {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _scaling_rules(given: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    """copyHPAScalingRules: the given non-nil fields over a copy of the defaults."""
    rules = copy.deepcopy(defaults)
    if isinstance(given, dict):
        for field in ("selectPolicy", "stabilizationWindowSeconds", "policies"):
            if given.get(field) is not None:
                rules[field] = given[field]
    return rules


def _metric_quantities(metric: dict[str, Any]) -> None:
    for source in ("object", "pods", "resource", "external", "containerResource"):
        target = _dict(_dict(metric, source) or {}, "target")
        if target is not None:
            canonicalize_quantity(target, "value")
            canonicalize_quantity(target, "averageValue")


def default_hpa(hpa: dict[str, Any]) -> None:
    spec = hpa.setdefault("spec", {})
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    for metric in _dicts(spec, "metrics"):
        _metric_quantities(metric)
    behavior = _dict(spec, "behavior")
    if behavior is not None:
        behavior["scaleUp"] = _scaling_rules(behavior.get("scaleUp"), _SCALE_UP)
        behavior["scaleDown"] = _scaling_rules(behavior.get("scaleDown"), _SCALE_DOWN)
    if _dict(hpa, "status") is None:
        hpa["status"] = {"currentMetrics": None, "desiredReplicas": 0}


def default_network_policy(np: dict[str, Any]) -> None:
    spec = np.setdefault("spec", {})
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    for direction in ("ingress", "egress"):
        for rule in _dicts(spec, direction):
            for port in _dicts(rule, "ports"):
                if port.get("protocol") is None:
                    port["protocol"] = "TCP"


def default_ingress(ing: dict[str, Any]) -> None:
    status = _dict(ing, "status")
    if status is None:
        status = ing["status"] = {}
    status.setdefault("loadBalancer", {})


def default_ingress_class(ic: dict[str, Any]) -> None:
    params = _dict(_dict(ic, "spec") or {}, "parameters")
    if params is not None and params.get("scope") is None:
        params["scope"] = "Cluster"


def default_role_binding(binding: dict[str, Any]) -> None:
    ref = _dict(binding, "roleRef")
    if ref is not None and not ref.get("apiGroup"):
        ref["apiGroup"] = RBAC_GROUP
    for subject in _dicts(binding, "subjects"):
        # ServiceAccount subjects default to the core group, which serializes as absent.
        if not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = RBAC_GROUP


def default_storage_class(sc: dict[str, Any]) -> None:
    if sc.get("reclaimPolicy") is None:
        sc["reclaimPolicy"] = "Delete"
    if sc.get("volumeBindingMode") is None:
        sc["volumeBindingMode"] = "Immediate"


def default_endpoint_slice(eps: dict[str, Any]) -> None:
    for port in _dicts(eps, "ports"):
        if port.get("name") is None:
            port["name"] = ""
        if port.get("protocol") is None:
            port["protocol"] = "TCP"


def default_pdb(pdb: dict[str, Any]) -> None:
    status = _dict(pdb, "status")
    if status is None:
        status = pdb["status"] = {}
    for field in ("currentHealthy", "desiredHealthy", "disruptionsAllowed", "expectedPods"):
        status.setdefault(field, 0)
