"""The status subresource: what a /status write may change, per kind."""

from __future__ import annotations

import orjson


async def test_status_writes_pass_annotations_only_where_kubernetes_does(client):
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {"a": "1"}},
           "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {
               "metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    path = "/apis/apps/v1/namespaces/default/deployments"
    resp = await client.post(path, data=orjson.dumps(dep), headers={"Content-Type": "application/json"})
    assert resp.status == 201
    patch = {"metadata": {"labels": {"a": "2"}, "annotations": {"deployment.kubernetes.io/revision": "1"}},
             "spec": {"replicas": 9}, "status": {"observedGeneration": 1}}
    resp = await client.patch(f"{path}/d/status", data=orjson.dumps(patch),
                              headers={"Content-Type": "application/merge-patch+json"})
    got = await resp.json()
    assert resp.status == 200, got
    assert got["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "1"}
    assert got["metadata"]["labels"] == {"a": "1"} and got["spec"]["replicas"] == 1
    assert got["status"] == {"observedGeneration": 1}
    ns_path = "/api/v1/namespaces/default/status"
    resp = await client.patch(ns_path, data=b'{"metadata":{"annotations":{"x":"y"}}}',
                              headers={"Content-Type": "application/merge-patch+json"})
    assert "x" not in ((await resp.json())["metadata"].get("annotations") or {})  # namespaces reset metadata
