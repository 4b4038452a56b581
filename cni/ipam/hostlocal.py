"""host-local IPAM: addresses from local ranges, allocations kept as files on the node.

The layout and rules are those of the reference `host-local` plugin, so its binary and
this module can share a directory: under `<state_dir>/networks/<network>/` (the plugin's
`dataDir` is `<state_dir>/networks`), one file per allocated address, named by the
address and holding `<container id>\\r\\n<ifname>`; `last_reserved_ip.<i>` per range set;
and a `lock` file taken with flock(2) for every read-modify-write, so two kubelets (or a
kubelet and the binary) never hand out one address twice. Allocation is round robin: it
starts after the last reserved address, so a just-released address is not reused at
once. The gateway (by default the subnet's first address) is never handed out.

One deliberate difference: ADD for a container and ifname that already hold an address
in the range set returns that address; the reference plugin refuses with "duplicate
allocation is not allowed". The kubelet re-runs ADD after a crash between ADD and
caching the result, and must then get the same address back, not an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cni.config import RuntimeConf
from cni.types import (
    ERR_INTERNAL,
    ERR_INVALID_NETWORK_CONFIG,
    CNIError,
    IPConfig,
    Result,
    Route,
    version_result,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
LINE_BREAK = "\r\n"  # what the reference plugin writes between container id and ifname
LAST_RESERVED = "last_reserved_ip."


def _invalid(msg: str) -> CNIError:
    return CNIError(ERR_INVALID_NETWORK_CONFIG, msg)


@dataclass(frozen=True)
class Range:
    """One `ranges[][]` entry, canonicalised as the reference plugin does: rangeStart
    defaults to the subnet's first host, rangeEnd to its last, gateway to the first."""

    subnet: ipaddress.IPv4Network | ipaddress.IPv6Network
    range_start: IPAddress
    range_end: IPAddress
    gateway: IPAddress | None

    @classmethod
    def from_json(cls, data: Any) -> Range:
        if not isinstance(data, dict) or "subnet" not in data:
            raise _invalid(f"invalid range {data!r}: subnet is required")
        try:
            subnet = ipaddress.ip_network(data["subnet"], strict=False)
        except (TypeError, ValueError):
            raise _invalid(f"invalid CIDR address: {data['subnet']}") from None
        if subnet.max_prefixlen - subnet.prefixlen < 2:
            raise _invalid(f"Network {subnet} too small to allocate from")
        first = subnet.network_address + 1
        last = subnet.broadcast_address - 1 if subnet.version == 4 else subnet.broadcast_address
        start = cls._address(data.get("rangeStart"), subnet, "RangeStart") or first
        end = cls._address(data.get("rangeEnd"), subnet, "RangeEnd") or last
        if start > end:
            raise _invalid(f"RangeStart {start} is after RangeEnd {end}")
        gateway = cls._address(data.get("gateway"), subnet, "Gateway") or first
        return cls(subnet, start, end, gateway)

    @staticmethod
    def _address(value: Any, subnet: Any, what: str) -> IPAddress | None:
        if value in (None, ""):
            return None
        try:
            address = ipaddress.ip_address(value)
        except (TypeError, ValueError):
            raise _invalid(f"invalid {what} {value!r}") from None
        if address not in subnet:
            raise _invalid(f"{what} {address} not in network {subnet}")
        return address

    def contains(self, address: IPAddress) -> bool:
        return address.version == self.range_start.version and self.range_start <= address <= self.range_end

    def __str__(self) -> str:
        return f"{self.range_start}-{self.range_end}"

    def to_json(self) -> dict[str, str]:
        out = {"subnet": str(self.subnet), "rangeStart": str(self.range_start), "rangeEnd": str(self.range_end)}
        if self.gateway is not None:
            out["gateway"] = str(self.gateway)
        return out


RangeSet = list[Range]


