"""Container probes, as the kubelet runs them: liveness, readiness and startup probes
with httpGet, tcpSocket, exec and grpc handlers (see `manager.ProbeManager`).

Modules: `spec` (defaults, ports, Go-formatted text), `http`, `tcp`, `exec`, `grpc`
(one handler each), `prober` (run one probe, record the Unhealthy events), `worker`
(periodic runs, thresholds, gating) and `manager` (the per-node API the pod worker uses).
"""

from kubelet.probes.manager import KillReason, ProbeManager
from kubelet.probes.spec import LIVENESS, READINESS, STARTUP, ProbeSpec

__all__ = ["LIVENESS", "READINESS", "STARTUP", "KillReason", "ProbeManager", "ProbeSpec"]
