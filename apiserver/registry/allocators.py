"""ClusterIP and NodePort allocation for Services.

Each allocated value is one key in the store (`/allocations/clusterips/<ip>`,
`/allocations/nodeports/<port>`), claimed with create-if-absent. That makes an
allocation atomic across concurrent requests and API server processes, as Kubernetes'
IPAddress objects do. A value is released when its Service is deleted or stops needing
it; a repair pass (at start-up and every minute) releases values no Service holds, which
covers a create that failed after allocating or a crash in between, like kube-apiserver's
repair controllers.

Dynamic picks are random and prefer the upper part of the range, leaving the lower
part to addresses users choose themselves (KEP-3070).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import orjson

from apiserver import errors
from apiserver.storage.interface import KeyExistsError, KeyNotFoundError, Storage

log = logging.getLogger("apiserver.allocators")
Obj = dict[str, Any]

DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
NODE_PORT_RANGE = (30000, 32767)
IP_PREFIX = "/allocations/clusterips/"
PORT_PREFIX = "/allocations/nodeports/"
REPAIR_GRACE_SECONDS = 60.0
_RANDOM_TRIES = 64


@dataclass
class ServiceAllocations:
    cidr: ipaddress.IPv4Network | ipaddress.IPv6Network
    ports: tuple[int, int] = NODE_PORT_RANGE

    @classmethod
    def from_config(cls, cidr: str = DEFAULT_SERVICE_CIDR) -> ServiceAllocations:
        return cls(ipaddress.ip_network(cidr, strict=False))

    @property
    def first_ip(self) -> str:
        """The address of the `kubernetes` Service: the first usable one."""
        return str(self.cidr.network_address + 1)

    # --- the values a Service holds ------------------------------------------------
    @staticmethod
    def needs_cluster_ip(spec: Obj) -> bool:
        return spec.get("type", "ClusterIP") != "ExternalName" and spec.get("clusterIP") != "None"

    @staticmethod
    def needs_node_ports(spec: Obj) -> bool:
        kind = spec.get("type", "ClusterIP")
        return kind == "NodePort" or (kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True))

    @staticmethod
    def held(service: Obj | None) -> tuple[set[str], set[int]]:
        if not service:
            return set(), set()
        spec = service.get("spec") or {}
        ips = {ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None"}
        ports = {p["nodePort"] for p in spec.get("ports") or [] if isinstance(p, dict) and p.get("nodePort")}
        if spec.get("healthCheckNodePort"):
            ports.add(spec["healthCheckNodePort"])
        return ips, ports


class Allocator:
    def __init__(self, storage: Storage, config: ServiceAllocations) -> None:
        self.storage = storage
        self.config = config

    async def _claim(self, key: str, owner: str) -> bool:
        value = orjson.dumps({"owner": owner, "at": time.time()})
        try:
            await self.storage.create(key, value)
        except KeyExistsError:
            current = await self.storage.get(key)
            return current is not None and orjson.loads(current.value).get("owner") == owner
        return True

    async def release_ip(self, ip: str) -> None:
        with contextlib.suppress(KeyNotFoundError):
            await self.storage.delete(IP_PREFIX + ip)

    async def release_port(self, port: int) -> None:
        with contextlib.suppress(KeyNotFoundError):
            await self.storage.delete(f"{PORT_PREFIX}{port}")

    async def allocate_ip(self, wanted: str, owner: str, field: str) -> str:
        cidr = self.config.cidr
        if wanted:
            try:
                address = ipaddress.ip_address(wanted)
            except ValueError:
                raise errors.invalid_object("Service", "", owner.split("/")[-1], [
                    errors.invalid(field, wanted, "must be a valid IP address")]) from None
            if address not in cidr or address in (cidr.network_address, cidr.broadcast_address):
                raise _alloc_error(owner, field, [wanted], f"failed to allocate IP {wanted}: the provided IP "
                                   f"({wanted}) is not in the valid range. The range of valid IPs is {cidr}")
            if not await self._claim(IP_PREFIX + wanted, owner):
                raise _alloc_error(owner, field, [wanted], f"failed to allocate IP {wanted}: provided IP is already allocated")
            return wanted
        size = cidr.num_addresses
        low = 2 + min(max(size // 16, 16), 256) if size > 32 else 2  # .1 is the kubernetes Service
        for _ in range(_RANDOM_TRIES):
            candidate = str(cidr.network_address + random.randrange(low, size - 1))
            if await self._claim(IP_PREFIX + candidate, owner):
                return candidate
        for offset in range(2, size - 1):
            candidate = str(cidr.network_address + offset)
            if await self._claim(IP_PREFIX + candidate, owner):
                return candidate
        raise errors.StatusError(500, "InternalError", "Internal error occurred: failed to allocate a serviceIP: range is full")

    async def allocate_port(self, wanted: int | None, owner: str, field: str) -> int:
        low, high = self.config.ports
        if wanted:
            if not low <= wanted <= high:
                raise _alloc_error(owner, field, wanted, f"provided port is not in the valid range. "
                                   f"The range of valid ports is {low}-{high}")
            if not await self._claim(f"{PORT_PREFIX}{wanted}", owner):
                raise _alloc_error(owner, field, wanted, "provided port is already allocated")
            return wanted
        static_band = min(max((high - low + 1) // 16, 16), 128)
        for _ in range(_RANDOM_TRIES):
            candidate = random.randint(low + static_band, high)
            if await self._claim(f"{PORT_PREFIX}{candidate}", owner):
                return candidate
        for candidate in range(low, high + 1):
            if await self._claim(f"{PORT_PREFIX}{candidate}", owner):
                return candidate
        raise errors.StatusError(500, "InternalError", "Internal error occurred: failed to allocate a nodePort: range is full")

    # --- a Service's whole set -------------------------------------------------------
    async def assign(self, service: Obj, old: Obj | None) -> None:
        """Fill in the clusterIP(s) and nodePorts `service` needs, keeping the old ones it
        still uses. Values an update stops using are not released here (the write may
        still fail); the repair pass releases them once no Service holds them."""
        meta, spec = service["metadata"], service.setdefault("spec", {})
        owner = f"{meta.get('namespace', '')}/{meta['name']}"
        old_ips, old_ports = ServiceAllocations.held(old)
        if ServiceAllocations.needs_cluster_ip(spec):
            wanted = spec.get("clusterIP") or ""
            if wanted not in old_ips:
                wanted = await self.allocate_ip(wanted, owner, "spec.clusterIPs")
            spec["clusterIP"], spec["clusterIPs"] = wanted, [wanted]
        if ServiceAllocations.needs_node_ports(spec):
            for i, port in enumerate(p for p in spec.get("ports") or [] if isinstance(p, dict)):
                wanted = port.get("nodePort") or None
                if wanted not in old_ports:
                    port["nodePort"] = await self.allocate_port(wanted, owner, f"spec.ports[{i}].nodePort")

    async def release_all(self, service: Obj) -> None:
        ips, ports = ServiceAllocations.held(service)
        for ip in ips:
            await self.release_ip(ip)
        for port in ports:
            await self.release_port(port)

    async def repair(self, services: list[Obj]) -> int:
        """Release allocations no Service holds (older than a grace period, so a create
        in flight keeps its values). Returns how many were released."""
        held_ips: set[str] = set()
        held_ports: set[int] = set()
        for svc in services:
            ips, ports = ServiceAllocations.held(svc)
            held_ips |= ips
            held_ports |= ports
        released = 0
        now = time.time()
        for prefix, held in ((IP_PREFIX, held_ips), (PORT_PREFIX, {str(p) for p in held_ports})):
            page = await self.storage.list(prefix)
            for kv in page.items:
                value = kv.key[len(prefix):]
                if value in held or now - orjson.loads(kv.value).get("at", 0) < REPAIR_GRACE_SECONDS:
                    continue
                with contextlib.suppress(KeyNotFoundError):
                    await self.storage.delete(kv.key, expected_revision=kv.mod_revision)
                    released += 1
        return released

    async def claim_held(self, services: list[Obj]) -> None:
        """Make sure every value a stored Service holds is claimed (start-up repair)."""
        for svc in services:
            meta = svc["metadata"]
            owner = f"{meta.get('namespace', '')}/{meta['name']}"
            ips, ports = ServiceAllocations.held(svc)
            for ip in ips:
                await self._claim(IP_PREFIX + ip, owner)
            for port in ports:
                await self._claim(f"{PORT_PREFIX}{port}", owner)


def _alloc_error(owner: str, field: str, value: Any, detail: str) -> errors.StatusError:
    from apiserver.admission.validation_util import go_string_slice, invalid_go

    error = invalid_go(field, go_string_slice(value), detail) if isinstance(value, list) else \
        errors.invalid(field, value, detail)
    return errors.invalid_object("Service", "", owner.split("/")[-1], [error])


async def run_repair(allocator: Allocator, list_services: Any, *, interval: float = 60.0) -> None:
    """Start-up claim of held values, then periodic release of leaked ones."""
    services = await list_services()
    await allocator.claim_held(services)
    while True:
        await asyncio.sleep(interval)
        try:
            released = await allocator.repair(await list_services())
            if released:
                log.info("released %d leaked service allocations", released)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a failed pass is retried next interval
            log.exception("service allocation repair failed")
