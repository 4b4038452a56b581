"""Endpoints subsets as Kubernetes packs them (pkg/api/v1/endpoints RepackSubsets) and cuts
them (the Endpoints controller's truncateEndpoints).

Repacking: every (address, port) pair is collected, an address ready on a port wins over
the same address not ready there; then addresses offering exactly the same set of ports
share one subset. An address is identified by its IP and the uid of its targetRef.
Addresses sort by IP (bytewise, as Go compares strings), then uid; ports and subsets sort
deterministically (Kubernetes sorts them by a hash, an order nobody relies on).

Truncation keeps at most `MAX_CAPACITY` addresses: not-ready addresses go first; if the
ready ones alone are too many, every not-ready one goes and each subset keeps its share
(rounded up) of the ready ones.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

Obj = dict[str, Any]
MAX_CAPACITY = 1000
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"
NO_PORT = "-"  # the sentinel for subsets without ports (headless Services without ports)


def _address_key(address: Obj) -> tuple[str, str]:
    return address.get("ip", ""), str((address.get("targetRef") or {}).get("uid", ""))


def _port_key(port: Obj) -> str:
    return json.dumps(port, sort_keys=True)


def repack_subsets(subsets: list[Obj]) -> list[Obj]:
    """RepackSubsets (see the module docstring)."""
    addresses: dict[tuple[str, str], Obj] = {}
    ports: dict[str, Obj | None] = {}
    readiness: dict[str, dict[tuple[str, str], bool]] = {}
    for subset in subsets:
        subset_ports = subset.get("ports") or [None]
        for port in subset_ports:
            port_key = NO_PORT if port is None else _port_key(port)
            ports[port_key] = port
            by_address = readiness.setdefault(port_key, {})
            for ready, field in ((True, "addresses"), (False, "notReadyAddresses")):
                for address in subset.get(field) or []:
                    key = _address_key(address)
                    addresses.setdefault(key, copy.deepcopy(address))
                    by_address[key] = by_address.get(key, False) or ready
    groups: dict[str, tuple[dict[tuple[str, str], bool], list[Obj]]] = {}
    for port_key, by_address in readiness.items():
        group_key = json.dumps(sorted([list(k), v] for k, v in by_address.items()))
        group = groups.setdefault(group_key, (by_address, []))
        if ports[port_key] is not None:
            group[1].append(copy.deepcopy(ports[port_key]))
    final = []
    for by_address, group_ports in groups.values():
        subset: Obj = {}
        ready = sorted((k for k, v in by_address.items() if v), key=lambda k: (k[0].encode(), k[1]))
        not_ready = sorted((k for k, v in by_address.items() if not v), key=lambda k: (k[0].encode(), k[1]))
        if ready:
            subset["addresses"] = [addresses[k] for k in ready]
        if not_ready:
            subset["notReadyAddresses"] = [addresses[k] for k in not_ready]
        if group_ports:
            subset["ports"] = sorted(group_ports, key=lambda p: (p.get("name", ""), p.get("port", 0),
                                                                   p.get("protocol", "")))
        final.append(subset)
    return sorted(final, key=_subset_sort_key)


def _subset_sort_key(subset: Obj) -> tuple[Any, ...]:
    first = (subset.get("addresses") or subset.get("notReadyAddresses") or [{}])[0]
    return (first.get("ip", "").encode(), json.dumps(subset.get("ports") or [], sort_keys=True))


def address_count(subsets: list[Obj]) -> int:
    return sum(len(s.get("addresses") or []) + len(s.get("notReadyAddresses") or []) for s in subsets)


def truncate(subsets: list[Obj], capacity: int = MAX_CAPACITY) -> bool:
    """truncateEndpoints, in place; True when something was cut."""
    total_ready = sum(len(s.get("addresses") or []) for s in subsets)
    total_not_ready = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    if total_ready + total_not_ready <= capacity:
        return False
    truncate_ready = total_ready > capacity
    budget = capacity if truncate_ready else capacity - total_ready
    total = total_ready if truncate_ready else total_not_ready
    left = budget
    for subset in subsets:
        field = "addresses" if truncate_ready else "notReadyAddresses"
        count = len(subset.get(field) or [])
        take = min(math.ceil(count / total * budget) if total else 0, left)
        subset[field] = (subset.get(field) or [])[:take]
        if truncate_ready:
            subset["notReadyAddresses"] = []
        left -= len(subset[field])
    for subset in subsets:
        for field in ("addresses", "notReadyAddresses"):
            if field in subset and not subset[field]:
                del subset[field]
    return True
