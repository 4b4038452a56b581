"""What one node's proxy should serve for one Service: frontends (address, port,
protocol, device) and, per Service port and kind of traffic, where connections go.

Pure, like endpoints.py. kube-proxy's vocabulary: a `ServicePortName` is
`namespace/name:port-name`; traffic is *internal* (to a ClusterIP, governed by
spec.internalTrafficPolicy) or *external* (to a NodePort, a load-balancer address or an
externalIP, governed by spec.externalTrafficPolicy).

Where each frontend listens, from the proxy's flags (`ProxyConfig`):

    ClusterIP      every cluster IP, once per --cluster-ip-bind-device (or unbound
                   to any device without one); none with --no-cluster-ips
    ExternalIP     spec.externalIPs, like ClusterIPs (they are reached the same way)
    NodePort       every --nodeport-addresses address, on spec.ports[].nodePort
    LoadBalancer   status.loadBalancer.ingress[].ip with ipMode VIP (or unset), only
                   with --load-balancers
    health check   spec.healthCheckNodePort (LoadBalancer with externalTrafficPolicy
                   Local) on every --nodeport-addresses address (proxy.service.healthcheck)

Headless and ExternalName Services get no frontends (DNS answers for them); SCTP is
not proxied (a userspace proxy cannot speak it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from proxy.service.endpoints import Endpoint, Selection, address_family, select, slice_endpoints

Obj = dict[str, Any]
DEFAULT_AFFINITY_TIMEOUT = 10800  # sessionAffinityConfig.clientIP.timeoutSeconds default
PROTOCOLS = ("TCP", "UDP")
INTERNAL, EXTERNAL = "internal", "external"
CLUSTER_IP, EXTERNAL_IP, NODE_PORT, LOAD_BALANCER = "ClusterIP", "ExternalIP", "NodePort", "LoadBalancer"


@dataclass(frozen=True)
class ProxyConfig:
    """One node's proxy flags (see proxy/service/cli.py)."""

    node_name: str
    bind_devices: tuple[str, ...] = ()  # --cluster-ip-bind-device; () binds without a device
    cluster_ips: bool = True  # --no-cluster-ips turns it off
    nodeport_addresses: tuple[str, ...] = ("127.0.0.1",)
    load_balancers: bool = True

    def __post_init__(self) -> None:
        if not self.node_name:
            raise ValueError("the proxy needs its node's name (--hostname-override)")
        for address in self.nodeport_addresses:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"--nodeport-addresses: {address!r} is not an IP address") from None
        for device in self.bind_devices:
            if not device or len(device) > 15 or "/" in device or " " in device:
                raise ValueError(f"--cluster-ip-bind-device: {device!r} is not a network device name")


@dataclass(frozen=True, order=True)
class ServicePortName:
    namespace: str
    name: str
    port: str  # the Service port's name, "" if unnamed
    protocol: str = "TCP"

    def __str__(self) -> str:
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port}" if self.port else base


