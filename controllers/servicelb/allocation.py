"""Which load-balancer address a Service gets: pure rules over the pool and what is taken.

The pool is cni.addressing.LOAD_BALANCER_CIDR (127.3.0.0/16): loopback addresses, so a
load balancer is reachable from this machine only, as `minikube tunnel` makes it. The
choice is deterministic, so a learner can predict it and a restarted controller makes
the same one:

1. spec.loadBalancerIP, if set: it must be in the pool and not held by another Service
   (otherwise the Service gets none and a Warning says why, as a cloud would refuse);
2. the address the Service already has, if it is in the pool and still only its own;
3. else the lowest free address of the pool (the network address left out).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

Obj = dict[str, Any]


class AllocationError(Exception):
    """No address can be given (message says why, for the Event)."""


def wants_load_balancer(service: Obj) -> bool:
    """type LoadBalancer without spec.loadBalancerClass (a class means another
    implementation owns it, as Kubernetes' service controller leaves it alone)."""
    spec = service.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and spec.get("loadBalancerClass") is None


def ingress_ips(service: Obj) -> list[str]:
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [str(i["ip"]) for i in ingress if i.get("ip")]


def in_pool(ip: str, pool: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(ip) in pool
    except ValueError:
        return False


def choose_address(service: Obj, pool_cidr: str, taken: Iterable[str]) -> str:
    """The address `service` should have (see the module docstring)."""
    pool = ipaddress.ip_network(pool_cidr)
    taken_set = set(taken)
    requested = (service.get("spec") or {}).get("loadBalancerIP")
    if requested:
        if not in_pool(requested, pool):
            raise AllocationError(f"requested loadBalancerIP {requested} is not in the load-balancer range {pool}")
        if requested in taken_set:
            raise AllocationError(f"requested loadBalancerIP {requested} is already in use by another Service")
        return str(requested)
    for ip in ingress_ips(service):
        if in_pool(ip, pool) and ip not in taken_set:
            return ip
    for address in pool.hosts():
        if str(address) not in taken_set:
            return str(address)
    raise AllocationError(f"no free address left in the load-balancer range {pool}")
