"""`mkp node add|list|stop|start|delete`: nodes joined to a running cluster one at a time.

`mkp up --fake-nodes N` runs N fake nodes in one process (component `kubelet`). A node
added with `mkp node add --fake [NAME]` gets a process of its own (component
`node-<NAME>`, the same `mkp kubelet --fake --node NAME` a user could start by hand), so
it can be stopped and started alone: `mkp node stop NAME` ends that process and nothing
else, exactly what a crashed kubelet looks like to the control plane (the Node and its
Lease stay, and stop being renewed, so the node lifecycle controller marks it NotReady
and evicts its pods). `mkp node start NAME` resumes it; `mkp node delete NAME` stops it
and deletes its Node object. Added nodes are recorded in `cluster.json`, so `mkp down` /
`mkp up` keep them (a stopped node stays stopped).

These commands talk to the API server through plain HTTP on loopback, like `readyz`.
"""

from __future__ import annotations

import http.client
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from minikube_py import process
from minikube_py.cluster import (
    FAKE_NODE_PREFIX,
    FAKE_NODES,
    ClusterError,
    Launch,
    added_node,
    cluster_lock,
    components_for,
    fake_node_names,
    log_tail,
    readyz,
    start_component,
)
from minikube_py.config import LOOPBACK, STOP_GRACE_SECONDS, ClusterPaths, ClusterState

NODE_READY_TIMEOUT = 15.0  # seconds for an added node to register and report Ready
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass
class NodeRow:
    """One line of `mkp node list`."""

    name: str
    component: str  # the mkp component that runs it ("" for a node no component runs)
    process: str  # running / stopped / -
    ready: str  # the Node's Ready condition status, or "-" if it has none


