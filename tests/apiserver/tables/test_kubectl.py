"""The real kubectl 1.32 renders our Tables as it renders a cluster's.

A tiny HTTP server on 127.0.0.1 answers kubectl's /version, legacy discovery and list
requests with `build_table` output; the test compares kubectl's printed text. This
proves the envelope (column priorities, PartialObjectMetadata rows for -A and
--show-labels, full objects for --sort-by, null cells) works with the real client.
Skipped when kubectl is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from apiserver.tables import Printer, build_table, crd_printer, printer_for
from tests.apiserver.tables.helpers import NOW, ago, meta

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


def _pod(
    name: str, ns: str, *, restarts: int = 0, phase: str = "Running", node: str = "node-1"
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "name": "app",
        "ready": phase == "Running",
        "restartCount": restarts,
        "state": {"running": {}},
    }
    if restarts:
        status["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": ago(minutes=7)}}
    if phase != "Running":
        status["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(name, age={"hours": 3}, namespace=ns, labels={"app": name.split("-")[0]}),
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx"}]},
        "status": {"phase": "Running", "podIP": "10.244.0.5", "containerStatuses": [status]},
    }


PODS = [
    _pod("web-1", "default", restarts=2),
    _pod("api-1", "default", phase="Crash"),
    _pod("dns-1", "kube-system"),
]
SERVICES = [
    {
        "metadata": meta("web", age={"days": 2}, namespace="default"),
        "spec": {
            "type": "NodePort",
            "clusterIPs": ["10.96.12.7"],
            "selector": {"app": "web"},
            "ports": [{"port": 80, "nodePort": 30080}],
        },
    }
]
DEPLOYMENTS = [
    {
        "metadata": meta("web", age={"minutes": 40}, namespace="default"),
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}},
        },
        "status": {"readyReplicas": 1, "updatedReplicas": 2, "availableReplicas": 1},
    }
]
WIDGET_COLUMNS = [
    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
WIDGETS = [
    {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": meta("big", namespace="default"),
        "spec": {"size": 10},
        "status": {"phase": "Ready"},
    },
    {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": meta("new", namespace="default"),
        "spec": {},
    },
]
ROLES = [{"metadata": meta("reader", namespace="default")}]

ROUTES: dict[str, tuple[Printer, list[dict[str, Any]]]] = {
    "pods": (printer_for("", "Pod"), PODS),
    "services": (printer_for("", "Service"), SERVICES),
    "deployments": (printer_for("apps", "Deployment"), DEPLOYMENTS),
    "widgets": (crd_printer(WIDGET_COLUMNS), WIDGETS),
    "roles": (printer_for("rbac.authorization.k8s.io", "Role"), ROLES),
}


def _resources(*entries: tuple[str, str, str]) -> list[dict[str, Any]]:
    return [
        {
            "name": n,
            "singularName": n[:-1],
            "namespaced": True,
            "kind": k,
            "verbs": ["get", "list"],
            "shortNames": [s],
        }
        for n, k, s in entries
    ]


DISCOVERY = {
    "/version": {"major": "1", "minor": "32", "gitVersion": "v1.32.0"},
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": g,
                "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"},
            }
            for g in ("apps", "example.com", "rbac.authorization.k8s.io")
        ],
    },
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": _resources(("pods", "Pod", "po"), ("services", "Service", "svc")),
    },
    "/apis/apps/v1": {
        "kind": "APIResourceList",
        "groupVersion": "apps/v1",
        "resources": _resources(("deployments", "Deployment", "deploy")),
    },
    "/apis/example.com/v1": {
        "kind": "APIResourceList",
        "groupVersion": "example.com/v1",
        "resources": _resources(("widgets", "Widget", "wd")),
    },
    "/apis/rbac.authorization.k8s.io/v1": {
        "kind": "APIResourceList",
        "groupVersion": "rbac.authorization.k8s.io/v1",
        "resources": _resources(("roles", "Role", "ro")),
    },
}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _reply(self, body: Any, code: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path in DISCOVERY:
            return self._reply(DISCOVERY[url.path])
        parts = url.path.strip("/").split("/")
        route = ROUTES.get(parts[-1])
        if route is None:
            return self._reply({"kind": "Status", "status": "Failure", "code": 404}, 404)
        printer, objects = route
        if "namespaces" in parts:
            ns = parts[parts.index("namespaces") + 1]
            objects = [o for o in objects if o["metadata"].get("namespace") == ns]
        include = parse_qs(url.query).get("includeObject", ["Metadata"])[0]
        self._reply(build_table(printer, objects, include_object=include, resource_version="99", now=NOW))


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    cache: Path = tmp_path_factory.mktemp("kubectl-cache")
    base = ["kubectl", f"--server=http://127.0.0.1:{server.server_address[1]}", f"--cache-dir={cache}"]
    env = {"KUBECONFIG": "/dev/null", "HOME": str(cache), "PATH": "/usr/bin:/bin"}

    def run(*args: str) -> str:
        done = subprocess.run([*base, *args], capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    yield run
    server.shutdown()
    server.server_close()


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def test_get_pods(kubectl: Any) -> None:
    assert _lines(kubectl("get", "pods")) == [
        "NAME    READY   STATUS             RESTARTS     AGE",
        "web-1   1/1     Running            2 (7m ago)   3h",
        "api-1   0/1     CrashLoopBackOff   0            3h",
    ]


def test_get_pods_wide(kubectl: Any) -> None:
    assert _lines(kubectl("get", "pods", "-o", "wide"))[:2] == [
        "NAME    READY   STATUS             RESTARTS     AGE   IP           NODE     NOMINATED NODE   READINESS GATES",
        "web-1   1/1     Running            2 (7m ago)   3h    10.244.0.5   node-1   <none>           <none>",
    ]


def test_get_pods_all_namespaces_reads_row_metadata(kubectl: Any) -> None:
    assert _lines(kubectl("get", "pods", "-A", "--show-labels")) == [
        "NAMESPACE     NAME    READY   STATUS             RESTARTS     AGE   LABELS",
        "default       web-1   1/1     Running            2 (7m ago)   3h    app=web",
        "default       api-1   0/1     CrashLoopBackOff   0            3h    app=api",
        "kube-system   dns-1   1/1     Running            0            3h    app=dns",
    ]


def test_sort_by_uses_full_objects(kubectl: Any) -> None:
    names = [line.split()[0] for line in _lines(kubectl("get", "pods", "--sort-by=.metadata.name"))[1:]]
    assert names == ["api-1", "web-1"]


def test_get_services_wide(kubectl: Any) -> None:
    assert _lines(kubectl("get", "svc", "-o", "wide")) == [
        "NAME   TYPE       CLUSTER-IP   EXTERNAL-IP   PORT(S)        AGE   SELECTOR",
        "web    NodePort   10.96.12.7   <none>        80:30080/TCP   2d    app=web",
    ]


def test_get_deployments(kubectl: Any) -> None:
    assert _lines(kubectl("get", "deploy")) == [
        "NAME   READY   UP-TO-DATE   AVAILABLE   AGE",
        "web    1/2     2            1           40m",
    ]


def test_get_custom_resources_with_null_cells(kubectl: Any) -> None:
    assert _lines(kubectl("get", "widgets")) == [
        "NAME   SIZE   PHASE   AGE",
        "big    10     Ready   5m",
        "new                   5m",  # null cells print blank
    ]


def test_get_kind_without_printer(kubectl: Any) -> None:
    assert _lines(kubectl("get", "roles")) == [
        "NAME     CREATED AT",
        "reader   2025-03-01T11:55:00Z",
    ]