def parse_ranges(ranges: Any) -> list[RangeSet]:
    """`ranges` as in the plugin config: a list of range sets, each a list of ranges.
    A flat list of ranges (or Range objects) is taken as one range set."""
    if not isinstance(ranges, (list, tuple)) or not ranges:
        raise _invalid("no IP ranges specified")
    if all(isinstance(r, (dict, Range)) for r in ranges):
        ranges = [list(ranges)]
    sets: list[RangeSet] = []
    for raw_set in ranges:
        if not isinstance(raw_set, (list, tuple)) or not raw_set:
            raise _invalid("empty range set")
        sets.append([r if isinstance(r, Range) else Range.from_json(r) for r in raw_set])
    seen: list[Range] = []
    for rng in (r for s in sets for r in s):
        for other in seen:
            if rng.subnet.version == other.subnet.version and rng.subnet.overlaps(other.subnet):  # type: ignore[arg-type]
                raise _invalid(f"subnets {other.subnet} and {rng.subnet} overlap")
        seen.append(rng)
    return sets


class HostLocal:
    """The allocations of one network on one node."""

    def __init__(self, state_dir: Path, network: str, ranges: Any, *, data_dir: Path | None = None) -> None:
        """Files go to `<data_dir>/<network>/`; data_dir defaults to `<state_dir>/networks`."""
        if not network or "/" in network or network in (".", ".."):
            raise _invalid(f"invalid network name {network!r}")
        self.network = network
        self.range_sets = parse_ranges(ranges)
        self.dir = Path(data_dir if data_dir is not None else Path(state_dir) / "networks") / network

    # -- public operations (each under the flock) --

    def allocate(self, container_id: str, ifname: str = "eth0") -> list[IPConfig]:
        """One address per range set for (container_id, ifname), reusing any it holds."""
        _check_id(container_id, ifname)
        with self._locked():
            held = self._held_by(container_id, ifname)
            allocated: list[IPConfig] = []
            for index, range_set in enumerate(self.range_sets):
                mine = next((a for a in held if _range_for(range_set, a) is not None), None)
                if mine is None:
                    mine = self._reserve_next(index, range_set, container_id, ifname)
                rng = _range_for(range_set, mine)
                assert rng is not None
                gateway = str(rng.gateway) if rng.gateway is not None else None
                allocated.append(IPConfig(f"{mine}/{rng.subnet.prefixlen}", gateway))
            return allocated

    def release(self, container_id: str, ifname: str = "eth0") -> list[str]:
        """Free every address (container_id, ifname) holds; returns them. Idempotent."""
        with self._locked():
            released = self._held_by(container_id, ifname)
            for address in released:
                (self.dir / str(address)).unlink(missing_ok=True)
            return [str(a) for a in released]

    def get_by_id(self, container_id: str, ifname: str = "eth0") -> list[str]:
        with self._locked():
            return [str(a) for a in self._held_by(container_id, ifname)]

    def allocations(self) -> dict[str, tuple[str, str]]:
        """address -> (container id, ifname) for every allocated address."""
        with self._locked():
            return {str(a): owner for a, owner in self._entries()}

    # -- internals; callers hold the lock --

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the flock

    def _entries(self) -> Iterator[tuple[IPAddress, tuple[str, str]]]:
        for path in self.dir.iterdir():
            try:
                address = ipaddress.ip_address(path.name)
                text = path.read_bytes().decode()  # bytes: keep the \r\n intact
            except (ValueError, OSError):
                continue  # lock, last_reserved_ip.N, or a file deleted meanwhile
            cid, _, ifname = text.strip().partition(LINE_BREAK)
            yield address, (cid.strip(), ifname.strip())

    def _held_by(self, container_id: str, ifname: str) -> list[IPAddress]:
        # Files with only an id were written by plugins older than 0.7; they match any ifname.
        return sorted(a for a, (cid, name) in self._entries()
                      if cid == container_id and name in (ifname, ""))

    def _reserve_next(self, index: int, range_set: RangeSet, container_id: str, ifname: str) -> IPAddress:
        for address in self._candidates(index, range_set):
            try:
                fd = os.open(self.dir / str(address), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            with os.fdopen(fd, "wb") as f:
                f.write(f"{container_id}{LINE_BREAK}{ifname}".encode())
            (self.dir / f"{LAST_RESERVED}{index}").write_text(str(address))
            return address
        set_text = ",".join(str(r) for r in range_set)
        raise CNIError(ERR_INTERNAL, f"failed to allocate for range {index}: "
                                     f"no IP addresses available in range set: {set_text}")

    def _candidates(self, index: int, range_set: RangeSet) -> Iterator[IPAddress]:
        """Every address of the set once, starting after the last reserved one."""
        start_range, start = 0, range_set[0].range_start
        try:
            last = ipaddress.ip_address((self.dir / f"{LAST_RESERVED}{index}").read_text().strip())
        except (OSError, ValueError):
            last = None
        if last is not None:
            for i, rng in enumerate(range_set):
                if rng.contains(last):
                    start_range, start = i, last + 1
                    if start > rng.range_end:
                        start_range = (i + 1) % len(range_set)
                        start = range_set[start_range].range_start
                    break
        order = range_set[start_range:] + range_set[:start_range]
        if start != order[0].range_start:
            order = order + [Range(order[0].subnet, order[0].range_start, start - 1, order[0].gateway)]
        for i, rng in enumerate(order):
            first = start if i == 0 else rng.range_start
            for value in range(int(first), int(rng.range_end) + 1):
                address = ipaddress.ip_address(value)
                if address != rng.gateway:
                    yield address


def owners(network_dir: Path) -> set[tuple[str, str]]:
    """(container id, ifname) of every allocation in one network's directory, whatever
    its ranges: for garbage-collecting attachments whose result was never cached."""
    if not Path(network_dir).is_dir():
        return set()
    found = set()
    for path in Path(network_dir).iterdir():
        try:
            ipaddress.ip_address(path.name)
            cid, _, ifname = path.read_bytes().decode().strip().partition(LINE_BREAK)
        except (ValueError, OSError):
            continue
        found.add((cid.strip(), ifname.strip()))
    return found


def _range_for(range_set: Sequence[Range], address: IPAddress) -> Range | None:
    return next((r for r in range_set if r.contains(address)), None)


def _check_id(container_id: str, ifname: str) -> None:
    if not container_id or LINE_BREAK in container_id or not ifname:
        raise CNIError(ERR_INTERNAL, f"invalid container id {container_id!r} or ifname {ifname!r}")


class HostLocalPlugin:
    """The in-process `host-local` IPAM plugin. `dataDir` in the config overrides where
    allocations live (as for the binary; its default there is /var/lib/cni/networks)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)

    def store(self, conf: dict[str, Any]) -> HostLocal:
        ipam = conf.get("ipam")
        if not isinstance(ipam, dict):
            raise _invalid("IPAM config missing 'ipam' key")
        data_dir = ipam.get("dataDir")
        return HostLocal(self.state_dir, conf.get("name", ""), ipam.get("ranges"),
                         data_dir=Path(data_dir) if data_dir else None)

    async def add(self, conf: dict[str, Any], rt: RuntimeConf) -> Result:
        store = self.store(conf)
        ips = await asyncio.to_thread(store.allocate, rt.container_id, rt.ifname)
        routes = [Route(r["dst"], r.get("gw")) for r in conf["ipam"].get("routes") or []]
        return Result(conf.get("cniVersion", "1.0.0"), ips=ips, routes=routes)

    async def delete(self, conf: dict[str, Any], rt: RuntimeConf) -> None:
        await asyncio.to_thread(self.store(conf).release, rt.container_id, rt.ifname)

    async def check(self, conf: dict[str, Any], rt: RuntimeConf) -> None:
        held = set(await asyncio.to_thread(self.store(conf).get_by_id, rt.container_id, rt.ifname))
        prev = Result.from_json(conf["prevResult"]) if conf.get("prevResult") else None
        expected = {ip.ip for ip in prev.ips} if prev else set()
        if not held or not expected <= held:
            raise CNIError(ERR_INTERNAL, f"host-local: Failed to find address added by container {rt.container_id}")

    async def version(self) -> dict[str, Any]:
        return version_result()
