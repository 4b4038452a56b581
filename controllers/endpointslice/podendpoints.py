"""What the EndpointSlice and Endpoints controllers both ask of a pod (pkg/controller/util/endpoint).

- `should_pod_be_in_endpoints`: a pod with an IP that can still run (terminal pods of a
  Never/OnFailure restart policy are out); terminating pods only when asked for.
- `find_port`: a Service port's targetPort on a pod: a number as is, a name looked up in
  the containers' ports (same protocol); None when the pod has no such named port.
- `should_set_hostname`: the pod's spec.hostname is published when its spec.subdomain
  names the Service (same namespace).
"""

from __future__ import annotations

from typing import Any

from controllers.common import objects

Obj = dict[str, Any]
HEADLESS_LABEL = "service.kubernetes.io/headless"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"


def pod_ip(pod: Obj) -> str:
    """The pod's (first IPv4) address, '' when it has none yet."""
    status = objects.status(pod)
    ips = [entry.get("ip", "") for entry in status.get("podIPs") or []] or [status.get("podIP") or ""]
    for ip in ips:
        if ip and ":" not in ip:
            return ip
    return ""


def should_pod_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """ShouldPodBeInEndpoints."""
    if not pod_ip(pod):
        return False
    if not include_terminating and objects.being_deleted(pod):
        return False
    phase = objects.status(pod).get("phase")
    policy = objects.spec(pod).get("restartPolicy") or "Always"
    if policy == "Never":
        return phase not in ("Failed", "Succeeded")
    if policy == "OnFailure":
        return phase != "Succeeded"
    return True


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """podutil.FindPort: the container port a Service port's targetPort means on `pod`."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    for container in objects.spec(pod).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


def should_set_hostname(pod: Obj, service: Obj) -> bool:
    """ShouldSetHostname."""
    pod_spec = objects.spec(pod)
    return (bool(pod_spec.get("hostname")) and pod_spec.get("subdomain") == objects.name(service)
            and objects.namespace(pod) == objects.namespace(service))


def is_headless(service: Obj) -> bool:
    return objects.spec(service).get("clusterIP") == "None"


def service_selector(service: Obj) -> dict[str, str] | None:
    """spec.selector, or None for a Service without one (its endpoints are the user's)."""
    selector = objects.spec(service).get("selector")
    return dict(selector) if selector else None


def selects(service: Obj, pod: Obj) -> bool:
    selector = service_selector(service)
    if selector is None or objects.namespace(pod) != objects.namespace(service):
        return False
    labels = objects.labels(pod)
    return all(labels.get(k) == v for k, v in selector.items())


def target_ref(pod: Obj) -> Obj:
    return {"kind": "Pod", "namespace": objects.namespace(pod), "name": objects.name(pod), "uid": objects.uid(pod)}


def format_trigger_time(moment: Any) -> str:
    """RFC3339Nano in UTC, as Kubernetes writes the trigger-time annotation (no trailing zeros)."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += ("." + f"{moment.microsecond:06d}").rstrip("0")
    return text + "Z"
