"""A tiny fake API server that records the protobuf bodies real kubectl sends.

It answers `/version` (so the kubectl dispatcher picks 1.32), legacy discovery for the groups
the generators need a REST mapping for (`autoscale`, `create job --from`), GETs of objects the
test registers, and fails every POST with a 500 after recording its body: the body is all a
test needs. It runs on 127.0.0.1 with a free port in a background thread with its own event
loop, so tests can drive kubectl synchronously with `subprocess.run`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

KUBECTL = "/usr/bin/kubectl"
VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.4", "platform": "linux/amd64"}

# group/version -> [(resource, kind, namespaced)] served by legacy discovery.
RESOURCES: dict[str, list[tuple[str, str, bool]]] = {
    "v1": [("namespaces", "Namespace", False), ("serviceaccounts", "ServiceAccount", True),
           ("pods", "Pod", True), ("services", "Service", True),
           ("nodes", "Node", False)],
    "apps/v1": [("deployments", "Deployment", True), ("deployments/scale", "Scale", True)],
    "batch/v1": [("jobs", "Job", True), ("cronjobs", "CronJob", True)],
    "autoscaling/v1": [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)],
}


@dataclass
class Captured:
    method: str
    path: str
    content_type: str
    body: bytes


@dataclass
class CaptureServer:
    """Records requests; serves registered objects by URL path."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Captured] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("capture server did not start")

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        self._loop.close()

    def _serve(self, ready: threading.Event) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = self._runner.addresses[0][1]
        ready.set()
        self._loop.run_forever()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(Captured(request.method, request.path, request.content_type, body))
        if request.method == "GET":
            found = self._get(request.path)
            if found is not None:
                return web.json_response(found)
            return _status(404, "NotFound", "the server could not find the requested resource")
        return _status(500, "InternalError", "captured")

    def _get(self, path: str) -> dict[str, Any] | None:
        if path == "/version":
            return VERSION
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
        if path == "/apis":
            return _group_list()
        gv = path.removeprefix("/api/").removeprefix("/apis/")
        if gv in RESOURCES and path in (f"/api/{gv}", f"/apis/{gv}"):
            return _resource_list(gv)
        return self.objects.get(path)

    def posts(self) -> list[Captured]:
        return [r for r in self.requests if r.method in ("POST", "PUT")]


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    return web.json_response(body, status=code)


def _group_list() -> dict[str, Any]:
    groups = []
    for gv in RESOURCES:
        if "/" in gv:
            group, version = gv.split("/")
            entry = {"groupVersion": gv, "version": version}
            groups.append({"name": group, "versions": [entry], "preferredVersion": entry})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _resource_list(gv: str) -> dict[str, Any]:
    verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
    resources: list[dict[str, Any]] = [
        {"name": name, "singularName": "" if "/" in name else kind.lower(), "namespaced": namespaced,
         "kind": kind, "verbs": verbs} for name, kind, namespaced in RESOURCES[gv]]
    for entry in resources:
        if entry["kind"] == "Scale":  # `kubectl autoscale` looks for a scale subresource
            entry.update(group="autoscaling", version="v1", verbs=["get", "patch", "update"])
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


class Kubectl:
    """Runs the real kubectl against a CaptureServer with a throwaway kubeconfig and HOME."""

    def __init__(self, server: CaptureServer, home: Path) -> None:
        self.server = server
        self.home = home
        self.kubeconfig = home / "kubeconfig"
        url = f"http://127.0.0.1:{server.port}"
        self.run("config", "set-cluster", "capture", f"--server={url}", check=True)
        self.run("config", "set-context", "capture", "--cluster=capture", "--namespace=default", check=True)
        self.run("config", "use-context", "capture", check=True)

    def run(self, *args: str, check: bool = False, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
               "KUBECONFIG": str(self.kubeconfig)}
        proc = subprocess.run([KUBECTL, f"--kubeconfig={self.kubeconfig}", *args], env=env, input=stdin,
                              capture_output=True, timeout=60, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.decode()}")
        return proc

    def capture(self, *args: str) -> Captured:
        """Run a command whose POST the server fails, and return the one body it sent."""
        before = len(self.server.posts())
        proc = self.run(*args)
        posts = self.server.posts()[before:]
        assert len(posts) == 1, f"kubectl {' '.join(args)} sent {len(posts)} POSTs: {proc.stderr.decode()}"
        return posts[0]

    def dry_run(self, *args: str) -> dict[str, Any]:
        """The object kubectl would send, as its client-side dry run prints it."""
        flags = ("--dry-run=client", "-o", "json")
        cut = args.index("--") if "--" in args else len(args)  # flags go before a container command
        proc = self.run(*args[:cut], *flags, *args[cut:], check=True)
        return json.loads(proc.stdout)