def _api(state: ClusterState, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(LOOPBACK, state.port, timeout=10)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, (json.loads(raw) if raw else None)
    except OSError as exc:
        raise ClusterError(f"cannot reach the API server on port {state.port}: {exc}") from exc
    finally:
        conn.close()


def _running_state(paths: ClusterPaths) -> ClusterState:
    state = ClusterState.load(paths)
    if state is None or not readyz(state.port):
        raise ClusterError(f'cluster "{paths.name}" is not running (mkp up --name {paths.name})')
    return state


def _node_objects(state: ClusterState) -> dict[str, dict[str, Any]]:
    code, body = _api(state, "GET", "/api/v1/nodes")
    if code != 200:
        raise ClusterError(f"listing nodes failed: HTTP {code}: {(body or {}).get('message', '')}")
    return {n["metadata"]["name"]: n for n in body.get("items") or []}


def _ready(node: dict[str, Any] | None) -> str:
    for cond in ((node or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("status", "-"))
    return "-"


def _main_fake_names(state: ClusterState) -> list[str]:
    return fake_node_names(state.fake_nodes)


def _added(state: ClusterState, name: str) -> dict[str, str] | None:
    return next((n for n in state.added_nodes if n["name"] == name), None)


def _pick_name(state: ClusterState, taken: set[str]) -> str:
    i = state.fake_nodes + 1
    while f"{FAKE_NODE_PREFIX}{i}" in taken:
        i += 1
    return f"{FAKE_NODE_PREFIX}{i}"


def _validate(name: str, capacity: str) -> None:
    if len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
        raise ClusterError(f'invalid node name "{name}": a lowercase RFC 1123 subdomain must consist of lower '
                           "case alphanumeric characters, '-' or '.', and must start and end with an "
                           "alphanumeric character")
    if capacity:
        from kubelet.fake.config import parse_capacity  # the fake node's own parser, so errors match

        try:
            parse_capacity(capacity)
        except ValueError as exc:
            raise ClusterError(f"--capacity: {exc}") from exc


def _start_node(paths: ClusterPaths, state: ClusterState, name: str, capacity: str) -> None:
    """Start the node's process and wait until its Node reports Ready."""
    component = added_node(name, capacity)
    proc, offset = start_component(component, Launch(paths, state.port, state.server))
    deadline = time.monotonic() + NODE_READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            paths.pid(component.name).unlink(missing_ok=True)
            log = paths.log(component.name)
            raise ClusterError(f"node {name} exited with code {proc.returncode}; last lines of {log}:\n"
                               f"{log_tail(log, offset)}")
        code, node = _api(state, "GET", f"/api/v1/nodes/{name}")
        if code == 200 and _ready(node) == "True":
            return
        time.sleep(0.1)
    raise ClusterError(f"node {name} did not report Ready within {NODE_READY_TIMEOUT:.0f}s "
                       f"(its log: {paths.log(component.name)})")


def _stop_process(paths: ClusterPaths, name: str) -> bool:
    component = added_node(name).name
    pid = process.running_component(paths.pid(component), paths.home, component)
    if pid is not None:
        process.stop([pid], grace=STOP_GRACE_SECONDS)
    paths.pid(component).unlink(missing_ok=True)
    return pid is not None


def _sync_components(state: ClusterState) -> None:
    state.components = [c.name for c in components_for(state)]


def add(paths: ClusterPaths, *, name: str | None = None, capacity: str = "") -> str:
    """`mkp node add --fake [NAME]`: start a fake node and wait for it to be Ready."""
    with cluster_lock(paths):
        state = _running_state(paths)
        if state.mode != "multi-process":
            raise ClusterError("mkp node add needs the multi-process mode (mkp down, then mkp up)")
        existing = _node_objects(state)
        taken = {*existing, *_main_fake_names(state), *(n["name"] for n in state.added_nodes)}
        name = name or _pick_name(state, taken)
        _validate(name, capacity)
        if name in taken:
            raise ClusterError(f'node "{name}" already exists')
        _start_node(paths, state, name, capacity)
        state.added_nodes.append({"name": name, "capacity": capacity})
        _sync_components(state)
        state.save(paths)
        return name


def _require_added(state: ClusterState, name: str) -> dict[str, str]:
    node = _added(state, name)
    if node is not None:
        return node
    if name in _main_fake_names(state):
        raise ClusterError(f"node {name} runs in the shared fake-nodes process (mkp up --fake-nodes "
                           f"{state.fake_nodes}); only nodes added with `mkp node add` can be handled one by one")
    raise ClusterError(f'node "{name}" was not added with `mkp node add` (see `mkp node list`)')


def stop(paths: ClusterPaths, name: str) -> bool:
    """`mkp node stop NAME`: end the node's process, leaving its Node and Lease behind."""
    with cluster_lock(paths):
        state = _running_state(paths)
        _require_added(state, name)
        stopped = _stop_process(paths, name)
        if name not in state.stopped_nodes:
            state.stopped_nodes.append(name)
        _sync_components(state)
        state.save(paths)
        return stopped


def start(paths: ClusterPaths, name: str) -> None:
    """`mkp node start NAME`: run a stopped node's process again."""
    with cluster_lock(paths):
        state = _running_state(paths)
        node = _require_added(state, name)
        component = added_node(name).name
        if process.running_component(paths.pid(component), paths.home, component) is None:
            _start_node(paths, state, name, node.get("capacity", ""))
        state.stopped_nodes = [n for n in state.stopped_nodes if n != name]
        _sync_components(state)
        state.save(paths)


def delete(paths: ClusterPaths, name: str) -> None:
    """`mkp node delete NAME`: stop the node's process and delete its Node object."""
    with cluster_lock(paths):
        state = _running_state(paths)
        _require_added(state, name)
        _stop_process(paths, name)
        code, body = _api(state, "DELETE", f"/api/v1/nodes/{name}")
        if code not in (200, 202, 404):
            raise ClusterError(f"deleting node {name} failed: HTTP {code}: {(body or {}).get('message', '')}")
        state.added_nodes = [n for n in state.added_nodes if n["name"] != name]
        state.stopped_nodes = [n for n in state.stopped_nodes if n != name]
        _sync_components(state)
        state.save(paths)


def rows(paths: ClusterPaths) -> list[NodeRow]:
    """`mkp node list`: every Node, with the component that runs it and its process state."""
    state = _running_state(paths)
    objects = _node_objects(state)
    owners: dict[str, str] = {n: FAKE_NODES.name for n in _main_fake_names(state)}
    owners |= {n["name"]: added_node(n["name"]).name for n in state.added_nodes}
    result = []
    for name in sorted({*objects, *owners}):
        component = owners.get(name, "")
        if component:
            alive = process.running_component(paths.pid(component), paths.home, component) is not None
            proc = "running" if alive else "stopped"
        else:
            proc = "-"
        result.append(NodeRow(name, component, proc, _ready(objects.get(name)) if name in objects else "(no Node)"))
    return result
