"""OpenAPI documents: their shape, their caching, and the real kubectl 1.32 reading them.

The kubectl tests start a small aiohttp server that serves /version, legacy discovery,
/openapi/v3 (index and group-version documents), /openapi/v2 and a POST handler that
applies strict field validation (`apiserver.admission.fields`), then run
/usr/bin/kubectl against it with a temporary kubeconfig.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from apiserver.admission.fields import field_validation_error, unknown_fields
from apiserver.crd.pruning import prune
from apiserver.openapi import (
    crd_version_schema,
    openapi_v3_group_version,
    openapi_v3_group_version_json,
    openapi_v3_index,
)
from apiserver.openapi_v2 import openapi_v2, openapi_v2_protobuf
from apiserver.registry.resource import ResourceInfo
from apiserver.schema import SchemaNode

CRONTAB_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "crontabs.stable.example.com"},
    "spec": {
        "group": "stable.example.com",
        "scope": "Namespaced",
        "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "listKind": "CronTabList",
                  "shortNames": ["ct"]},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {
                        "type": "object",
                        "description": "The desired schedule of the crontab.",
                        "properties": {
                            "cronSpec": {"type": "string", "description": "When to run, in cron syntax."},
                            "image": {"type": "string"},
                            "replicas": {"type": "integer", "minimum": 1},
                        },
                    },
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            }},
        }],
    },
}


def _resources(crd: dict[str, Any] | None = None) -> list[ResourceInfo]:
    return [
        ResourceInfo("", "v1", "Pod", "pods", True, short_names=["po"], subresources=["status", "log"]),
        ResourceInfo("", "v1", "ConfigMap", "configmaps", True, short_names=["cm"]),
        ResourceInfo("", "v1", "Namespace", "namespaces", False, short_names=["ns"], subresources=["status"],
                     verbs=["create", "delete", "get", "list", "patch", "update", "watch"]),
        ResourceInfo("apps", "v1", "Deployment", "deployments", True, short_names=["deploy"],
                     subresources=["scale", "status"]),
        ResourceInfo("stable.example.com", "v1", "CronTab", "crontabs", True, short_names=["ct"],
                     subresources=["status"], crd=crd or CRONTAB_CRD),
    ]


# --- document shape --------------------------------------------------------------------
def test_index_lists_every_group_version_with_its_hash() -> None:
    resources = _resources()
    index = openapi_v3_index(resources)
    assert set(index["paths"]) == {"api/v1", "apis/apps/v1", "apis/stable.example.com/v1"}
    _, digest = openapi_v3_group_version_json(resources, "apps", "v1")
    assert index["paths"]["apis/apps/v1"]["serverRelativeURL"] == f"/openapi/v3/apis/apps/v1?hash={digest}"


def test_patch_operation_carries_gvk_and_field_validation() -> None:
    doc = openapi_v3_group_version(_resources(), "apps", "v1")
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "kind": "Deployment", "version": "v1"}
    assert patch["x-kubernetes-action"] == "patch"
    assert patch["operationId"] == "patchAppsV1NamespacedDeployment"
    names = {p["name"] for p in patch["parameters"] if p["in"] == "query"}
    assert {"fieldValidation", "dryRun", "fieldManager", "force"} <= names
    scale = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"]
    assert scale["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "kind": "Scale", "version": "v1"}


def test_core_paths_use_api_prefix_and_cluster_scope() -> None:
    doc = openapi_v3_group_version(_resources(), "", "v1")
    assert "/api/v1/namespaces/{name}" in doc["paths"]
    assert doc["paths"]["/api/v1/namespaces"]["get"]["operationId"] == "listCoreV1Namespace"
    assert "delete" not in doc["paths"]["/api/v1/namespaces"]  # no deletecollection verb
    assert doc["paths"]["/api/v1/pods"]["get"]["operationId"] == "listCoreV1PodForAllNamespaces"


@pytest.mark.parametrize(("name", "expected"), [
    pytest.param("io.k8s.apimachinery.pkg.util.intstr.IntOrString",
                 {"format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}]}, id="int-or-string"),
    pytest.param("io.k8s.apimachinery.pkg.api.resource.Quantity",
                 {"oneOf": [{"type": "string"}, {"type": "number"}]}, id="quantity"),
])
def test_special_types_are_published_as_kubernetes_does(name: str, expected: dict[str, Any]) -> None:
    schemas = openapi_v3_group_version(_resources(), "apps", "v1")["components"]["schemas"]
    assert {k: v for k, v in schemas[name].items() if k != "description"} == expected


def test_builtin_schemas_have_single_types_and_wrapped_refs() -> None:
    schemas = openapi_v3_group_version(_resources(), "apps", "v1")["components"]["schemas"]
    deployment = schemas["io.k8s.api.apps.v1.Deployment"]
    assert deployment["type"] == "object"
    assert deployment["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert deployment["properties"]["apiVersion"] == {
        "description": deployment["properties"]["apiVersion"]["description"], "type": "string"}
    spec = deployment["properties"]["spec"]
    assert spec["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}]
    assert spec["description"]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    # Every reference resolves inside the document.
    text = json.dumps(schemas)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}:
        assert ref in schemas


def test_custom_resource_schema_gets_type_meta_metadata_and_list_kind() -> None:
    schemas = openapi_v3_group_version(_resources(), "stable.example.com", "v1")["components"]["schemas"]
    crontab = schemas["com.example.stable.v1.CronTab"]
    assert crontab["x-kubernetes-group-version-kind"] == [
        {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}]
    assert crontab["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]
    assert crontab["properties"]["kind"]["type"] == "string"
    assert crontab["properties"]["spec"]["properties"]["replicas"] == {"type": "integer", "minimum": 1}
    listing = schemas["com.example.stable.v1.CronTabList"]
    assert listing["properties"]["items"]["items"] == {"$ref": "#/components/schemas/com.example.stable.v1.CronTab"}
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas
    patch = openapi_v3_group_version(_resources(), "stable.example.com", "v1")["paths"][
        "/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]


def test_documents_are_cached_until_a_crd_changes() -> None:
    first = openapi_v3_group_version(_resources(), "stable.example.com", "v1")
    assert openapi_v3_group_version(_resources(), "stable.example.com", "v1") is first
    changed = copy.deepcopy(CRONTAB_CRD)
    changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["extra"] = {
        "type": "boolean"}
    before = openapi_v3_index(_resources())["paths"]["apis/stable.example.com/v1"]
    after = openapi_v3_index(_resources(changed))["paths"]["apis/stable.example.com/v1"]
    assert before != after
    doc = openapi_v3_group_version(_resources(changed), "stable.example.com", "v1")
    assert "extra" in doc["components"]["schemas"]["com.example.stable.v1.CronTab"]["properties"]["spec"]["properties"]


def test_swagger_v2_document_uses_definitions_and_body_parameters() -> None:
    doc = openapi_v2(_resources())
    assert doc["swagger"] == "2.0"
    deployment = doc["definitions"]["io.k8s.api.apps.v1.Deployment"]
    assert deployment["properties"]["spec"] == {
        "$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec",
        "description": deployment["properties"]["spec"]["description"]}
    assert doc["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["type"] == "string"
    assert doc["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    post = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"]
    body = [p for p in post["parameters"] if p["in"] == "body"]
    assert body == [{"name": "body", "in": "body", "required": True,
                     "schema": {"$ref": "#/definitions/io.k8s.api.apps.v1.Deployment"}}]
    assert {"name": "fieldValidation", "in": "query", "type": "string", "uniqueItems": True,
            "description": next(p["description"] for p in post["parameters"] if p["name"] == "fieldValidation")
            } in post["parameters"]
    assert "application/json" in post["produces"]
    assert "#/components/" not in json.dumps(doc)


def test_swagger_v2_protobuf_is_a_gnostic_document() -> None:
    body, digest = openapi_v2_protobuf(_resources())
    assert body.startswith(b"\n\x032.0")  # field 1 (swagger), length 3
    assert b"io.k8s.api.apps.v1.Deployment" in body
    assert openapi_v2_protobuf(_resources()) == (body, digest)


# --- the real kubectl ------------------------------------------------------------------
KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


def _discovery_resources(members: list[ResourceInfo]) -> list[dict[str, Any]]:
    out = []
    for info in members:
        out.append({"name": info.plural, "singularName": info.singular, "namespaced": info.namespaced,
                    "kind": info.kind, "verbs": info.verbs, "shortNames": info.short_names})
        for sub in info.subresources:
            out.append({"name": f"{info.plural}/{sub}", "singularName": "", "namespaced": info.namespaced,
                        "kind": info.kind, "verbs": ["get", "patch", "update"]})
    return out


def _fake_apiserver(resources: list[ResourceInfo], posted: list[web.Request], *,
                    advertise_field_validation: bool = True) -> web.Application:
    """`advertise_field_validation=False` hides the fieldValidation parameter from the v3
    documents, the way an old server would, so kubectl validates on its own."""
    app = web.Application()
    groups = sorted({r.group for r in resources if r.group})

    async def version(_: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "32", "gitVersion": "v1.32.4"})

    async def api(_: web.Request) -> web.Response:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})

    async def apis(_: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
             "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}} for g in groups]})

    async def resource_list(request: web.Request) -> web.Response:
        group = request.match_info.get("group", "")
        members = [r for r in resources if r.group == group]
        if not members:
            raise web.HTTPNotFound()
        return web.json_response({"kind": "APIResourceList", "apiVersion": "v1",
                                  "groupVersion": f"{group}/v1" if group else "v1",
                                  "resources": _discovery_resources(members)})

    async def v3_index(_: web.Request) -> web.Response:
        return web.json_response(openapi_v3_index(resources))

    async def v3_doc(request: web.Request) -> web.Response:
        parts = request.match_info["gv"].split("/")
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        body, digest = openapi_v3_group_version_json(resources, group, version)
        if not advertise_field_validation:
            body = body.replace(b'"name":"fieldValidation"', b'"name":"notFieldValidation"')
        return web.Response(body=body, content_type="application/json", headers={"Etag": f'"{digest}"'})

    async def v2_doc(request: web.Request) -> web.Response:
        if "protobuf" in request.headers.get("Accept", ""):
            body, _ = openapi_v2_protobuf(resources)
            return web.Response(body=body, content_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
        return web.json_response(openapi_v2(resources))

    async def create(request: web.Request) -> web.Response:
        posted.append(request)
        obj = await request.json()
        group, _, version = obj["apiVersion"].rpartition("/")
        crd = next((r.crd for r in resources if r.crd and r.group == group and r.kind == obj["kind"]), None)
        if crd is not None:
            unknown = prune(obj, crd_version_schema(crd, version))
        else:
            unknown = unknown_fields(obj, SchemaNode.builtin(group, version, obj["kind"]))
        if unknown and request.query.get("fieldValidation") == "Strict":
            status = field_validation_error(unknown, kind=obj["kind"], version=version).to_status()
            return web.json_response(status, status=status["code"])
        return web.json_response(obj, status=201)

    app.router.add_get("/version", version)
    app.router.add_get("/api", api)
    app.router.add_get("/apis", apis)
    app.router.add_get("/api/v1", resource_list)
    app.router.add_get("/apis/{group}/v1", resource_list)
    app.router.add_get("/openapi/v3", v3_index)
    app.router.add_get("/openapi/v3/{gv:.+}", v3_doc)
    app.router.add_get("/openapi/v2", v2_doc)
    app.router.add_post("/apis/apps/v1/namespaces/{ns}/deployments", create)
    app.router.add_post("/apis/stable.example.com/v1/namespaces/{ns}/crontabs", create)
    return app


class Kubectl:
    def __init__(self, kubeconfig: Path, home: Path, posted: list[web.Request]) -> None:
        self.kubeconfig, self.home, self.posted = kubeconfig, home, posted

    async def __call__(self, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.home)}
        proc = await asyncio.create_subprocess_exec(
            KUBECTL or "kubectl", *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env)
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()


async def _start(tmp_path: Path, **options: bool) -> tuple[web.AppRunner, Kubectl]:
    posted: list[web.Request] = []
    runner = web.AppRunner(_fake_apiserver(_resources(), posted, **options), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": "default"}}],
        "users": [{"name": "fake", "user": {}}],
    }))
    return runner, Kubectl(kubeconfig, tmp_path, posted)


@pytest.fixture
async def kubectl(tmp_path: Path) -> AsyncIterator[Kubectl]:
    runner, client = await _start(tmp_path)
    try:
        yield client
    finally:
        await runner.cleanup()


@pytest.fixture
async def kubectl_old_server(tmp_path: Path) -> AsyncIterator[Kubectl]:
    runner, client = await _start(tmp_path, advertise_field_validation=False)
    try:
        yield client
    finally:
        await runner.cleanup()


@needs_kubectl
async def test_kubectl_explain_prints_field_documentation(kubectl: Kubectl) -> None:
    code, out, err = await kubectl("explain", "deployment.spec.strategy")
    assert code == 0, err
    assert "GROUP:      apps" in out
    assert "KIND:       Deployment" in out
    assert "VERSION:    v1" in out
    assert "FIELD: strategy <DeploymentStrategy>" in out
    assert "DESCRIPTION:\n    The deployment strategy to use to replace existing pods with new ones." in out
    assert "DeploymentStrategy describes how to replace existing pods with new ones." in out
    assert "FIELDS:\n  rollingUpdate\t<RollingUpdateDeployment>" in out
    assert "  type\t<string>" in out


@needs_kubectl
async def test_kubectl_explain_recursive_walks_the_whole_pod(kubectl: Kubectl) -> None:
    code, out, err = await kubectl("explain", "pods", "--recursive")
    assert code == 0, err
    assert "KIND:       Pod" in out
    assert "    containers\t<[]Container> -required-" in out
    assert "      maxSurge\t<IntOrString>" not in out  # a Deployment field, not a Pod one
    assert "resources\t<ResourceRequirements>" in out
    assert "limits\t<map[string]Quantity>" in out


@needs_kubectl
async def test_kubectl_explain_custom_resource(kubectl: Kubectl) -> None:
    code, out, err = await kubectl("explain", "crontab.spec")
    assert code == 0, err
    assert "KIND:       CronTab" in out
    assert "The desired schedule of the crontab." in out
    assert "cronSpec\t<string>" in out
    assert "When to run, in cron syntax." in out


BAD_DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicaz: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx
"""


