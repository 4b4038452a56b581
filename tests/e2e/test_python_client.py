"""The official `kubernetes` Python client, and curl through `kubectl proxy`."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from tests.conftest import require_tool

pytestmark = pytest.mark.e2e
kubernetes = pytest.importorskip("kubernetes")


def _api_client(cluster):
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


def test_create_list_patch_delete(mkp_cluster):
    from kubernetes import client

    with _api_client(mkp_cluster) as api_client:
        apps = client.AppsV1Api(api_client)
        body = client.V1Deployment(
            metadata=client.V1ObjectMeta(name="py", labels={"app": "py"}),
            spec=client.V1DeploymentSpec(
                replicas=2, selector=client.V1LabelSelector(match_labels={"app": "py"}),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels={"app": "py"}),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx:1.27")]))))
        created = apps.create_namespaced_deployment("default", body)
        assert created.metadata.uid and created.spec.strategy.rolling_update.max_surge == "25%"
        listed = apps.list_namespaced_deployment("default", label_selector="app=py")
        assert [d.metadata.name for d in listed.items] == ["py"]
        patched = apps.patch_namespaced_deployment("py", "default", {"spec": {"replicas": 5}})
        assert patched.spec.replicas == 5 and patched.metadata.generation == 2
        scale = apps.read_namespaced_deployment_scale("py", "default")
        assert scale.spec.replicas == 5 and scale.status.selector == "app=py"
        apps.delete_namespaced_deployment("py", "default")
        assert apps.list_namespaced_deployment("default").items == []


def test_watch_sees_added_modified_deleted(mkp_cluster):
    from kubernetes import client, watch

    with _api_client(mkp_cluster) as api_client:
        core = client.CoreV1Api(api_client)
        seen: list[tuple[str, str]] = []
        listed = core.list_namespaced_config_map("default")

        def consume() -> None:
            w = watch.Watch()
            for event in w.stream(core.list_namespaced_config_map, "default",
                                  resource_version=listed.metadata.resource_version, timeout_seconds=10):
                seen.append((event["type"], event["object"].metadata.name))
                if event["type"] == "DELETED":
                    w.stop()

        thread = threading.Thread(target=consume)
        thread.start()
        time.sleep(0.5)
        core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w"),
                                                                         data={"a": "1"}))
        core.patch_namespaced_config_map("w", "default", {"data": {"a": "2"}})
        core.delete_namespaced_config_map("w", "default")
        thread.join(timeout=15)
        assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_curl_through_kubectl_proxy_lists_pods(mkp_cluster):
    port = _free_port()
    proxy = subprocess.Popen(["/usr/bin/kubectl", "--kubeconfig", str(mkp_cluster.kubeconfig), "proxy",
                              f"--port={port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=mkp_cluster.env)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/namespaces/default/pods", timeout=2) as r:
                    body = json.loads(r.read())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert body["kind"] == "PodList" and body["metadata"]["resourceVersion"]
        curl = subprocess.run([require_tool("curl"), "-sf", f"http://127.0.0.1:{port}/api/v1/pods"], capture_output=True,
                              text=True, timeout=10)
        assert curl.returncode == 0, curl.stderr
        assert json.loads(curl.stdout)["kind"] == "PodList"
    finally:
        proxy.kill()
        proxy.wait(timeout=10)
