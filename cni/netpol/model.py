"""What networking.k8s.io/v1 NetworkPolicy means, as pure data: no API, no kernel.

Both enforcers read the same compiled answer, so they cannot disagree: the nftables
renderer (`cni.netpol.nft`, for traffic between pods) and `PolicyModel.allowed`, which
the service proxy asks for each connection it opens on a client's behalf.

The semantics, as Kubernetes defines them:

- A policy selects pods of its own namespace (`podSelector`; `{}` is all of them).
- `policyTypes` defaults to ["Ingress"], plus "Egress" when the policy has egress rules.
- A pod selected by any policy of a type is *isolated* for that direction; an isolated
  pod accepts (or opens) only what the union of those policies' rules allows. A pod no
  policy selects is not isolated: everything is allowed.
- A connection needs both halves: the source's egress (if isolated) and the
  destination's ingress (if isolated).
- A rule's peers (`from`/`to`): a missing or empty list is everyone. `podSelector`
  alone means pods of the policy's namespace; `namespaceSelector` alone all pods of the
  matching namespaces; both together the matching pods in the matching namespaces;
  `ipBlock` a CIDR minus its `except` CIDRs (applied to any address, pod or not).
- A rule's ports: missing or empty is every port of every protocol (ICMP too). Each
  entry is a protocol (TCP by default) with no port (all of that protocol), a number, a
  range `port`..`endPort`, or a container port *name*: resolved against the destination
  pod's `containers[].ports` with the same protocol (for ingress the selected pod, for
  egress each peer pod; an address that is no pod never matches a named port).
- Exceptions Kubernetes makes: a pod cannot block traffic to itself, and traffic from
  and to the node a pod runs on is always allowed. On one machine every node is this
  host, so any host address (127.0.0.0/8, ::1, node addresses, each pod range's
  gateway) is exempt, unless it is a pod's own address.
- Pods without an address, hostNetwork pods (they have the node's address) and
  finished pods (Succeeded/Failed: their address may already be someone else's) are
  neither selected nor peers.

Objects are parsed and checked in `cni.netpol.spec`. A policy that does not parse (the
API server validates, so only a stale or hand-made object) still isolates the pods it
selects, with no rules of its own: failing closed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cni.netpol.spec import EGRESS, INGRESS, PROTOCOLS, IPNetwork, Peer, Policy, PolicyError, Rule
from minikube_py.client.labels import EVERYTHING

Obj = Mapping[str, Any]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # the API server sets it on every namespace
HOST_NETWORKS = ("127.0.0.0/8", "::1/128")
_CACHE_SIZE = 8192

__all__ = ["EGRESS", "INGRESS", "Allow", "ContainerPort", "IPNetwork", "PodInfo", "PodRules", "Policy", "PolicyError",
           "PolicyModel", "PortRange", "address_network"]


# -- pods and namespaces ---------------------------------------------------------------------
@dataclass(frozen=True)
class ContainerPort:
    name: str
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True)
class PodInfo:
    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    ips: tuple[str, ...] = ()
    node: str = ""
    ports: tuple[ContainerPort, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_object(cls, pod: Obj) -> PodInfo | None:
        """The pod as policy sees it; None when policy does not apply to it (no address
        yet, hostNetwork, finished)."""
        meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
        if spec.get("hostNetwork") or status.get("phase") in ("Succeeded", "Failed"):
            return None
        ips = [entry.get("ip") for entry in status.get("podIPs") or [] if entry.get("ip")]
        if not ips and status.get("podIP"):
            ips = [status["podIP"]]
        if not ips:
            return None
        ports = tuple(ContainerPort(p["name"], int(p["containerPort"]), p.get("protocol") or "TCP")
                      for c in spec.get("containers") or [] for p in c.get("ports") or []
                      if p.get("name") and p.get("containerPort"))
        return cls(meta.get("namespace") or "default", meta.get("name") or "", dict(meta.get("labels") or {}),
                   tuple(ips), spec.get("nodeName") or "", ports)

    def named_port(self, name: str, protocol: str) -> int | None:
        return next((p.port for p in self.ports if p.name == name and p.protocol == protocol), None)


def namespace_labels(namespace: Obj) -> tuple[str, dict[str, str]]:
    """(name, labels) of a Namespace object."""
    meta = namespace.get("metadata") or {}
    return meta.get("name") or "", dict(meta.get("labels") or {})


# -- the compiled answer ---------------------------------------------------------------------
@dataclass(frozen=True)
class PortRange:
    """A resolved port match: a protocol and an inclusive range (None: every port)."""

    protocol: str
    first: int | None = None
    last: int | None = None

    def matches(self, port: int, protocol: str) -> bool:
        return protocol == self.protocol and (self.first is None or self.first <= port <= (self.last or 0))


@dataclass(frozen=True)
class Allow:
    """One resolved rule for one pod: which addresses (None: any) may do what (None:
    anything, ports or not). `source` names the policy and rule, for people reading."""

    peers: tuple[IPNetwork, ...] | None
    ports: tuple[PortRange, ...] | None
    source: str = ""

    def matches(self, address: IPAddress, port: int, protocol: str) -> bool:
        if self.peers is not None and not any(address in net for net in self.peers):
            return False
        return self.ports is None or any(r.matches(port, protocol) for r in self.ports)


@dataclass(frozen=True)
class PodRules:
    """A pod's verdict: None for a direction it is not isolated in, else what is allowed."""

    pod: PodInfo
    ingress: tuple[Allow, ...] | None
    egress: tuple[Allow, ...] | None