@dataclass(frozen=True, order=True)
class Frontend:
    """One listening socket."""

    ip: str
    port: int
    protocol: str
    device: str = ""  # SO_BINDTODEVICE, "" for none

    def __str__(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        on = f" on {self.device}" if self.device else ""
        return f"{host}:{self.port}/{self.protocol}{on}"


@dataclass(frozen=True)
class Route:
    """What a frontend serves: a Service port's internal or external traffic."""

    service_port: ServicePortName
    traffic: str  # INTERNAL | EXTERNAL
    kind: str  # CLUSTER_IP | EXTERNAL_IP | NODE_PORT | LOAD_BALANCER
    family: str = "IPv4"

    @property
    def group(self) -> tuple[ServicePortName, str, str]:
        """Frontends sharing round robin and affinity state."""
        return self.service_port, self.traffic, self.family


@dataclass(frozen=True)
class GroupPlan:
    """The endpoints one group of frontends uses, and its session affinity."""

    selection: Selection
    affinity_timeout: float | None  # seconds, None without sessionAffinity ClientIP


@dataclass
class ServicePlan:
    frontends: dict[Frontend, Route] = field(default_factory=dict)
    groups: dict[tuple[ServicePortName, str, str], GroupPlan] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # ports not served, with why
    # spec.healthCheckNodePort frontends and the external group whose endpoints they count
    health_checks: dict[Frontend, tuple[ServicePortName, str, str]] = field(default_factory=dict)


def _spec(service: Obj) -> Obj:
    return service.get("spec") or {}


def cluster_ips(service: Obj) -> list[str]:
    """spec.clusterIPs (or clusterIP); empty for headless and ExternalName Services."""
    spec = _spec(service)
    if spec.get("type") == "ExternalName":
        return []
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [ip for ip in ips if ip and ip != "None"]


def affinity_timeout(service: Obj) -> float | None:
    spec = _spec(service)
    if spec.get("sessionAffinity") != "ClientIP":
        return None
    config = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
    return float(config.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)


def load_balancer_ips(service: Obj) -> list[str]:
    """status.loadBalancer.ingress IPs the proxy should bind (ipMode VIP, the default)."""
    if _spec(service).get("type") != "LoadBalancer":
        return []
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [i["ip"] for i in ingress if i.get("ip") and (i.get("ipMode") or "VIP") == "VIP"]


def _frontends_for_port(service: Obj, port: Obj, config: ProxyConfig) -> list[tuple[str, int, str, str]]:
    """(ip, port, device, kind) for one Service port."""
    spec = _spec(service)
    out: list[tuple[str, int, str, str]] = []
    devices = config.bind_devices or ("",)
    number = int(port["port"])
    if config.cluster_ips:
        for ip in cluster_ips(service):
            out += [(ip, number, device, CLUSTER_IP) for device in devices]
        for ip in spec.get("externalIPs") or []:
            out += [(ip, number, device, EXTERNAL_IP) for device in devices]
    node_port = port.get("nodePort")
    if node_port and spec.get("type") in (NODE_PORT, LOAD_BALANCER):
        out += [(address, int(node_port), "", NODE_PORT) for address in config.nodeport_addresses]
    if config.load_balancers:
        out += [(ip, number, "", LOAD_BALANCER) for ip in load_balancer_ips(service)]
    return out


def plan_service(service: Obj, slices: Iterable[Obj], config: ProxyConfig, node_labels: Obj | None = None) -> ServicePlan:
    """Frontends and endpoint groups for `service` with its EndpointSlices."""
    plan = ServicePlan()
    if not cluster_ips(service):
        return plan  # headless or ExternalName: nothing to proxy
    meta = service.get("metadata") or {}
    spec = _spec(service)
    slices = list(slices)
    zone = str((node_labels or {}).get("topology.kubernetes.io/zone") or "")
    internal_local = spec.get("internalTrafficPolicy") == "Local"
    external_local = spec.get("externalTrafficPolicy") == "Local"
    timeout = affinity_timeout(service)
    for port in spec.get("ports") or []:
        protocol = port.get("protocol") or "TCP"
        name = ServicePortName(meta.get("namespace", ""), meta.get("name", ""), port.get("name") or "", protocol)
        if protocol not in PROTOCOLS:
            plan.skipped.append(f"{name}: protocol {protocol} is not proxied")
            continue
        by_family: dict[str, list[Endpoint]] = {}
        for ip, number, device, kind in _frontends_for_port(service, port, config):
            try:
                family = address_family(ip)
            except ValueError:
                plan.skipped.append(f"{name}: {ip!r} is not an IP address")
                continue
            traffic = INTERNAL if kind == CLUSTER_IP else EXTERNAL
            route = Route(name, traffic, kind, family)
            plan.frontends[Frontend(ip, number, protocol, device)] = route
            if route.group not in plan.groups:
                if family not in by_family:
                    by_family[family] = slice_endpoints(slices, name.port, protocol, family)
                local = internal_local if traffic == INTERNAL else external_local
                selection = select(by_family[family], local=local, node=config.node_name, zone=zone)
                plan.groups[route.group] = GroupPlan(selection, timeout)
    _plan_health_checks(service, config, plan)
    return plan


def _plan_health_checks(service: Obj, config: ProxyConfig, plan: ServicePlan) -> None:
    """kube-proxy serves spec.healthCheckNodePort (LoadBalancer, externalTrafficPolicy
    Local) on the NodePort addresses, counting the first external group's endpoints."""
    spec = _spec(service)
    port = spec.get("healthCheckNodePort")
    if spec.get("type") != LOAD_BALANCER or spec.get("externalTrafficPolicy") != "Local" or not port:
        return
    group = next((g for g in plan.groups if g[1] == EXTERNAL), None)
    if group is None:
        return
    for address in config.nodeport_addresses:
        plan.health_checks[Frontend(address, int(port), "TCP")] = group
