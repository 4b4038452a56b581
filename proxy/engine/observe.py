"""What sees finished requests (flow._Flow._end): access logs, Istio's standard metrics,
traces. `Telemetry` is one per ProxyServer (shared by config generations, so counters
survive a swap); `build` makes one listener's observers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from proxy.engine.config import Bootstrap
from proxy.engine.config.listener import HttpConnectionManager, Listener


class Telemetry:
    """Process-wide telemetry state: metric registries, log writers, span emitters."""

    def close(self) -> None:
        pass


def build(hcm: HttpConnectionManager, listener: Listener, boot: Bootstrap, telemetry: Telemetry,
          path: str) -> tuple[list[Any], list[Callable[[Any], None]]]:
    """(filters to run first, e.g. trace context and x-request-id; observers of finished flows)."""
    return [], []
