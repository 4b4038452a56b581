"""The data the CNI specification (version 1.0) passes between a runtime and its plugins.

A runtime (our kubelet) asks plugins to ADD a container to a network, CHECK it is still
attached, DEL it, or report their VERSION. What comes back is a Result (interfaces, IP
addresses, routes, DNS) or an error object `{"code", "msg", "details"}` with the spec's
well-known codes. These classes hold exactly the JSON fields the spec names, so a Result
made by an in-process plugin and one parsed from a real plugin binary's stdout are the
same object, and either can be handed to the next plugin of a chain as `prevResult`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

CURRENT_VERSION = "1.0.0"
# Versions whose Result has the `ips`/`interfaces` shape (0.1.0 and 0.2.0 used ip4/ip6).
SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0")

# Error codes of the spec ("Well-known Error Codes"); 100 and above are plugin-specific.
ERR_INCOMPATIBLE_VERSION = 1
ERR_UNSUPPORTED_FIELD = 2
ERR_UNKNOWN_CONTAINER = 3
ERR_INVALID_ENVIRONMENT = 4
ERR_IO_FAILURE = 5
ERR_DECODING_FAILURE = 6
ERR_INVALID_NETWORK_CONFIG = 7
ERR_TRY_AGAIN_LATER = 11
ERR_INTERNAL = 999  # what libcni's skel reports for an error without a code


class CNIError(Exception):
    """A CNI error object: what a plugin prints on stdout when it exits non-zero."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(f"{msg}; {details}" if details else msg)
        self.code = code
        self.msg = msg
        self.details = details

    def to_json(self, cni_version: str = CURRENT_VERSION) -> dict[str, Any]:
        out: dict[str, Any] = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out

    @classmethod
    def from_json(cls, data: Any) -> CNIError:
        if not isinstance(data, dict) or not isinstance(data.get("code"), int):
            raise CNIError(ERR_DECODING_FAILURE, "invalid CNI error object", repr(data)[:200])
        return cls(data["code"], str(data.get("msg", "")), str(data.get("details", "")))


def _check_cidr(value: Any, what: str) -> str:
    try:
        ipaddress.ip_interface(value)
    except (TypeError, ValueError):
        raise CNIError(ERR_DECODING_FAILURE, f"invalid {what} {value!r}: expected an address in CIDR form") from None
    if "/" not in str(value):
        raise CNIError(ERR_DECODING_FAILURE, f"invalid {what} {value!r}: expected an address in CIDR form")
    return str(value)


def _check_ip(value: Any, what: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except (TypeError, ValueError):
        raise CNIError(ERR_DECODING_FAILURE, f"invalid {what} {value!r}: expected an IP address") from None


@dataclass
class Interface:
    """`interfaces[]`: a link a plugin created; `sandbox` is the netns path (empty on the host)."""

    name: str
    mac: str = ""
    sandbox: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.mac:
            out["mac"] = self.mac
        if self.sandbox:
            out["sandbox"] = self.sandbox
        return out


@dataclass
class IPConfig:
    """`ips[]`: an address in CIDR form, its gateway, and the index into `interfaces`."""

    address: str
    gateway: str | None = None
    interface: int | None = None

    def __post_init__(self) -> None:
        self.address = _check_cidr(self.address, "ips[].address")
        if self.gateway is not None:
            self.gateway = _check_ip(self.gateway, "ips[].gateway")

    @property
    def ip(self) -> str:
        """The bare address, without the prefix length (what status.podIP holds)."""
        return str(ipaddress.ip_interface(self.address).ip)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"address": self.address}
        if self.gateway:
            out["gateway"] = self.gateway
        if self.interface is not None:
            out["interface"] = self.interface
        return out


@dataclass
class Route:
    dst: str
    gw: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"dst": self.dst, **({"gw": self.gw} if self.gw else {})}


@dataclass
class DNS:
    nameservers: list[str] = field(default_factory=list)
    domain: str = ""
    search: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("nameservers", "domain", "search", "options"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


@dataclass
class Result:
    """The success result of ADD (and the `prevResult` given to the next plugin)."""

    cni_version: str = CURRENT_VERSION
    interfaces: list[Interface] = field(default_factory=list)
    ips: list[IPConfig] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    dns: DNS = field(default_factory=DNS)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cniVersion": self.cni_version}
        if self.interfaces:
            out["interfaces"] = [i.to_json() for i in self.interfaces]
        if self.ips:
            out["ips"] = [i.to_json() for i in self.ips]
        if self.routes:
            out["routes"] = [r.to_json() for r in self.routes]
        out["dns"] = self.dns.to_json()
        return out

    @classmethod
    def from_json(cls, data: Any) -> Result:
        """Parse a Result of any supported version (0.3.x results carry ips[].version,
        which 1.0.0 dropped; it is ignored)."""
        if not isinstance(data, dict):
            raise CNIError(ERR_DECODING_FAILURE, "invalid CNI result: expected a JSON object")
        version = data.get("cniVersion", "")
        if version not in SUPPORTED_VERSIONS:
            raise CNIError(ERR_INCOMPATIBLE_VERSION, "incompatible CNI versions",
                           f"result is {version!r}, supported {list(SUPPORTED_VERSIONS)}")
        try:
            interfaces = [Interface(i["name"], i.get("mac", ""), i.get("sandbox", ""))
                          for i in data.get("interfaces") or []]
            ips = [IPConfig(i["address"], i.get("gateway"), i.get("interface"))
                   for i in data.get("ips") or []]
            routes = [Route(r["dst"], r.get("gw")) for r in data.get("routes") or []]
            raw_dns = data.get("dns") or {}
            dns = DNS(list(raw_dns.get("nameservers") or []), raw_dns.get("domain") or "",
                      list(raw_dns.get("search") or []), list(raw_dns.get("options") or []))
        except (KeyError, TypeError, AttributeError) as exc:
            raise CNIError(ERR_DECODING_FAILURE, f"invalid CNI result: {exc!r}") from None
        for ip in ips:
            if ip.interface is not None and not 0 <= ip.interface < len(interfaces):
                raise CNIError(ERR_DECODING_FAILURE,
                               f"invalid CNI result: ips[].interface {ip.interface} names no interface")
        return cls(version, interfaces, ips, routes, dns)

    def converted(self, cni_version: str) -> Result:
        """This result as `cni_version` (the shapes of 0.3.0 to 1.0.0 coincide here)."""
        if cni_version not in SUPPORTED_VERSIONS:
            raise CNIError(ERR_INCOMPATIBLE_VERSION, "incompatible CNI versions",
                           f"cannot convert a result to {cni_version!r}")
        return Result(cni_version, list(self.interfaces), list(self.ips), list(self.routes), self.dns)


def version_result(supported: tuple[str, ...] = SUPPORTED_VERSIONS) -> dict[str, Any]:
    """What VERSION prints: the config's version and all versions a plugin speaks."""
    return {"cniVersion": CURRENT_VERSION, "supportedVersions": list(supported)}