def address_network(address: str) -> IPNetwork:
    """An address (or CIDR) as a network: a single address is a /32 or /128."""
    return ipaddress.ip_network(address, strict=False)


class PolicyModel:
    """Policies, pods and namespaces at one moment, compiled per pod on demand. Immutable:
    the agent builds a new one for every change and swaps it in."""

    def __init__(self, policies: Iterable[Policy], pods: Iterable[PodInfo],
                 namespaces: Mapping[str, Mapping[str, str]] | None = None, *,
                 host_addresses: Iterable[str] = ()) -> None:
        self.policies = sorted(policies, key=lambda p: p.key)  # informer order varies; rulesets must not
        self.pods = list(pods)
        self.namespaces = dict(namespaces or {})
        self.host_networks = tuple(address_network(a) for a in (*HOST_NETWORKS, *host_addresses))
        self.by_ip: dict[IPAddress, PodInfo] = {}
        for pod in self.pods:
            for ip in pod.ips:
                self.by_ip[ipaddress.ip_address(ip)] = pod
        self._rules: dict[str, PodRules] = {}
        self._peers: dict[tuple[str, str, int], tuple[tuple[IPNetwork, ...] | None, list[PodInfo]]] = {}
        self._answers: dict[tuple[str, str, int, str], bool] = {}

    @classmethod
    def from_objects(cls, policies: Iterable[Obj], pods: Iterable[Obj], namespaces: Iterable[Obj], *,
                     host_addresses: Iterable[str] = ()) -> tuple[PolicyModel, list[str]]:
        """Build from API objects; also returns a message per policy that did not parse."""
        parsed, errors = [], []
        for obj in policies:
            try:
                parsed.append(Policy.from_object(obj))
            except PolicyError as exc:
                meta = obj.get("metadata") or {}
                errors.append(f"NetworkPolicy {meta.get('namespace')}/{meta.get('name')}: {exc}")
                closed = Policy.fail_closed(obj)
                if closed is not None:
                    parsed.append(closed)
        infos = [info for info in (PodInfo.from_object(p) for p in pods) if info is not None]
        return cls(parsed, infos, dict(namespace_labels(n) for n in namespaces), host_addresses=host_addresses), errors

    def pod_at(self, ip: str) -> PodInfo | None:
        return self.by_ip.get(ipaddress.ip_address(ip))

    # -- selection -----------------------------------------------------------------------
    def labels_of_namespace(self, name: str) -> Mapping[str, str]:
        return self.namespaces.get(name) or {NAMESPACE_NAME_LABEL: name}

    def policies_for(self, pod: PodInfo) -> list[Policy]:
        return [p for p in self.policies if p.namespace == pod.namespace and p.pod_selector.matches(pod.labels)]

    def peer_pods(self, policy: Policy, peer: Peer) -> list[PodInfo]:
        if peer.ip_block is not None:
            return []
        pods = peer.pod_selector or EVERYTHING
        if peer.namespace_selector is None:
            return [p for p in self.pods if p.namespace == policy.namespace and pods.matches(p.labels)]
        namespaces = peer.namespace_selector
        return [p for p in self.pods
                if namespaces.matches(self.labels_of_namespace(p.namespace)) and pods.matches(p.labels)]

    # -- compilation ---------------------------------------------------------------------
    def rules_for(self, pod: PodInfo) -> PodRules:
        """The pod's compiled isolation and allowances (cached per model)."""
        cached = self._rules.get(pod.key)
        if cached is not None:
            return cached
        selecting = self.policies_for(pod)
        result = PodRules(pod, self._direction(pod, selecting, INGRESS), self._direction(pod, selecting, EGRESS))
        self._rules[pod.key] = result
        return result

    def _direction(self, pod: PodInfo, selecting: list[Policy], direction: str) -> tuple[Allow, ...] | None:
        policies = [p for p in selecting if direction in p.policy_types]
        if not policies:
            return None
        allows: list[Allow] = []
        for policy in policies:
            rules = policy.ingress if direction == INGRESS else policy.egress
            for i, rule in enumerate(rules):
                allows.extend(self._compile(pod, policy, rule, direction, i))
        return tuple(allows)

    def _rule_peers(self, policy: Policy, rule: Rule, direction: str,
                    index: int) -> tuple[tuple[IPNetwork, ...] | None, list[PodInfo]]:
        """A rule's peer addresses (None: anyone) and peer pods; the same for every pod
        the policy selects, so resolved once per model."""
        key = (policy.key, direction, index)
        cached = self._peers.get(key)
        if cached is None:
            peer_pods = [p for peer in rule.peers for p in self.peer_pods(policy, peer)]
            peers = None if not rule.peers else _networks(
                [n for peer in rule.peers if peer.ip_block for n in peer.ip_block.networks()]
                + [address_network(ip) for p in peer_pods for ip in p.ips])
            cached = self._peers[key] = (peers, peer_pods)
        return cached

    def _compile(self, pod: PodInfo, policy: Policy, rule: Rule, direction: str, index: int) -> list[Allow]:
        source = f"{policy.key} {direction.lower()}[{index}]"
        peers, peer_pods = self._rule_peers(policy, rule, direction, index)
        if not rule.ports:
            return [Allow(peers, None, source)]
        fixed = [PortRange(p.protocol, p.port, p.end_port or p.port) if isinstance(p.port, int)
                 else PortRange(p.protocol) for p in rule.ports if not isinstance(p.port, str)]
        named = [p for p in rule.ports if isinstance(p.port, str)]
        allows = [Allow(peers, tuple(fixed), source)] if fixed else []
        if direction == INGRESS:  # names are the selected pod's own ports
            resolved = [PortRange(p.protocol, n, n) for p in named
                        if (n := pod.named_port(str(p.port), p.protocol)) is not None]
            if resolved:
                allows.append(Allow(peers, tuple(resolved), source))
            return allows
        # Egress: each destination pod names its own ports, so group peers by number.
        candidates = peer_pods if rule.peers else self.pods
        for p in named:
            by_number: dict[int, list[str]] = {}
            for peer_pod in candidates:
                number = peer_pod.named_port(str(p.port), p.protocol)
                if number is not None:
                    by_number.setdefault(number, []).extend(peer_pod.ips)
            for number, ips in sorted(by_number.items()):
                allows.append(Allow(_networks([address_network(ip) for ip in ips]),
                                    (PortRange(p.protocol, number, number),), source))
        return allows

    # -- the question the service proxy asks ----------------------------------------------
    def is_host(self, address: IPAddress) -> bool:
        return address not in self.by_ip and any(address in net for net in self.host_networks)

    def allowed(self, src_ip: str, dst_ip: str, port: int, protocol: str = "TCP") -> bool:
        """May `src_ip` open a connection to `dst_ip`:`port`/`protocol` (both halves)?"""
        key = (src_ip, dst_ip, port, protocol)
        answer = self._answers.get(key)
        if answer is None:
            answer = self._decide(src_ip, dst_ip, port, protocol)
            if len(self._answers) >= _CACHE_SIZE:
                self._answers.clear()
            self._answers[key] = answer
        return answer

    def _decide(self, src_ip: str, dst_ip: str, port: int, protocol: str) -> bool:
        protocol = protocol.upper()
        if protocol not in PROTOCOLS:
            raise PolicyError(f"protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise PolicyError(f"port {port!r} is not in 0-65535")
        try:
            src, dst = ipaddress.ip_address(src_ip), ipaddress.ip_address(dst_ip)
        except ValueError as exc:
            raise PolicyError(str(exc)) from None
        if src == dst:
            return True  # a pod cannot block traffic to itself
        src_pod, dst_pod = self.by_ip.get(src), self.by_ip.get(dst)
        if src_pod is not None and not self.is_host(dst):
            egress = self.rules_for(src_pod).egress
            if egress is not None and not any(a.matches(dst, port, protocol) for a in egress):
                return False
        if dst_pod is not None and not self.is_host(src):
            ingress = self.rules_for(dst_pod).ingress
            if ingress is not None and not any(a.matches(src, port, protocol) for a in ingress):
                return False
        return True


def _networks(nets: Iterable[IPNetwork]) -> tuple[IPNetwork, ...]:
    """Disjoint, merged, sorted: IPv4 first."""
    nets = list(nets)
    v4 = [n for n in nets if n.version == 4]
    v6 = [n for n in nets if n.version == 6]
    return (*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6))  # type: ignore[arg-type]
