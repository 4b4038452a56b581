"""The node lifecycle controller's settings (kube-controller-manager flags, 1.32 defaults).

Durations are seconds here; `parse_duration` reads the flags' Go form ("50s", "1m30s").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controllers.nodelifecycle.zones import DisruptionConfig

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


@dataclass(frozen=True)
class NodeLifecycleConfig:
    node_monitor_grace_period: float = 50.0  # --node-monitor-grace-period (40s before 1.32)
    node_startup_grace_period: float = 60.0  # --node-startup-grace-period
    node_monitor_period: float = 5.0  # --node-monitor-period
    disruption: DisruptionConfig = field(default_factory=DisruptionConfig)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> NodeLifecycleConfig:
        """The settings among the controller-manager's options (missing: defaults)."""
        fields = ("node_monitor_grace_period", "node_startup_grace_period", "node_monitor_period")
        rates = ("node_eviction_rate", "secondary_node_eviction_rate", "large_cluster_size_threshold",
                 "unhealthy_zone_threshold")
        disruption = DisruptionConfig(**{f: type(getattr(DisruptionConfig, f))(options[f]) for f in rates
                                         if options.get(f) is not None})
        return cls(**{f: float(options[f]) for f in fields if options.get(f) is not None}, disruption=disruption)


def parse_duration(text: str) -> float:
    """A Go duration ("40s", "1m30s", "500ms") or plain seconds, as seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)
