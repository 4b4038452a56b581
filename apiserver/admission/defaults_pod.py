"""Defaulting of PodSpecs, wherever they appear (Pods and every pod template).

Mirrors pkg/apis/core/v1/defaults.go (SetDefaults_PodSpec, _Container, _Probe, _Volume,
the volume-source modes, HTTPGetAction, ObjectFieldSelector, ResourceList) plus the
declarative `+default` markers (container port protocol TCP, grpc service ""). A few
fields are also filled because Go always serializes them even when empty, so that
`kubectl get -o yaml` reads like a real cluster: `resources: {}` on containers,
`divisor: "0"` on resourceFieldRefs, `creationTimestamp: null` on template metadata.

Pod-only defaults (requests copied from limits, enableServiceLinks, hostNetwork ports)
live in `default_pod`, because Kubernetes applies them to Pods but not to templates.
"""

from __future__ import annotations

import re
from typing import Any

from minikube_py.api.quantity import canonical, canonical_resource

TERMINATION_MESSAGE_PATH = "/dev/termination-log"
DEFAULT_MODE = 0o644  # 420, the default file mode of configMap/secret/projected/downwardAPI volumes
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
# A docker image reference: [domain[:port]/]path[:tag][@digest] (distribution/reference).
_NAME_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?)"
_REFERENCE_RE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*(?::(?P<tag>[\w][\w.-]{{0,127}}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$")


def image_tag(image: str) -> str:
    """The tag parsers.ParseImageName finds: "latest" when neither tag nor digest is
    given, "" for a digest-only or unparsable reference."""
    match = _REFERENCE_RE.match(image)
    if match is None or len(image) > 255:
        return ""
    if match.group("tag"):
        return match.group("tag")
    return "" if match.group("digest") else "latest"


def _dict(parent: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = parent.get(key)
    return value if isinstance(value, dict) else None


def _dicts(parent: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = parent.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def canonicalize_resource_list(parent: dict[str, Any] | None, key: str) -> None:
    """SetDefaults_ResourceList: round up to milli precision and store canonically.
    Raises QuantityError for a value that is not a quantity."""
    values = _dict(parent, key) if parent is not None else None
    if values is not None:
        for name, value in values.items():
            values[name] = canonical_resource(value)


def canonicalize_quantity(parent: dict[str, Any] | None, key: str) -> None:
    if parent is not None and key in parent and parent[key] is not None:
        parent[key] = canonical(parent[key])


def default_template_metadata(template: dict[str, Any]) -> None:
    """Go serializes a template's zero creationTimestamp as null."""
    meta = _dict(template, "metadata")
    if meta is None:
        meta = template["metadata"] = {}
    meta.setdefault("creationTimestamp", None)


def _field_ref(ref: dict[str, Any] | None) -> None:
    if ref is not None and not ref.get("apiVersion"):
        ref["apiVersion"] = "v1"


def _resource_field_ref(ref: dict[str, Any] | None) -> None:
    if ref is not None:
        ref.setdefault("divisor", "0")
        canonicalize_quantity(ref, "divisor")


def _http_get(action: dict[str, Any] | None) -> None:
    if action is not None:
        if not action.get("path"):
            action["path"] = "/"
        if not action.get("scheme"):
            action["scheme"] = "HTTP"


def _probe(probe: dict[str, Any] | None) -> None:
    if probe is None:
        return
    for field, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)):
        if not probe.get(field):
            probe[field] = value
    _http_get(_dict(probe, "httpGet"))
    grpc = _dict(probe, "grpc")
    if grpc is not None and grpc.get("service") is None:
        grpc["service"] = ""


def default_container(ctr: dict[str, Any]) -> None:
    if not ctr.get("imagePullPolicy"):
        ctr["imagePullPolicy"] = "Always" if image_tag(str(ctr.get("image") or "")) == "latest" else "IfNotPresent"
    if not ctr.get("terminationMessagePath"):
        ctr["terminationMessagePath"] = TERMINATION_MESSAGE_PATH
    if not ctr.get("terminationMessagePolicy"):
        ctr["terminationMessagePolicy"] = "File"
    for port in _dicts(ctr, "ports"):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
    for var in _dicts(ctr, "env"):
        source = _dict(var, "valueFrom")
        if source is not None:
            _field_ref(_dict(source, "fieldRef"))
            _resource_field_ref(_dict(source, "resourceFieldRef"))
    resources = _dict(ctr, "resources")
    if resources is None:
        resources = ctr["resources"] = {}
    canonicalize_resource_list(resources, "limits")
    canonicalize_resource_list(resources, "requests")
    for probe in _PROBES:
        _probe(_dict(ctr, probe))
    lifecycle = _dict(ctr, "lifecycle")
    for hook in ("postStart", "preStop"):
        handler = _dict(lifecycle, hook) if lifecycle is not None else None
        if handler is not None:
            _http_get(_dict(handler, "httpGet"))


def _downward_items(source: dict[str, Any] | None) -> None:
    for item in _dicts(source, "items") if source is not None else []:
        _field_ref(_dict(item, "fieldRef"))
        _resource_field_ref(_dict(item, "resourceFieldRef"))


def default_pvc_spec(spec: dict[str, Any] | None) -> None:
    """SetDefaults_PersistentVolumeClaimSpec plus its ResourceLists."""
    if spec is None:
        return
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    resources = _dict(spec, "resources")
    canonicalize_resource_list(resources, "limits")
    canonicalize_resource_list(resources, "requests")


def default_volume(volume: dict[str, Any]) -> None:
    if not any(key != "name" and value is not None for key, value in volume.items()):
        volume["emptyDir"] = {}
    for kind in ("secret", "configMap", "downwardAPI", "projected"):
        source = _dict(volume, kind)
        if source is not None and source.get("defaultMode") is None:
            source["defaultMode"] = DEFAULT_MODE
    _downward_items(_dict(volume, "downwardAPI"))
    host_path = _dict(volume, "hostPath")
    if host_path is not None and host_path.get("type") is None:
        host_path["type"] = ""
    canonicalize_quantity(_dict(volume, "emptyDir"), "sizeLimit")
    projected = _dict(volume, "projected")
    for source in _dicts(projected, "sources") if projected is not None else []:
        token = _dict(source, "serviceAccountToken")
        if token is not None and token.get("expirationSeconds") is None:
            token["expirationSeconds"] = 3600
        _downward_items(_dict(source, "downwardAPI"))
    ephemeral = _dict(volume, "ephemeral")
    template = _dict(ephemeral, "volumeClaimTemplate") if ephemeral is not None else None
    if template is not None:
        default_template_metadata(template)
        default_pvc_spec(_dict(template, "spec"))


def default_pod_spec(spec: dict[str, Any]) -> None:
    """SetDefaults_PodSpec and the defaults of everything a PodSpec contains."""
    for field, value in (("dnsPolicy", "ClusterFirst"), ("restartPolicy", "Always"),
                         ("schedulerName", "default-scheduler")):
        if not spec.get(field):
            spec[field] = value
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    # v1 keeps the deprecated `serviceAccount` mirrored from serviceAccountName.
    if not spec.get("serviceAccountName") and spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    if spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    for volume in _dicts(spec, "volumes"):
        default_volume(volume)
    for field in ("containers", "initContainers", "ephemeralContainers"):
        for ctr in _dicts(spec, field):
            default_container(ctr)
    canonicalize_resource_list(spec, "overhead")
    resources = _dict(spec, "resources")
    canonicalize_resource_list(resources, "limits")
    canonicalize_resource_list(resources, "requests")


def default_pod_template(template: dict[str, Any] | None) -> None:
    """A PodTemplateSpec embedded in a workload (or a PodTemplate object)."""
    if template is None:
        return
    default_template_metadata(template)
    spec = _dict(template, "spec")
    if spec is None:
        spec = template["spec"] = {}
    default_pod_spec(spec)


def default_pod(pod: dict[str, Any]) -> None:
    """SetObjectDefaults_Pod: the PodSpec defaults plus SetDefaults_Pod."""
    spec = _dict(pod, "spec")
    if spec is None:
        spec = pod["spec"] = {}
    for field in ("containers", "initContainers"):
        for ctr in _dicts(spec, field):
            resources = _dict(ctr, "resources")
            limits = _dict(resources, "limits") if resources is not None else None
            if limits:
                requests = _dict(resources, "requests")
                if requests is None:
                    requests = resources["requests"] = {}
                for name, value in limits.items():
                    requests.setdefault(name, value)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork") is True:
        for field in ("containers", "initContainers"):
            for ctr in _dicts(spec, field):
                for port in _dicts(ctr, "ports"):
                    if not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")
    default_pod_spec(spec)
