"""The kubelet's own HTTP endpoint: what the API server calls for logs, exec, attach,
port-forward, node stats and the list of pods it runs.

As on a real node, `kubectl logs/exec/attach/port-forward` go kubectl -> API server ->
this server, at the Node's `status.addresses` InternalIP and
`status.daemonEndpoints.kubeletEndpoint.Port`. (A real kubelet serves HTTPS with its own
serving certificate; here it is plain HTTP on a loopback address.)

The server knows nothing of pod workers: it asks a `PodProvider` (the kubelet agent
implements it) which pods run here, with the status the kubelet last computed, and uses
the container runtime (`kubelet.runtime.base.Runtime`) for exec and attach.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from kubelet.runtime.base import Runtime


class PodProvider(Protocol):
    """What the kubelet server needs from the kubelet (`request.app["pods"]`)."""

    runtime: Runtime

    def find_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The pod as this kubelet runs it (spec, and the status the kubelet last
        computed: containerStatuses with containerID, state, lastState), or None if
        the pod does not run on this node."""

    def pods(self) -> list[dict[str, Any]]:
        """Every pod this kubelet runs (for `/pods`)."""

    def log_path(self, pod: dict[str, Any], container: str, container_id: str) -> Path | None:
        """The CRI-format log file of one container attempt, identified by the
        `containerID` of a container status ("<runtime>://<hex>"); None if unknown."""

    async def summary(self) -> dict[str, Any]:
        """The stats Summary (`/stats/summary`): {"node": {...}, "pods": [...]} as the
        kubelet's summary API shapes it."""
