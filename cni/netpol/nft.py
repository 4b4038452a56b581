"""One node's NetworkPolicy as an nftables table, replaced atomically.

Where the packets are: in bridge mode, pod-to-pod traffic on one node is bridged (and
with net.bridge.bridge-nf-call-iptables=1 passes the inet `forward` hook with
conntrack); between nodes it is routed by the host, also through `forward`. So one
base chain on that hook sees every pod-to-pod packet. Host-originated traffic (the
service proxy, kubelet probes) leaves through `output` and replies come back through
`input`: neither is filtered, as Kubernetes always allows a pod's node.

Each node's agent owns one table, `<prefix>_<node>`, and matches only its own pods:
their ingress by destination address, their egress by source address. A packet
between two nodes crosses both tables (nftables runs every base chain of a hook, and a
drop in any one is final), so it needs the sender's egress and the receiver's ingress,
as the model says. The layout:

    table inet mkp_netpol_node1 {
        set isolated_v4 { ... }              this node's pods isolated in some direction
        set ingress_default_db_0_v4 { ... }  peers of one rule (an interval set)
        chain ingress_default_db {           one chain per isolated pod and direction
            ip saddr @ingress_default_db_0_v4 meta l4proto tcp th dport 6379 return
            counter drop
        }
        chain forward {
            type filter hook forward priority filter; policy accept;
            ip saddr != @isolated_v4 ip daddr != @isolated_v4 accept   (not ours)
            ct state established,related accept                        (replies)
            ct state invalid drop
            ip saddr vmap { 10.244.255.5 : jump egress_default_db }
            ip daddr vmap { 10.244.255.5 : jump ingress_default_db }
        }
    }

Policy verdicts are drops (the client times out), as Calico and Cilium do. A new
ruleset is one `nft -f -` transaction that deletes the table and adds it again, so
packets see the old rules or the new ones, never a half-written table. Connections
already established stay up when a policy later forbids them (conntrack), as in most
implementations.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Iterable, Sequence

from cni.netpol.model import Allow, IPNetwork, PodInfo, PodRules, PolicyModel, address_network

DEFAULT_PREFIX = "mkp_netpol"
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_MAX_NAME = 200  # nftables allows 255 bytes for table, chain and set names


class NftError(RuntimeError):
    """nft refused a script or could not be run."""


def _identifier(text: str) -> str:
    """`text` as an nft name: letters, digits, `_`, `.` and `-` after the first
    character; long ones cut and made unique by a hash."""
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", text)
    if not name[:1].isalpha():
        name = "x" + name
    if len(name) > _MAX_NAME:
        name = name[:_MAX_NAME - 9] + "_" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return name


def table_name(node: str, prefix: str = DEFAULT_PREFIX) -> str:
    """`<prefix>_<node>` with everything but letters, digits and `_` turned into `_`."""
    if not node:
        raise ValueError("a node name is needed for its NetworkPolicy table")
    return f"{prefix}_{_UNSAFE.sub('_', node)}"


# -- rendering -----------------------------------------------------------------------------------
def _elements(nets: Iterable[IPNetwork]) -> str:
    return ", ".join(str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n) for n in nets)


def _set(name: str, family: int, nets: Sequence[IPNetwork], interval: bool = True) -> list[str]:
    kind = "ipv4_addr" if family == 4 else "ipv6_addr"
    flags = " flags interval;" if interval else ""
    elements = f" elements = {{ {_elements(nets)} }};" if nets else ""
    return [f"\tset {name} {{ type {kind};{flags}{elements} }}"]


def _port_matches(allow: Allow) -> list[str]:
    if allow.ports is None:
        return [""]
    matches = []
    for r in allow.ports:
        proto = r.protocol.lower()
        if r.first is None:
            matches.append(f" meta l4proto {proto}")
        elif r.first == r.last:
            matches.append(f" meta l4proto {proto} th dport {r.first}")
        else:
            matches.append(f" meta l4proto {proto} th dport {r.first}-{r.last}")
    return matches


def _pod_chain(chain: str, allows: tuple[Allow, ...], peer_field: str) -> tuple[list[str], list[str]]:
    """(set declarations, chain) for one pod and direction; `peer_field` is saddr for
    ingress, daddr for egress."""
    sets: list[str] = []
    rules: list[str] = []
    for i, allow in enumerate(allows):
        comment = f' comment "{allow.source[:120]}"' if allow.source else ""
        addresses = [""]
        if allow.peers is not None:
            addresses = []
            for family, keyword in ((4, "ip"), (6, "ip6")):
                nets = [n for n in allow.peers if n.version == family]
                if nets:
                    name = f"{chain}_{i}_v{family}"
                    sets += _set(name, family, nets)
                    addresses.append(f" {keyword} {peer_field} @{name}")
        rules += [f"\t\t{(a + p + ' return').strip()}{comment}" for a in addresses for p in _port_matches(allow)]
    body = [f"\tchain {chain} {{", *rules, '\t\tcounter drop comment "not allowed by any NetworkPolicy"', "\t}"]
    return sets, body


def local_rules(model: PolicyModel, node: str) -> list[PodRules]:
    """The compiled rules of this node's pods that are isolated in some direction."""
    found = [model.rules_for(p) for p in model.pods if p.node == node]
    return sorted((r for r in found if r.ingress is not None or r.egress is not None), key=lambda r: r.pod.key)


