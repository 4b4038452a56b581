"""core/v1 kinds besides Pods: Services, ConfigMaps, Secrets, Namespaces, storage,
Nodes, quotas and limits."""

from __future__ import annotations

import base64
import copy

import pytest

from .support import errors, status_message, stored


def service(**spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}], **spec}}


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param({}, [], id="valid"),
    pytest.param({"ports": []}, ["spec.ports: Required value"], id="no-ports"),
    pytest.param({"ports": [], "clusterIP": "None"}, [], id="headless-needs-no-ports"),
    pytest.param({"type": "ExternalName", "ports": [], "externalName": "db.example.com"}, [], id="external-name"),
    pytest.param({"type": "ExternalName", "ports": []}, ["spec.externalName: Required value"],
                 id="external-name-missing"),
    pytest.param({"ports": [{"port": 0}]},
                 ["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                  "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive"],
                 id="port-zero"),
    pytest.param({"ports": [{"port": 80}, {"port": 443}]},
                 ["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"],
                 id="names-required-with-two-ports"),
    pytest.param({"ports": [{"name": "web", "port": 80}, {"name": "web", "port": 81}]},
                 ['spec.ports[1].name: Duplicate value: "web"'], id="duplicate-port-names"),
    pytest.param({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]},
                 ['spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", '
                  'AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, '
                  "NodePort:0}"], id="duplicate-port-numbers"),
    pytest.param({"ports": [{"port": 80, "targetPort": "http_port"}]},
                 ['spec.ports[0].targetPort: Invalid value: "http_port": must contain only alpha-numeric characters '
                  "(a-z, 0-9), and hyphens (-)"], id="bad-target-port-name"),
    pytest.param({"type": "Balanced"},
                 ['spec.type: Unsupported value: "Balanced": supported values: "ClusterIP", "ExternalName", '
                  '"LoadBalancer", "NodePort"'], id="bad-type"),
    pytest.param({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]},
                 ["spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of "
                  "valid ports is 30000-32767"], id="node-port-range"),
    pytest.param({"ports": [{"port": 80, "nodePort": 30080}]},
                 ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
                 id="node-port-on-cluster-ip"),
    pytest.param({"sessionAffinity": "Sticky"},
                 ['spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"'],
                 id="session-affinity"),
    pytest.param({"clusterIP": "10.96.0.300"},
                 ['spec.clusterIPs[0]: Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or '
                  "2001:db8::ffff)"], id="bad-cluster-ip"),
])
def test_service(spec: dict, expected: list[str]) -> None:
    assert errors(service(**spec)) == expected


def test_service_cluster_ip_cannot_change() -> None:
    old = stored(service(clusterIP="10.96.0.10"))
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.96.0.11"
    assert errors(new, old, default=False) == [
        'spec.clusterIPs[0]: Invalid value: []string{"10.96.0.11"}: may not change once set']


def test_service_update_keeping_cluster_ip_is_fine() -> None:
    old = stored(service(clusterIP="10.96.0.10"))
    new = copy.deepcopy(old)
    new["spec"]["ports"][0]["targetPort"] = 9090
    assert errors(new, old, default=False) == []


def config_map(data: dict, **extra: object) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-config"}, "data": data, **extra}


CONFIG_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
                  "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")


@pytest.mark.parametrize(("data", "expected"), [
    pytest.param({"app.yml": "a: 1", "LOG_LEVEL": "INFO"}, [], id="valid"),
    pytest.param({"my key": "x"}, [f'data[my key]: Invalid value: "my key": {CONFIG_KEY_MSG}'], id="space-in-key"),
    pytest.param({"..secret": "x"}, ["data[..secret]: Invalid value: \"..secret\": must not start with '..'"],
                 id="dot-dot-prefix"),
    pytest.param({"big": "x" * (1024 * 1024 + 1)}, ["Too long: may not be more than 1048576 bytes"], id="too-big"),
])
def test_config_map_keys_and_size(data: dict, expected: list[str]) -> None:
    assert errors(config_map(data)) == expected


def test_immutable_config_map_data_cannot_change() -> None:
    old = stored(config_map({"a": "1"}, immutable=True))
    new = copy.deepcopy(old)
    new["data"]["a"] = "2"
    assert errors(new, old, default=False) == ["data: Forbidden: field is immutable when `immutable` is set"]


def secret(kind: str | None = None, **data: str) -> dict:
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
           "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}
    if kind:
        obj["type"] = kind
    return obj


