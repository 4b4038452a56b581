"""The smaller API groups: Ingress, NetworkPolicy, HPA, RBAC, PDB, EndpointSlice,
StorageClass and Lease, plus kinds validation does not know (custom resources)."""

from __future__ import annotations

import copy

import pytest

from apiserver.admission.validation import validate_object

from .support import errors, stored


def ingress(path: dict) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "api"},
            "spec": {"rules": [{"host": "api.example.com", "http": {"paths": [path]}}]}}


BACKEND = {"service": {"name": "orders", "port": {"number": 80}}}


@pytest.mark.parametrize(("path", "expected"), [
    pytest.param({"path": "/orders", "pathType": "Prefix", "backend": BACKEND}, [], id="valid"),
    pytest.param({"path": "/orders", "backend": BACKEND},
                 ["spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"],
                 id="missing-path-type"),
    pytest.param({"path": "/orders", "pathType": "Regex", "backend": BACKEND},
                 ['spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex": supported values: "Exact", '
                  '"ImplementationSpecific", "Prefix"'], id="bad-path-type"),
    pytest.param({"path": "orders", "pathType": "Exact", "backend": BACKEND},
                 ['spec.rules[0].http.paths[0].path: Invalid value: "orders": must be an absolute path'],
                 id="relative-path"),
    pytest.param({"path": "/a//b", "pathType": "Prefix", "backend": BACKEND},
                 ["spec.rules[0].http.paths[0].path: Invalid value: \"/a//b\": must not contain '//'"],
                 id="double-slash"),
    pytest.param({"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "orders"}}},
                 ["spec.rules[0].http.paths[0].backend: Required value: port name or number is required"],
                 id="backend-without-port"),
    pytest.param({"path": "/", "pathType": "Prefix",
                  "backend": {"service": {"name": "orders", "port": {"name": "http", "number": 80}}}},
                 ['spec.rules[0].http.paths[0].backend: Invalid value: "": cannot set both port name & port number'],
                 id="both-port-name-and-number"),
    pytest.param({"path": "/", "pathType": "Prefix", "backend": {}},
                 ['spec.rules[0].http.paths[0].backend: Invalid value: "": resource or service backend is required'],
                 id="empty-backend"),
])
def test_ingress_paths(path: dict, expected: list[str]) -> None:
    assert errors(ingress(path)) == expected


def test_ingress_needs_rules_or_default_backend() -> None:
    obj = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "api"}, "spec": {}}
    assert errors(obj) == ["spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` "
                           "must be specified"]


def test_ingress_host_may_not_be_an_ip() -> None:
    obj = ingress({"path": "/", "pathType": "Prefix", "backend": BACKEND})
    obj["spec"]["rules"][0]["host"] = "10.0.0.1"
    assert errors(obj) == ['spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address']


def hpa(**spec: object) -> dict:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": 2, "maxReplicas": 5, **spec}}


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param({}, [], id="valid"),
    pytest.param({"minReplicas": 0}, ["spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"],
                 id="zero-min"),
    pytest.param({"minReplicas": 6},
                 ["spec.maxReplicas: Invalid value: 5: must be greater than or equal to `minReplicas`"],
                 id="max-below-min"),
    pytest.param({"scaleTargetRef": {"kind": "Deployment"}}, ["spec.scaleTargetRef.name: Required value"],
                 id="target-without-name"),
    pytest.param({"metrics": [{"type": "Resource"}]},
                 ["spec.metrics[0].resource: Required value: must populate information for the given metric source"],
                 id="metric-without-source"),
    pytest.param({"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}]},
                 ["spec.metrics[0].resource.target.averageUtilization: Required value: must set either a target raw "
                  "value or a target utilization"], id="target-without-value"),
    pytest.param({"behavior": {"scaleDown": {"policies": [{"type": "Percent", "value": 0, "periodSeconds": 60}]}}},
                 ["spec.behavior.scaleDown.policies[0].value: Invalid value: 0: must be greater than zero"],
                 id="zero-policy-value"),
])
def test_hpa(spec: dict, expected: list[str]) -> None:
    assert errors(hpa(**spec)) == expected


def role(rules: list) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "pod-reader", "namespace": "commerce"}, "rules": rules}


@pytest.mark.parametrize(("rules", "expected"), [
    pytest.param([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}], [], id="valid"),
    pytest.param([{"apiGroups": [""], "resources": ["pods"]}],
                 ["rules[0].verbs: Required value: verbs must contain at least one value"], id="no-verbs"),
    pytest.param([{"verbs": ["get"]}],
                 ["rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                  "rules[0].resources: Required value: resource rules must supply at least one resource"],
                 id="no-groups-or-resources"),
    pytest.param([{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}],
                 ['rules[0].nonResourceURLs: Invalid value: []string{"/healthz"}: namespaced rules cannot apply to '
                  "non-resource URLs"], id="non-resource-url-in-role"),
])
def test_role_rules(rules: list, expected: list[str]) -> None:
    assert errors(role(rules)) == expected


def binding() -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "read-pods", "namespace": "commerce"},
            "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "commerce"}],
            "roleRef": {"kind": "Role", "name": "pod-reader"}}


def test_role_binding_subject_kind() -> None:
    obj = binding()
    obj["subjects"][0]["kind"] = "Robot"
    assert errors(obj) == ['subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", '
                           '"Group"']


def test_role_ref_cannot_change() -> None:
    old = stored(binding())
    new = copy.deepcopy(old)
    new["roleRef"]["name"] = "admin"
    assert errors(new, old, default=False) == [
        'roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"admin"}: '
        "cannot change roleRef"]


def test_pdb_min_and_max_are_exclusive() -> None:
    obj = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
           "spec": {"minAvailable": 1, "maxUnavailable": "10%", "selector": {"matchLabels": {"app": "web"}}}}
    assert errors(obj) == ["spec: Invalid value: policy.PodDisruptionBudgetSpec{...}: minAvailable and "
                           "maxUnavailable cannot be both set"]


def test_network_policy_peer_needs_a_selector() -> None:
    obj = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny"},
           "spec": {"podSelector": {}, "ingress": [{"from": [{}]}]}}
    assert errors(obj) == ["spec.ingress[0].from[0]: Required value: must specify a peer"]


def test_endpoint_slice_address_type() -> None:
    obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "web-abc"},
           "addressType": "IPv5", "endpoints": [{"addresses": ["10.0.0.1"]}]}
    assert errors(obj) == ['addressType: Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"']


def test_storage_class_parameters_are_immutable() -> None:
    old = stored({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"},
                  "provisioner": "example.com/ssd", "parameters": {"type": "gp3"}})
    new = copy.deepcopy(old)
    new["parameters"]["type"] = "io2"
    assert errors(new, old, default=False) == ["parameters: Forbidden: updates to parameters are forbidden."]


def test_lease_duration_must_be_positive() -> None:
    obj = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "node-1"},
           "spec": {"leaseDurationSeconds": 0}}
    assert errors(obj) == ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]


def test_unknown_kinds_get_generic_metadata_checks() -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "CronTab", "metadata": {"name": "a/b"}}
    assert [e.message() for e in validate_object("example.com", "CronTab", obj)] == [
        "metadata.name: Invalid value: \"a/b\": may not contain '/'"]