def _vmap(keyword: str, field: str, targets: list[tuple[str, str]]) -> list[str]:
    if not targets:
        return []
    entries = ", ".join(f"{ip} : jump {chain}" for ip, chain in targets)
    return [f"\t\t{keyword} {field} vmap {{ {entries} }}"]


def _addresses(model: PolicyModel, pod: PodInfo, family: int) -> list[str]:
    """The pod's addresses of one family that are its own in the model (two pods
    claiming one address, a stale status, must not make nft reject duplicate keys)."""
    return [ip for ip in pod.ips if (":" in ip) == (family == 6) and model.pod_at(ip) is pod]


def render_table(model: PolicyModel, node: str, table: str) -> str:
    """The `table inet <table> { ... }` block for `node`'s pods."""
    rules = local_rules(model, node)
    sets: list[str] = []
    chains: list[str] = []
    jumps: dict[tuple[str, str], list[tuple[str, str]]] = {}
    isolated: dict[int, list[IPNetwork]] = {4: [], 6: []}
    for pod_rules in rules:
        pod = pod_rules.pod
        for family in (4, 6):
            isolated[family] += [address_network(ip) for ip in _addresses(model, pod, family)]
        for direction, allows, field in (("ingress", pod_rules.ingress, "daddr"), ("egress", pod_rules.egress, "saddr")):
            if allows is None:
                continue
            chain = _identifier(f"{direction}_{pod.namespace}_{pod.name}")
            pod_sets, body = _pod_chain(chain, allows, "saddr" if direction == "ingress" else "daddr")
            sets += pod_sets
            chains += body
            for family, keyword in ((4, "ip"), (6, "ip6")):
                jumps.setdefault((keyword, field), []).extend((ip, chain) for ip in _addresses(model, pod, family))
    head = [*_set("isolated_v4", 4, isolated[4], interval=False), *_set("isolated_v6", 6, isolated[6], interval=False)]
    forward = [
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy accept;",
        "\t\tmeta nfproto ipv4 ip saddr != @isolated_v4 ip daddr != @isolated_v4 accept",
        "\t\tmeta nfproto ipv6 ip6 saddr != @isolated_v6 ip6 daddr != @isolated_v6 accept",
        "\t\tct state established,related accept",
        "\t\tct state invalid drop",
        *_vmap("ip", "saddr", jumps.get(("ip", "saddr"), [])),
        *_vmap("ip6", "saddr", jumps.get(("ip6", "saddr"), [])),
        *_vmap("ip", "daddr", jumps.get(("ip", "daddr"), [])),
        *_vmap("ip6", "daddr", jumps.get(("ip6", "daddr"), [])),
        "\t}",
    ]
    return "\n".join([f"table inet {table} {{", *head, *sets, *chains, *forward, "}"]) + "\n"


def render(model: PolicyModel, node: str, *, table: str) -> str:
    """The whole transaction: make sure the table exists, delete it, define it anew."""
    return f"table inet {table}\ndelete table inet {table}\n" + render_table(model, node, table)


def removal(table: str) -> str:
    """A transaction deleting the table whether or not it exists (nft 1.0.6 has no
    `destroy`: adding an existing table is a no-op, so add, then delete)."""
    return f"table inet {table}\ndelete table inet {table}\n"


# -- running nft ---------------------------------------------------------------------------------
class Nftables:
    """Runs `nft`, in this network namespace or (for tests) a named one via `ip netns exec`."""

    def __init__(self, *, netns: str | None = None, binary: str = "nft") -> None:
        self.netns = netns
        self.binary = binary

    def _argv(self, *args: str) -> list[str]:
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        return [*prefix, self.binary, *args]

    def run(self, *args: str, script: str | None = None) -> str:
        argv = self._argv(*args)
        try:
            proc = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NftError(f"{' '.join(argv)}: {exc}") from None
        if proc.returncode != 0:
            raise NftError(f"{' '.join(argv)}: {(proc.stderr or proc.stdout).strip()}")
        return proc.stdout

    def apply(self, script: str, *, check: bool = False) -> None:
        """One atomic transaction (`nft -f -`); `check` only validates (`-c`)."""
        self.run(*(["-c"] if check else []), "-f", "-", script=script)

    def tables(self, prefix: str = "") -> list[str]:
        """Names of the inet tables starting with `prefix`."""
        listing = json.loads(self.run("-j", "list", "tables") or "{}")
        return sorted(entry["table"]["name"] for entry in listing.get("nftables", [])
                      if "table" in entry and entry["table"].get("family") == "inet"
                      and entry["table"]["name"].startswith(prefix))

    def delete(self, table: str) -> None:
        self.apply(removal(table))


def cleanup(prefix: str = DEFAULT_PREFIX, *, nft: Nftables | None = None) -> list[str]:
    """Delete every inet table whose name starts with `prefix` (what `mkp down` calls);
    returns their names."""
    if not prefix:
        raise ValueError("cleanup needs a non-empty table prefix")
    nft = nft or Nftables()
    names = nft.tables(prefix)
    if names:
        nft.apply("".join(removal(name) for name in names))
    return names
