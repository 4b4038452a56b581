"""Bad input gets the Kubernetes error, and nothing is stored."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.e2e


def _request(cluster, method: str, path: str, body: bytes | None = None,
             content_type: str = "application/json") -> tuple[int, dict]:
    req = urllib.request.Request(cluster.server + path, data=body, method=method,
                                 headers={"Content-Type": content_type, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _configmap_names(cluster) -> list[str]:
    _, body = _request(cluster, "GET", "/api/v1/namespaces/default/configmaps")
    return [i["metadata"]["name"] for i in body["items"]]


def test_malformed_yaml_is_bad_request(mkp_cluster_module):
    code, status = _request(mkp_cluster_module, "POST", "/api/v1/namespaces/default/configmaps",
                            b"kind: ConfigMap\nmetadata: [name: x\n", "application/yaml")
    assert code == 400 and status["kind"] == "Status" and status["reason"] == "BadRequest"
    code, status = _request(mkp_cluster_module, "POST", "/api/v1/namespaces/default/configmaps", b"{not json")
    assert code == 400 and status["reason"] == "BadRequest"
    assert _configmap_names(mkp_cluster_module) == []


def test_unknown_kind(mkp_cluster_module):
    code, status = _request(mkp_cluster_module, "POST", "/api/v1/namespaces/default/widgets",
                            b'{"apiVersion":"v1","kind":"Widget","metadata":{"name":"w"}}')
    assert code == 404 and status["reason"] == "NotFound"
    result = mkp_cluster_module.kubectl("apply", "-f", "-", check=False,
                                        input="apiVersion: v1\nkind: Widget\nmetadata:\n  name: w\n")
    assert result.returncode != 0 and 'no matches for kind "Widget" in version "v1"' in result.stderr


def test_invalid_name_is_422_with_field_cause(mkp_cluster_module):
    result = mkp_cluster_module.kubectl("create", "configmap", "My_Config", "--from-literal=a=b", check=False)
    assert result.returncode != 0
    assert 'ConfigMap "My_Config" is invalid: metadata.name: Invalid value: "My_Config": ' \
           "a lowercase RFC 1123 subdomain must consist of" in result.stderr
    code, status = _request(mkp_cluster_module, "POST", "/api/v1/namespaces/default/configmaps",
                            b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}')
    assert code == 422 and status["reason"] == "Invalid"
    assert status["details"]["causes"][0]["field"] == "metadata.name"
    assert _configmap_names(mkp_cluster_module) == []


def test_stale_resource_version_conflicts(mkp_cluster):
    k = mkp_cluster.kubectl
    k("create", "configmap", "c", "--from-literal=a=1")
    stale = json.loads(k("get", "configmap", "c", "-o", "json").stdout)
    k("patch", "configmap", "c", "--type=merge", "-p", '{"data":{"a":"2"}}')
    stale["data"]["a"] = "3"
    result = k("replace", "-f", "-", input=json.dumps(stale), check=False)
    assert result.returncode != 0
    assert 'Operation cannot be fulfilled on configmaps "c": the object has been modified; ' \
           "please apply your changes to the latest version and try again" in result.stderr
    assert k("get", "configmap", "c", "-o", "jsonpath={.data.a}").stdout == "2"


def test_missing_namespace_is_not_found(mkp_cluster_module):
    result = mkp_cluster_module.kubectl("create", "configmap", "x", "-n", "nope", "--from-literal=a=b", check=False)
    assert result.returncode != 0 and 'namespaces "nope" not found' in result.stderr
    code, status = _request(mkp_cluster_module, "GET", "/api/v1/namespaces/nope/configmaps/x")
    assert code == 404 and status["reason"] == "NotFound"


def test_already_exists_and_not_found(mkp_cluster):
    k = mkp_cluster.kubectl
    k("create", "configmap", "dup", "--from-literal=a=1")
    again = k("create", "configmap", "dup", "--from-literal=a=1", check=False)
    assert again.returncode != 0 and 'configmaps "dup" already exists' in again.stderr
    missing = k("get", "configmap", "ghost", check=False)
    assert missing.returncode != 0 and 'Error from server (NotFound): configmaps "ghost" not found' in missing.stderr


def test_body_over_3mib_is_413(mkp_cluster_module):
    big = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
                      "data": {"k": "x" * (3 * 1024 * 1024 + 10)}}).encode()
    code, status = _request(mkp_cluster_module, "POST", "/api/v1/namespaces/default/configmaps", big)
    assert code == 413 and status["reason"] == "RequestEntityTooLarge"


def test_terminating_namespace_rejects_new_objects(mkp_cluster):
    k = mkp_cluster.kubectl
    k("create", "namespace", "doomed")
    k("delete", "namespace", "doomed", "--wait=false")
    assert k("get", "ns", "doomed", "-o", "jsonpath={.status.phase}").stdout == "Terminating"
    result = k("create", "configmap", "x", "-n", "doomed", "--from-literal=a=b", check=False)
    assert result.returncode != 0 and "because it is being terminated" in result.stderr
    protected = k("delete", "namespace", "default", check=False)
    assert protected.returncode != 0 and "this namespace may not be deleted" in protected.stderr


def test_unsupported_verb_is_405(mkp_cluster_module):
    code, status = _request(mkp_cluster_module, "DELETE", "/api/v1/namespaces/default/services")
    assert code == 405 and status["reason"] == "MethodNotAllowed"
    code, status = _request(mkp_cluster_module, "PUT", "/api/v1/namespaces/default/configmaps",
                            b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}')
    assert code == 405 and status["reason"] == "MethodNotAllowed"
