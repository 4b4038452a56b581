"""Versioned config snapshots, as a control plane feeds them (xDS's state-of-the-world
shape): `SnapshotApplier.apply(snapshot, version)` validates the whole snapshot, swaps
it in atomically (ProxyServer.swap: new listeners and clusters, the old generation
drains) and answers like an xDS client does: an ACK carries the new version_info; a NACK
keeps the last accepted version_info and gives `error_detail` (the ConfigError's path and
message), while the old config keeps serving. Snapshots apply one at a time, in order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from proxy.engine.config import Bootstrap, ConfigError, from_dict
from proxy.engine.server import ProxyServer


@dataclass(frozen=True)
class Ack:
    """The reply to one snapshot (a DiscoveryRequest's version_info / response_nonce /
    error_detail): `accepted` False is a NACK."""

    version_info: str
    response_nonce: str
    error_detail: str | None = None

    @property
    def accepted(self) -> bool:
        return self.error_detail is None


class SnapshotApplier:
    """Applies snapshots to one ProxyServer; `version_info` is the last accepted one."""

    def __init__(self, server: ProxyServer, *, version_info: str = "") -> None:
        self.server = server
        self.version_info = version_info
        self.last_nack: Ack | None = None
        self._lock = asyncio.Lock()

    async def apply(self, snapshot: Bootstrap | dict[str, Any], version: str, nonce: str = "") -> Ack:
        async with self._lock:
            try:
                boot = snapshot if isinstance(snapshot, Bootstrap) else from_dict(snapshot)
                await self.server.swap(boot)
            except ConfigError as e:
                return self._nack(nonce, str(e))
            except OSError as e:  # a listener address that cannot be bound
                return self._nack(nonce, f"listener bind: {e}")
            self.version_info = version
            self.last_nack = None
            return Ack(version, nonce)

    def _nack(self, nonce: str, detail: str) -> Ack:
        ack = Ack(self.version_info, nonce, detail)
        self.last_nack = ack
        return ack
