"""The kubelet's answers to its HTTP server (`kubelet.server.PodProvider`): which pods
run here, where a container attempt's log is, and the stats Summary."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelet.runtime.logs import pod_log_dir
from kubelet.stats import SummaryBuilder

if TYPE_CHECKING:
    from kubelet.agent import Kubelet


class Provider:
    def __init__(self, kubelet: Kubelet) -> None:
        self.kubelet = kubelet
        self.runtime = kubelet.runtime
        self._stats = SummaryBuilder(kubelet.config.node, root_dir=kubelet.config.root)

    def _workers(self) -> list[Any]:
        return [w for w in self.kubelet.workers.values() if not w.terminated]

    def find_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        uid = self.kubelet.by_key.get(f"{namespace}/{name}")
        worker = self.kubelet.workers.get(uid) if uid else None
        return worker.pod if worker is not None else None

    def sandbox(self, namespace: str, name: str) -> Any:
        """The pod's runtime Sandbox (its IP and network namespace), or None."""
        uid = self.kubelet.by_key.get(f"{namespace}/{name}")
        worker = self.kubelet.workers.get(uid) if uid else None
        return worker.sandbox if worker is not None else None

    def pods(self) -> list[dict[str, Any]]:
        return [w.pod for w in self._workers()]

    def log_path(self, pod: dict[str, Any], container: str, container_id: str) -> Path | None:
        uid = (pod.get("metadata") or {}).get("uid")
        worker = self.kubelet.workers.get(uid)
        if worker is None:
            return None
        record = worker.records.get(container)
        if record is None:
            return None
        for state in (record.current, record.previous):
            if state is not None and state.id == container_id:
                if state.log_path is not None:
                    return Path(state.log_path)
                return pod_log_dir(worker.ctx.root, pod) / container / f"{state.attempt}.log"
        return None

    async def summary(self) -> dict[str, Any]:
        pods = []
        for worker in self._workers():
            refs = [(r.name, self.runtime, r.current.id, r.current.started_at) for r in worker.records.values()
                    if r.running and r.current is not None and r.current.started_at is not None]
            pods.append((worker.pod, refs))
        return self._stats.summary(pods)
