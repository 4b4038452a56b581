"""A pod's /etc/resolv.conf, decided as the kubelet decides it and written as containerd writes it.

The kubelet (pkg/kubelet/network/dns) starts from the host's resolv.conf (its
--resolv-conf, /etc/resolv.conf) and applies the pod's dnsPolicy:

  ClusterFirst (default)   the cluster DNS servers (--cluster-dns) only, search
                           `<ns>.svc.<domain> svc.<domain> <domain>` then the host's
                           searches, `options ndots:5`. A hostNetwork pod gets Default.
  ClusterFirstWithHostNet  ClusterFirst, hostNetwork or not.
  Default                  the host's nameservers, searches and options.
  None                     nothing: only what spec.dnsConfig says.

With no --cluster-dns configured, ClusterFirst falls back to Default and says so with a
Warning `MissingClusterDNS`. Then spec.dnsConfig is merged in: nameservers and searches
appended (duplicates dropped), options by name (the pod's value wins). Last the limits:
3 nameservers, 32 search domains, 2048 characters of search line, no domain over 253
characters; cutting reports `DNSConfigForming`.

A dnsPolicy the API server lets through but the kubelet does not know is treated as
ClusterFirst, as the kubelet does (it logs an error). The result is a `DNSConfig`, whose
`resolv_conf()` is the file: `search`, `nameserver` lines, `options`, in that order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST_RESOLV_CONF = Path("/etc/resolv.conf")
MAX_NAMESERVERS = 3
MAX_SEARCH_PATHS = 32
MAX_SEARCH_CHARS = 2048
MAX_DOMAIN_CHARS = 253
DEFAULT_OPTIONS = ("ndots:5",)
CLUSTER_FIRST = "ClusterFirst"
CLUSTER_FIRST_WITH_HOST_NET = "ClusterFirstWithHostNet"
DEFAULT = "Default"
NONE = "None"
WARNING = "Warning"


@dataclass
class DNSConfig:
    """What the runtime is handed (CRI's DNSConfig): servers, searches, options."""

    servers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    def resolv_conf(self) -> str:
        lines = []
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        lines += [f"nameserver {server}" for server in self.servers]
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "\n".join(lines) + "\n" if lines else ""


@dataclass(frozen=True)
class DNSEvent:
    """An event the decision calls for: about the pod, or (`node`) about the node."""

    reason: str
    message: str
    node: bool = False
    type: str = WARNING


def parse_resolv_conf(text: str) -> DNSConfig:
    """nameserver lines accumulate; the last search line and the last options line win;
    search domains lose a trailing dot."""
    config = DNSConfig()
    for line in text.splitlines():
        fields = line.strip().split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0] == "nameserver" and len(fields) >= 2:
            config.servers.append(fields[1])
        elif fields[0] == "search":
            config.searches = [s.removesuffix(".") for s in fields[1:]]
        elif fields[0] == "options":
            config.options = fields[1:]
    return config


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _merge_options(existing: list[str], extra: list[dict[str, Any]]) -> list[str]:
    """By name; the pod's value replaces the host's. Go iterates a map here (random
    order); we keep the first-seen order so the file is stable."""
    merged: dict[str, str] = {}
    for option in existing:
        name, _, value = option.partition(":")
        merged[name] = value
    for option in extra:
        value = option.get("value")
        merged[str(option.get("name"))] = "" if value is None else str(value)
    return [f"{n}:{v}" if v else n for n, v in merged.items()]


def _pod_label(pod: dict[str, Any]) -> str:
    """format.Pod: name_namespace(uid)."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})"


def _fit(config: DNSConfig, events: list[DNSEvent]) -> DNSConfig:
    if len(config.servers) > MAX_NAMESERVERS:
        config.servers = config.servers[:MAX_NAMESERVERS]
        events.append(DNSEvent("DNSConfigForming", "Nameserver limits were exceeded, some nameservers have been "
                                                   f"omitted, the applied nameserver line is: {' '.join(config.servers)}"))
    searches = config.searches[:MAX_SEARCH_PATHS]
    exceeded = len(config.searches) > MAX_SEARCH_PATHS
    kept = [s for s in searches if len(s) <= MAX_DOMAIN_CHARS]
    exceeded |= len(kept) != len(searches)
    while kept and len(" ".join(kept)) > MAX_SEARCH_CHARS:
        kept.pop()
        exceeded = True
    if exceeded:
        events.append(DNSEvent("DNSConfigForming", "Search Line limits were exceeded, some search paths have been "
                                                   f"omitted, the applied search line is: {' '.join(kept)}"))
    config.searches = kept
    return config


def dns_type(spec: dict[str, Any]) -> str:
    """What the policy amounts to: ClusterFirst (cluster DNS), Default (the host's) or None."""
    policy = spec.get("dnsPolicy") or CLUSTER_FIRST
    if policy == NONE:
        return NONE
    if policy == DEFAULT or (policy == CLUSTER_FIRST and spec.get("hostNetwork")):
        return DEFAULT
    return CLUSTER_FIRST  # ClusterFirst, ClusterFirstWithHostNet, and anything unknown


def pod_dns_config(pod: dict[str, Any], *, cluster_dns: list[str], cluster_domain: str,
                   host_resolv_conf: str) -> tuple[DNSConfig, list[DNSEvent]]:
    """The pod's DNS settings and the events they call for. `host_resolv_conf` is the
    text of the host's resolv.conf."""
    spec = pod.get("spec") or {}
    kind = dns_type(spec)
    events: list[DNSEvent] = []
    config = parse_resolv_conf(host_resolv_conf)
    if kind == NONE:
        config = DNSConfig()
    elif kind == CLUSTER_FIRST:
        if cluster_dns:
            config.servers = list(cluster_dns)
            if cluster_domain:
                meta = pod.get("metadata") or {}
                cluster = [f"{meta.get('namespace')}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain]
                config.searches = _unique(cluster + config.searches)
            config.options = list(DEFAULT_OPTIONS)
        else:
            message = (f'kubelet does not have ClusterDNS IP configured and cannot create Pod using "{CLUSTER_FIRST}" '
                       f'policy. Falling back to "{DEFAULT}" policy.')
            events.append(DNSEvent("MissingClusterDNS", message, node=True))
            events.append(DNSEvent("MissingClusterDNS", f'pod: "{_pod_label(pod)}". {message}'))
    extra = spec.get("dnsConfig")
    if extra:
        config.servers = _unique(config.servers + [str(s) for s in extra.get("nameservers") or []])
        config.searches = _unique(config.searches + [str(s) for s in extra.get("searches") or []])
        config.options = _merge_options(config.options, list(extra.get("options") or []))
    return _fit(config, events), events


def read_host_resolv_conf(path: Path = HOST_RESOLV_CONF) -> str:
    """The host's resolv.conf; a missing one reads as empty (the kubelet would fail the
    pod; we prefer a pod without DNS to no pod on a host without resolv.conf)."""
    try:
        return path.read_text()
    except OSError:
        return ""
