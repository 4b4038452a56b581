"""What the default admission plugins add to a new Pod, plus its initial status.

A real kube-apiserver runs mutating admission plugins after decoding; for Pods these
visibly add fields a learner sees in `kubectl get pod -o yaml`:

- ServiceAccount: `serviceAccountName: default` (and the mirrored `serviceAccount`) when
  none is set. Its other half, mounting a `kube-api-access-xxxxx` projected token volume,
  is available as `inject_service_account_token_volume` for callers whose kubelet serves
  such volumes; `admit_pod` does not do it.
- Priority: `priority: 0` and `preemptionPolicy: PreemptLowerPriority` without a class,
  or the built-in system classes' values.
- DefaultTolerationSeconds: tolerate `not-ready` and `unreachable` NoExecute taints for
  300 seconds.

The Pod REST strategy then sets `status: {phase: Pending, qosClass: ...}`; the QoS class
computation is shared with the scheduler and kubelet through `pod_qos_class`.
"""

from __future__ import annotations

import secrets
from typing import Any

from minikube_py.api.quantity import QuantityError, parse_quantity

SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
DEFAULT_TOLERATION_SECONDS = 300
_TAINT_KEYS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand


def _tolerated(tolerations: list[Any], taint_key: str) -> bool:
    for tol in tolerations:
        if not isinstance(tol, dict):
            continue
        if tol.get("key", "") in (taint_key, "") and tol.get("effect", "") in ("NoExecute", ""):
            return True
    return False


def admit_pod(pod: dict[str, Any]) -> None:
    """ServiceAccount, Priority and DefaultTolerationSeconds admission, for a new Pod."""
    spec = pod.setdefault("spec", {})
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec.get("serviceAccount") or "default"
    spec["serviceAccount"] = spec["serviceAccountName"]
    class_name = spec.get("priorityClassName")
    if not class_name:
        spec.setdefault("priority", 0)
    elif class_name in SYSTEM_PRIORITY_CLASSES:
        spec.setdefault("priority", SYSTEM_PRIORITY_CLASSES[class_name])
    if spec.get("priority") is not None and spec.get("preemptionPolicy") is None:
        spec["preemptionPolicy"] = "PreemptLowerPriority"
    tolerations = spec.get("tolerations") if isinstance(spec.get("tolerations"), list) else []
    for taint_key in _TAINT_KEYS:
        if not _tolerated(tolerations, taint_key):
            tolerations.append({"key": taint_key, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS})
    spec["tolerations"] = tolerations
    status = pod.get("status") if isinstance(pod.get("status"), dict) else {}
    if not status.get("phase"):
        status["phase"] = "Pending"
        status["qosClass"] = pod_qos_class(pod)
    pod["status"] = status


def _sum_positive(total: dict[str, Any], resources: Any) -> set[str]:
    found = set()
    for name, raw in (resources or {}).items() if isinstance(resources, dict) else ():
        if name not in ("cpu", "memory"):
            continue
        try:
            quantity = parse_quantity(raw)
        except QuantityError:
            continue
        if quantity.sign() > 0:
            found.add(name)
            total[name] = total[name] + quantity if name in total else quantity
    return found


def pod_qos_class(pod: dict[str, Any]) -> str:
    """Guaranteed, Burstable or BestEffort, as qos.ComputePodQOS decides."""
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    guaranteed = True
    for field in ("containers", "initContainers"):
        for ctr in spec.get(field) or []:
            resources = ctr.get("resources") if isinstance(ctr, dict) and isinstance(ctr.get("resources"), dict) else {}
            _sum_positive(requests, resources.get("requests"))
            if not {"cpu", "memory"} <= _sum_positive(limits, resources.get("limits")):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(name in limits and limits[name] == value for name, value in requests.items()):
        if len(requests) == len(limits):
            return "Guaranteed"
    return "Burstable"


def inject_service_account_token_volume(pod: dict[str, Any], suffix: str | None = None) -> str | None:
    """What the ServiceAccount plugin also does unless automountServiceAccountToken is
    false: add the `kube-api-access-<suffix>` projected volume (token, CA bundle,
    namespace) and mount it read-only in every container. Returns the volume name."""
    spec = pod.setdefault("spec", {})
    if spec.get("automountServiceAccountToken") is False:
        return None
    volumes = spec.setdefault("volumes", [])
    mount_path = "/var/run/secrets/kubernetes.io/serviceaccount"
    if any(m.get("mountPath") == mount_path for c in spec.get("containers", []) for m in c.get("volumeMounts", [])):
        return None
    name = "kube-api-access-" + (suffix or "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5)))
    volumes.append({"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                    "path": "namespace"}]}},
    ]}})
    for field in ("containers", "initContainers"):
        for ctr in spec.get(field, []):
            ctr.setdefault("volumeMounts", []).append({"name": name, "mountPath": mount_path, "readOnly": True})
    return name
