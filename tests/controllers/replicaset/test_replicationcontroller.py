"""The ReplicationController manager: the ReplicaSet sync over RCs (map selectors,
v1/ReplicationController owner references), against the real API server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controllers.replicaset.replicationcontroller import ReplicationManager, as_replica_set
from minikube_py.client import EVENTS, PODS, ApiClient, EventRecorder, FakeClock, SharedInformerFactory
from minikube_py.client.resources import REPLICATIONCONTROLLERS
from tests.controllers.manager.harness import NS, api_server, wait_for

Obj = dict[str, Any]


def rc(name: str = "nginx", replicas: int = 2, selector: dict[str, str] | None = None) -> Obj:
    spec: Obj = {"replicas": replicas, "template": {"metadata": {"labels": {"app": name}},
                                                    "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}
    if selector is not None:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name, "namespace": NS},
            "spec": spec}


def test_map_selector_becomes_match_labels_defaulting_to_template_labels() -> None:
    assert as_replica_set(rc(selector={"app": "x"}))["spec"]["selector"] == {"matchLabels": {"app": "x"}}
    assert as_replica_set(rc())["spec"]["selector"] == {"matchLabels": {"app": "nginx"}}


async def test_replication_controller_creates_owned_pods_and_status(tmp_path: Path) -> None:
    async with api_server(tmp_path) as url, ApiClient(url, field_manager="tests") as client:
        factory = SharedInformerFactory(client)
        recorder = EventRecorder(client, "replication-controller")
        manager = ReplicationManager(client, factory, recorder, clock=FakeClock())
        factory.start()
        await factory.wait_for_cache_sync()
        try:
            await client.create(REPLICATIONCONTROLLERS, rc(selector={"app": "nginx"}), NS)
            await wait_for(lambda: manager.replica_sets.lister.get("nginx", NS) is not None, message="rc cached")
            await manager.reconcile(f"{NS}/nginx")
            pods = (await client.list(PODS, NS))["items"]
            assert len(pods) == 2
            refs = [p["metadata"]["ownerReferences"][0] for p in pods]
            assert {(r["apiVersion"], r["kind"], r["name"], r["controller"]) for r in refs} == {
                ("v1", "ReplicationController", "nginx", True)}
            assert all(p["metadata"]["generateName"] == "nginx-" for p in pods)
            await wait_for(lambda: len(manager.pods.lister.list(NS)) == 2, message="pods cached")
            manager.expectations.forget(f"{NS}/nginx")
            await manager.reconcile(f"{NS}/nginx")
            status = (await client.get(REPLICATIONCONTROLLERS, "nginx", NS))["status"]
            assert status["replicas"] == 2 and status["fullyLabeledReplicas"] == 2
            await recorder.flush()
            events = (await client.list(EVENTS, NS, field_selector="involvedObject.kind=ReplicationController"))
            messages = sorted(e["message"] for e in events["items"])
            assert messages == sorted(f"Created pod: {p['metadata']['name']}" for p in pods)
            assert {e["source"]["component"] for e in events["items"]} == {"replication-controller"}
        finally:
            await factory.shutdown()
            await recorder.close()
