"""Run one probe of one container, and tell the user when it fails.

This is the kubelet's prober (pkg/kubelet/prober/prober.go): pick the handler, run it
(an error that prevented the probe from running at all is retried up to 3 times), and
record a Warning event on the pod for every failed run, since `kubectl describe pod`
is where users look:

- reason `Unhealthy`, `<Type> probe failed: <output>` when the container answered badly;
- reason `Unhealthy`, `<Type> probe errored and resulted in <result> state: <error>`
  when the probe could not be run (say a named port the container does not declare);
- reason `ProbeWarning`, `<Type> probe warning: <output>` for an HTTP redirect to
  another host (counted as a success).

The EventRecorder folds the repeats into one Event with a count ("x12 over 2m").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubelet.probes.exec import exec_probe
from kubelet.probes.grpc import grpc_probe
from kubelet.probes.http import build_request, http_probe
from kubelet.probes.spec import (
    FAILURE,
    SUCCESS,
    UNKNOWN,
    WARNING,
    Outcome,
    ProbeError,
    ProbeSpec,
    expand_static,
    resolve_port,
)
from kubelet.probes.tcp import tcp_probe

log = logging.getLogger("kubelet.probes")
MAX_RETRIES = 3
UNHEALTHY = "Unhealthy"
PROBE_WARNING = "ProbeWarning"


@dataclass
class Target:
    """The container a probe looks at."""

    pod: Mapping[str, Any]
    container: Mapping[str, Any]
    container_id: str
    pod_ip: str
    field_path: str  # spec.containers{name} or spec.initContainers{name} (sidecars)


@dataclass(frozen=True)
class Verdict:
    """What the worker counts: SUCCESS or FAILURE, or errored (thrown away)."""

    result: str
    errored: bool = False


class Prober:
    def __init__(self, runtime: Any, recorder: Any) -> None:
        self.runtime = runtime
        self.recorder = recorder

    async def probe(self, spec: ProbeSpec, target: Target) -> Verdict:
        outcome = await self.run_with_retries(spec, target)
        if outcome.error is not None:
            self._event(target, UNHEALTHY,
                        f"{spec.kind} probe errored and resulted in {outcome.result} state: {outcome.error}")
            return Verdict(FAILURE, errored=True)
        if outcome.result == SUCCESS:
            return Verdict(SUCCESS)
        if outcome.result == WARNING:
            self._event(target, PROBE_WARNING, f"{spec.kind} probe warning: {outcome.output}")
            return Verdict(SUCCESS)
        if outcome.result == FAILURE:
            self._event(target, UNHEALTHY, f"{spec.kind} probe failed: {outcome.output}")
        return Verdict(FAILURE)

    async def run_with_retries(self, spec: ProbeSpec, target: Target) -> Outcome:
        outcome = Outcome(UNKNOWN)
        for _ in range(MAX_RETRIES):
            outcome = await self.run(spec, target)
            if outcome.error is None:
                break
        return outcome

    async def run(self, spec: ProbeSpec, target: Target) -> Outcome:
        """One run of the probe's handler."""
        action, container = spec.action, target.container
        try:
            if spec.handler == "exec":
                argv = expand_static([str(a) for a in action.get("command") or []], container.get("env"))
                return await exec_probe(self.runtime, target.container_id, argv, spec.timeout)
            if spec.handler == "httpGet":
                return await http_probe(build_request(action, container, target.pod_ip), spec.timeout)
            if spec.handler == "tcpSocket":
                host = str(action.get("host") or target.pod_ip)
                return await tcp_probe(host, resolve_port(action.get("port"), container), spec.timeout)
            if spec.handler == "grpc":
                port = action.get("port")
                if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                    raise ProbeError(f"invalid port number: {port}")
                return await grpc_probe(target.pod_ip, port, str(action.get("service") or ""), spec.timeout)
        except ProbeError as exc:
            return Outcome(UNKNOWN, "", str(exc))
        meta = target.pod.get("metadata") or {}
        return Outcome(UNKNOWN, "", f"missing probe handler for {meta.get('name')}_{meta.get('namespace')}"
                                    f"({meta.get('uid')}):{container.get('name')}")

    def _event(self, target: Target, reason: str, message: str) -> None:
        log.info("%s %s/%s container %s: %s", reason, (target.pod.get("metadata") or {}).get("namespace"),
                 (target.pod.get("metadata") or {}).get("name"), target.container.get("name"), message)
        if self.recorder is None:
            return
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": target.pod.get("metadata") or {}}
        self.recorder.event(pod, "Warning", reason, message, field_path=target.field_path)
