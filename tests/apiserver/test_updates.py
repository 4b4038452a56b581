"""Update rules: immutable uid, generation on /scale, resourceVersion preconditions in
every patch type."""

from __future__ import annotations

import orjson

from tests.apiserver.conftest import CM, create

MERGE = {"Content-Type": "application/merge-patch+json"}
JSONPATCH = {"Content-Type": "application/json-patch+json"}
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


async def test_changing_uid_is_invalid_and_omitting_it_keeps_it(client):
    cm = await create(client, "c")
    resp = await client.patch(f"{CM}/c", data=b'{"metadata":{"uid":"00000000-0000-0000-0000-000000000000"}}',
                              headers=MERGE)
    status = await resp.json()
    assert resp.status == 422 and status["details"]["causes"][0]["field"] == "metadata.uid"
    cm["metadata"].pop("uid")
    cm["data"] = {"k": "v"}
    resp = await client.put(f"{CM}/c", data=orjson.dumps(cm), headers={"Content-Type": "application/json"})
    assert resp.status == 200 and (await resp.json())["metadata"]["uid"]


async def test_scale_bumps_generation(client):
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {
               "metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    resp = await client.post(DEPLOYMENTS, data=orjson.dumps(dep), headers={"Content-Type": "application/json"})
    assert resp.status == 201
    resp = await client.patch(f"{DEPLOYMENTS}/d/scale", data=b'{"spec":{"replicas":5}}', headers=MERGE)
    assert resp.status == 200 and (await resp.json())["spec"]["replicas"] == 5
    got = await (await client.get(f"{DEPLOYMENTS}/d")).json()
    assert got["spec"]["replicas"] == 5 and got["metadata"]["generation"] == 2


async def test_stale_resource_version_in_any_patch_type_conflicts(client):
    cm = await create(client, "c")
    stale = cm["metadata"]["resourceVersion"]
    await client.patch(f"{CM}/c", data=b'{"data":{"a":"1"}}', headers=MERGE)
    ops = [{"op": "replace", "path": "/metadata/resourceVersion", "value": stale},
           {"op": "add", "path": "/data/b", "value": "2"}]
    resp = await client.patch(f"{CM}/c", data=orjson.dumps(ops), headers=JSONPATCH)
    assert resp.status == 409 and (await resp.json())["reason"] == "Conflict"
    resp = await client.patch(f"{CM}/c", data=orjson.dumps({"metadata": {"resourceVersion": stale}}), headers=MERGE)
    assert resp.status == 409


async def test_status_write_with_another_uid_is_rejected(client):
    await create(client, "c")
    pods = "/api/v1/namespaces/default/pods"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    created = await (await client.post(pods, data=orjson.dumps(pod), headers={"Content-Type": "application/json"})).json()
    guard = {"metadata": {"uid": "11111111-1111-1111-1111-111111111111"}, "status": {"phase": "Running"}}
    resp = await client.patch(f"{pods}/p/status", data=orjson.dumps(guard),
                              headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert resp.status == 422
    guard["metadata"]["uid"] = created["metadata"]["uid"]
    resp = await client.patch(f"{pods}/p/status", data=orjson.dumps(guard),
                              headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert resp.status == 200 and (await resp.json())["status"]["phase"] == "Running"


async def test_binding_with_another_uid_conflicts_and_gated_pods_say_so(client):
    pods = "/api/v1/namespaces/default/pods"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "g"},
           "spec": {"schedulingGates": [{"name": "example.com/wait"}], "containers": [{"name": "c", "image": "nginx"}]}}
    created = await (await client.post(pods, data=orjson.dumps(pod), headers={"Content-Type": "application/json"})).json()
    [cond] = created["status"]["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("PodScheduled", "False", "SchedulingGated")
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "g", "uid": "not-the-uid"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}}
    resp = await client.post(f"{pods}/g/binding", data=orjson.dumps(binding), headers={"Content-Type": "application/json"})
    assert resp.status == 409 and "Precondition failed" in (await resp.json())["message"]
    binding["metadata"]["uid"] = created["metadata"]["uid"]
    resp = await client.post(f"{pods}/g/binding", data=orjson.dumps(binding), headers={"Content-Type": "application/json"})
    assert resp.status == 201


async def test_daemonset_template_generation_counts_template_changes_only(client):
    """apps/v1 DaemonSets carry spec.templateGeneration in an annotation the server owns."""
    url = "/apis/apps/v1/namespaces/default/daemonsets"
    key = "deprecated.daemonset.template.generation"
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
          "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": {
              "metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "agent:1"}]}}}}
    resp = await client.post(url, data=orjson.dumps(ds), headers={"Content-Type": "application/json"})
    assert resp.status == 201 and (await resp.json())["metadata"]["annotations"][key] == "1"

    async def patched(body: dict) -> dict:
        resp = await client.patch(f"{url}/agent", data=orjson.dumps(body), headers=MERGE)
        assert resp.status == 200
        return await resp.json()

    image = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "agent:2"}]}}}}
    got = await patched(image)
    assert got["metadata"]["annotations"][key] == "2" and got["metadata"]["generation"] == 2
    got = await patched({"metadata": {"labels": {"tier": "node"}}, "spec": {"minReadySeconds": 5}})
    assert got["metadata"]["annotations"][key] == "2" and got["metadata"]["generation"] == 3
    got = await patched({"metadata": {"annotations": {key: "9"}}})  # not the client's to set
    assert got["metadata"]["annotations"][key] == "2"
    got = await patched({"metadata": {"annotations": {key: None}}})
    assert got["metadata"]["annotations"][key] == "2"


async def test_empty_metadata_maps_and_lists_are_not_stored(client):
    """ObjectMeta's labels, annotations, finalizers and ownerReferences are omitempty."""
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "e", "labels": {}, "annotations": {}, "finalizers": [], "ownerReferences": []}}
    resp = await client.post(CM, data=orjson.dumps(body), headers={"Content-Type": "application/json"})
    created = await resp.json()
    assert resp.status == 201
    assert not {"labels", "annotations", "finalizers", "ownerReferences"} & set(created["metadata"])
    fields = orjson.dumps(created["metadata"].get("managedFields") or []).decode()
    assert "f:labels" not in fields and "f:annotations" not in fields
    resp = await client.patch(f"{CM}/e", data=b'{"metadata":{"labels":{"a":"b"}}}', headers=MERGE)
    assert (await resp.json())["metadata"]["labels"] == {"a": "b"}
    resp = await client.patch(f"{CM}/e", data=b'{"metadata":{"labels":{"a":null}}}', headers=MERGE)
    assert "labels" not in (await resp.json())["metadata"]