@pytest.mark.parametrize(("obj", "expected"), [
    pytest.param(secret(username="admin"), [], id="opaque"),
    pytest.param(secret("kubernetes.io/tls", **{"tls.crt": "c"}), ["data[tls.key]: Required value"], id="tls-no-key"),
    pytest.param(secret("kubernetes.io/tls"), ["data[tls.crt]: Required value", "data[tls.key]: Required value"],
                 id="tls-empty"),
    pytest.param(secret("kubernetes.io/dockerconfigjson"), ["data[.dockerconfigjson]: Required value"],
                 id="dockerconfigjson-missing"),
    pytest.param(secret("kubernetes.io/dockerconfigjson", **{".dockerconfigjson": "{oops"}),
                 ['data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": invalid character \'o\' '
                  "looking for beginning of value"], id="dockerconfigjson-not-json"),
    pytest.param(secret("kubernetes.io/basic-auth"),
                 ["data[username]: Required value", "data[password]: Required value"], id="basic-auth"),
    pytest.param(secret("kubernetes.io/service-account-token"),
                 ["metadata.annotations[kubernetes.io/service-account.name]: Required value"], id="sa-token"),
])
def test_secret_types_need_their_keys(obj: dict, expected: list[str]) -> None:
    assert errors(obj) == expected


def test_secret_type_is_immutable() -> None:
    old = stored(secret(username="a"))
    new = copy.deepcopy(old)
    new["type"] = "kubernetes.io/basic-auth"
    assert errors(new, old, default=False) == ['type: Invalid value: "kubernetes.io/basic-auth": field is immutable']


def test_namespace_finalizers_must_be_qualified() -> None:
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "commerce"}, "spec": {"finalizers": ["foo"]}}
    assert errors(obj) == ['spec.finalizers: Invalid value: "foo": name is neither a standard finalizer name nor is '
                           "it fully qualified"]


def pvc(**spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, **spec}}


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param({}, [], id="valid"),
    pytest.param({"accessModes": []}, ["spec.accessModes: Required value: at least 1 access mode is required"],
                 id="no-access-modes"),
    pytest.param({"accessModes": ["ReadWriteSometimes"]},
                 ['spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: "ReadOnlyMany", '
                  '"ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"'], id="bad-access-mode"),
    pytest.param({"resources": {}}, ["spec.resources[storage]: Required value"], id="no-storage-request"),
    pytest.param({"resources": {"requests": {"storage": "0"}}},
                 ['spec.resources[storage]: Invalid value: "0": must be greater than zero'], id="zero-storage"),
    pytest.param({"volumeMode": "Raw"},
                 ['spec.volumeMode: Unsupported value: "Raw": supported values: "Block", "Filesystem"'],
                 id="bad-volume-mode"),
])
def test_pvc(spec: dict, expected: list[str]) -> None:
    assert errors(pvc(**spec)) == expected


def test_pvc_spec_is_immutable_except_storage_of_bound_claims() -> None:
    old = stored(pvc())
    grown = copy.deepcopy(old)
    grown["spec"]["resources"]["requests"]["storage"] = "2Gi"
    (message,) = errors(grown, old, default=False)
    assert message.startswith("spec: Forbidden: spec is immutable after creation except resources.requests and "
                              "volumeAttributesClassName for bound claims\n")
    old["status"] = {"phase": "Bound", "capacity": {"storage": "1Gi"}}
    grown["status"] = {"phase": "Bound", "capacity": {"storage": "1Gi"}}
    assert errors(grown, old, default=False) == []


def test_pv_needs_capacity_and_a_source() -> None:
    obj = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
           "spec": {"accessModes": ["ReadWriteOnce"]}}
    assert errors(obj) == [
        "spec.capacity: Required value",
        "spec.capacity: Unsupported value: core.ResourceList(nil): supported values: \"storage\"",
        "spec: Required value: must specify a volume type",
    ]


def test_node_taints_are_validated_under_metadata_like_kubernetes() -> None:
    obj = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
           "spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoWhere"}]}}
    assert errors(obj) == ['metadata.taints[0].effect: Unsupported value: "NoWhere": supported values: '
                           '"NoSchedule", "PreferNoSchedule", "NoExecute"']


def test_limit_range_min_above_max() -> None:
    obj = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits"},
           "spec": {"limits": [{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}]}}
    messages = errors(obj)
    assert messages[0] == ('spec.limits[0].min[cpu]: Invalid value: resource.Quantity{i:resource.int64Amount{value:2, '
                           'scale:0}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:"2", Format:"DecimalSI"}: '
                           "min value 2 is greater than max value 1")


def test_resource_quota_names() -> None:
    obj = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "quota"},
           "spec": {"hard": {"pods": "10", "cpu-ish": "1"}}}
    assert errors(obj) == [
        'spec.hard[cpu-ish]: Invalid value: "cpu-ish": must be a standard resource type or fully qualified',
        'spec.hard[cpu-ish]: Invalid value: "cpu-ish": must be a standard resource for quota',
    ]


def test_legacy_event_namespace_must_match() -> None:
    obj = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1", "namespace": "default"},
           "involvedObject": {"kind": "Pod", "name": "web", "namespace": "other"}, "reason": "Started"}
    assert errors(obj) == ['involvedObject.namespace: Invalid value: "other": does not match event.namespace']


def test_whole_message_for_several_errors_is_bracketed() -> None:
    assert status_message(pvc(accessModes=[], resources={})) == (
        'PersistentVolumeClaim "data" is invalid: [spec.accessModes: Required value: at least 1 access mode is '
        "required, spec.resources[storage]: Required value]")
