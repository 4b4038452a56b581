"""The HTTP filters of a connection manager at run time (flow.HttpFilterRuntime): built
from `http_connection_manager.http_filters`, in order; the router filter is the flow
itself and must come last."""

from __future__ import annotations

from proxy.engine.config import ConfigError
from proxy.engine.config.http_filters import Router
from proxy.engine.config.listener import HttpConnectionManager
from proxy.engine.flow import HttpFilterRuntime
from proxy.engine.telemetry.stats import StatsStore


def build(hcm: HttpConnectionManager, path: str, store: StatsStore) -> list[HttpFilterRuntime]:
    """The filters before the router; ConfigError (with its path) for what is not runnable."""
    out: list[HttpFilterRuntime] = []
    filters = [f for f in hcm.http_filters if not f.disabled]
    for i, f in enumerate(filters):
        where = f"{path}.http_filters[{i}]"
        if isinstance(f.typed_config, Router):
            if i != len(filters) - 1:
                raise ConfigError(where, "the router filter must be the last HTTP filter")
            continue
        raise ConfigError(where, f"HTTP filter {f.name!r} is not yet supported at run time")
    return out