@needs_kubectl
async def test_kubectl_create_sends_strict_validation_and_reports_unknown_field(
        kubectl: Kubectl, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD_DEPLOYMENT)
    code, out, err = await kubectl("create", "-f", str(tmp_path / "bad.yaml"))
    assert code != 0
    assert [r.query.get("fieldValidation") for r in kubectl.posted] == ["Strict"]
    assert (f'Error from server (BadRequest): error when creating "{tmp_path / "bad.yaml"}": '
            'Deployment in version "v1" cannot be handled as a Deployment: '
            'strict decoding error: unknown field "spec.replicaz"') in err


@needs_kubectl
async def test_kubectl_create_dry_run_server_with_valid_object_succeeds(
        kubectl: Kubectl, tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(BAD_DEPLOYMENT.replace("replicaz", "replicas"))
    code, out, err = await kubectl("create", "-f", str(tmp_path / "good.yaml"), "--dry-run=server")
    assert code == 0, err
    assert out.strip() == "deployment.apps/web created (server dry run)"
    assert kubectl.posted[0].query.get("dryRun") == "All"


@needs_kubectl
async def test_kubectl_create_custom_resource_with_unknown_field_is_rejected(
        kubectl: Kubectl, tmp_path: Path) -> None:
    (tmp_path / "ct.yaml").write_text(
        "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata:\n  name: c\n"
        "spec:\n  cronSpec: '* * * * */5'\n  imagez: x\n")
    code, _, err = await kubectl("create", "-f", str(tmp_path / "ct.yaml"))
    assert code != 0
    assert [r.query.get("fieldValidation") for r in kubectl.posted] == ["Strict"]
    assert ('CronTab in version "v1" cannot be handled as a CronTab: strict decoding error: '
            'unknown field "spec.imagez"') in err


@needs_kubectl
async def test_kubectl_explain_from_openapi_v2_protobuf(kubectl: Kubectl) -> None:
    code, out, err = await kubectl("explain", "--output=plaintext-openapiv2", "deployment.spec.strategy")
    assert code == 0, err
    assert "KIND:     Deployment" in out
    assert "RESOURCE: strategy <Object>" in out
    assert "DeploymentStrategy describes how to replace existing pods with new ones." in out
    assert "rollingUpdate\t<Object>" in out


@needs_kubectl
async def test_kubectl_validates_on_its_own_when_the_server_lacks_field_validation(
        kubectl_old_server: Kubectl, tmp_path: Path) -> None:
    """kubectl then reads /openapi/v2 as protobuf and rejects the unknown fields itself."""
    (tmp_path / "bad.yaml").write_text(BAD_DEPLOYMENT.replace("image: nginx", "image: nginx\n        imagez: x"))
    code, _, err = await kubectl_old_server("create", "-f", str(tmp_path / "bad.yaml"))
    assert code != 0
    assert kubectl_old_server.posted == []
    assert ('error validating data: [ValidationError(Deployment.spec): unknown field "replicaz" in '
            'io.k8s.api.apps.v1.DeploymentSpec, ValidationError(Deployment.spec.template.spec.containers[0]): '
            'unknown field "imagez" in io.k8s.api.core.v1.Container]') in err
