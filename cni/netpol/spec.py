"""A networking.k8s.io/v1 NetworkPolicy object parsed into plain, checked data.

Parsing is separate from meaning (`cni.netpol.model`) so that every error names the
field it is about (`spec.ingress[0].ports[1].endPort: ...`) and the model only ever
sees well-formed rules. The checks are the API server's validation of the fields the
enforcement reads; defaults are applied as the API server applies them (protocol TCP,
policyTypes from the rules present), in case an object reached us without them.
A missing `podSelector` is `{}` (Go's zero value: every pod of the namespace); a
missing peer selector is not `{}` (absent namespaceSelector: the policy's namespace).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from minikube_py.client.labels import EVERYTHING, Selector, from_label_selector

Obj = Mapping[str, Any]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

INGRESS, EGRESS = "Ingress", "Egress"
PROTOCOLS = ("TCP", "UDP", "SCTP")
_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")


class PolicyError(ValueError):
    """A NetworkPolicy (or a connection's description) that does not make sense."""


@dataclass(frozen=True)
class PolicyPort:
    """One `ports` entry: protocol, and a port number, range start or name (None: all)."""

    protocol: str = "TCP"
    port: int | str | None = None
    end_port: int | None = None

    @classmethod
    def parse(cls, raw: Obj, where: str) -> PolicyPort:
        protocol = raw.get("protocol") or "TCP"
        if protocol not in PROTOCOLS:
            raise PolicyError(f"{where}.protocol: {protocol!r} is not one of {', '.join(PROTOCOLS)}")
        port, end = raw.get("port"), raw.get("endPort")
        if isinstance(port, bool) or not isinstance(port, int | str | None):
            raise PolicyError(f"{where}.port: {port!r} is neither a number nor a name")
        if isinstance(port, int) and not 1 <= port <= 65535:
            raise PolicyError(f"{where}.port: {port} is not in 1-65535")
        if isinstance(port, str) and not (_PORT_NAME.match(port) and re.search("[a-z]", port)):
            raise PolicyError(f"{where}.port: {port!r} is not a valid port name")
        if end is not None:
            if not isinstance(port, int):
                raise PolicyError(f"{where}.endPort: needs a numeric port")
            if isinstance(end, bool) or not isinstance(end, int) or not port <= end <= 65535:
                raise PolicyError(f"{where}.endPort: {end!r} must be a number from port ({port}) to 65535")
        return cls(protocol, port, end)


@dataclass(frozen=True)
class IPBlock:
    cidr: IPNetwork
    except_: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, raw: Obj, where: str) -> IPBlock:
        cidr = _network(raw.get("cidr"), f"{where}.cidr")
        excepts = tuple(_network(e, f"{where}.except[{i}]") for i, e in enumerate(raw.get("except") or []))
        for i, e in enumerate(excepts):
            if e.version != cidr.version or not e.subnet_of(cidr) or e == cidr:  # type: ignore[arg-type]
                raise PolicyError(f"{where}.except[{i}]: {e} is not strictly inside {cidr}")
        return cls(cidr, excepts)

    def networks(self) -> list[IPNetwork]:
        """The block as disjoint networks: the CIDR with every `except` cut out."""
        remaining: list[IPNetwork] = [self.cidr]
        for cut in self.except_:
            next_round: list[IPNetwork] = []
            for net in remaining:
                if cut.subnet_of(net):  # type: ignore[arg-type]
                    next_round.extend(net.address_exclude(cut))  # type: ignore[arg-type]
                elif not net.subnet_of(cut):  # type: ignore[arg-type]
                    next_round.append(net)
            remaining = next_round
        return remaining


def _network(value: Any, where: str) -> IPNetwork:
    if not isinstance(value, str) or "/" not in value:
        raise PolicyError(f"{where}: {value!r} is not a CIDR")
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise PolicyError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class Peer:
    """One `from`/`to` entry. Selectors are None when absent (which is not `{}`)."""

    pod_selector: Selector | None = None
    namespace_selector: Selector | None = None
    ip_block: IPBlock | None = None

    @classmethod
    def parse(cls, raw: Obj, where: str) -> Peer:
        if not isinstance(raw, Mapping):
            raise PolicyError(f"{where}: not an object")
        pods, namespaces = _selector(raw, "podSelector", where), _selector(raw, "namespaceSelector", where)
        block = raw.get("ipBlock")
        if block is not None and (pods is not None or namespaces is not None):
            raise PolicyError(f"{where}: ipBlock may not be combined with podSelector or namespaceSelector")
        if block is None and pods is None and namespaces is None:
            raise PolicyError(f"{where}: must give podSelector, namespaceSelector or ipBlock")
        return cls(pods, namespaces, IPBlock.parse(block, f"{where}.ipBlock") if block is not None else None)


def _selector(raw: Obj, key: str, where: str) -> Selector | None:
    if raw.get(key) is None:
        return None
    try:
        return from_label_selector(raw[key])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PolicyError(f"{where}.{key}: {exc}") from None


@dataclass(frozen=True)
class Rule:
    """One ingress/egress rule; empty `peers` is everyone, empty `ports` every port."""

    peers: tuple[Peer, ...] = ()
    ports: tuple[PolicyPort, ...] = ()

    @classmethod
    def parse(cls, raw: Obj, where: str, peers_key: str) -> Rule:
        if not isinstance(raw, Mapping):
            raise PolicyError(f"{where}: not an object")
        peers = tuple(Peer.parse(p, f"{where}.{peers_key}[{i}]") for i, p in enumerate(raw.get(peers_key) or []))
        ports = tuple(PolicyPort.parse(p, f"{where}.ports[{i}]") for i, p in enumerate(raw.get("ports") or []))
        return cls(peers, ports)


@dataclass(frozen=True)
class Policy:
    namespace: str
    name: str
    pod_selector: Selector = EVERYTHING
    policy_types: frozenset[str] = frozenset({INGRESS})
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_object(cls, obj: Obj) -> Policy:
        """Parse a NetworkPolicy object; PolicyError says what is wrong and where."""
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        namespace, name = meta.get("namespace") or "default", meta.get("name") or ""
        selector, types = _head(spec)
        ingress = tuple(Rule.parse(r, f"spec.ingress[{i}]", "from") for i, r in enumerate(spec.get("ingress") or []))
        egress = tuple(Rule.parse(r, f"spec.egress[{i}]", "to") for i, r in enumerate(spec.get("egress") or []))
        return cls(namespace, name, selector, types, ingress, egress)

    @classmethod
    def fail_closed(cls, obj: Obj) -> Policy | None:
        """The policy's isolation without its rules, for an object whose rules do not
        parse; None when not even its selector and types do."""
        meta = obj.get("metadata") or {}
        try:
            selector, types = _head(obj.get("spec") or {})
        except PolicyError:
            return None
        return cls(meta.get("namespace") or "default", meta.get("name") or "", selector, types)


def _head(spec: Obj) -> tuple[Selector, frozenset[str]]:
    """spec.podSelector (missing is `{}`, as the Go zero value) and defaulted policyTypes."""
    try:
        selector = from_label_selector(spec.get("podSelector") or {})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PolicyError(f"spec.podSelector: {exc}") from None
    types = spec.get("policyTypes") or ([INGRESS, EGRESS] if spec.get("egress") else [INGRESS])
    bad = [t for t in types if t not in (INGRESS, EGRESS)]
    if bad:
        raise PolicyError(f"spec.policyTypes: {bad[0]!r} is not Ingress or Egress")
    return selector, frozenset(types)
