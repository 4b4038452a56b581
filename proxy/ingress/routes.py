"""Ingresses -> a routing table of servers (one per host) and their locations, merged the
way ingress-nginx merges them, and the matching of a request against it.

Merging (ingress-nginx's createServers / getBackendServers), Ingresses taken oldest first
(creationTimestamp, then namespace/name):
- The catch-all server `_` answers hosts no rule names; its root location goes to the
  controller's default backend (404) unless an Ingress has spec.defaultBackend: then to
  that (the newest such Ingress wins, since each one overwrites it in turn).
- A rule's host gets a server the first time an Ingress names it; its root location `/`
  goes to that Ingress's spec.defaultBackend, or to the controller's default backend.
  Rules without a host add their paths to `_`.
- A path (value and pathType) already configured on a host by an older Ingress stays
  theirs; an explicit `/` Prefix path replaces the root location.
- A host has TLS when an Ingress with rules for it has a spec.tls section (the first such
  Ingress decides): the secret of the tls entry listing the host (or listing no hosts),
  else the controller's fake certificate, as ingress-nginx does.

Matching (the Ingress API's rules): the host exactly, then a one-label wildcard
(`*.foo.com` matches `bar.foo.com`, not `foo.com` nor `baz.bar.foo.com`), then `_`. Among
the server's locations the longest path wins; on equal length Exact before Prefix.
Prefix matches element-wise on `/` (`/foo` matches `/foo`, `/foo/`, `/foo/bar`, not
`/foobar`). ImplementationSpecific is matched as Prefix. When any Ingress on a host asks
for regexes (use-regex or rewrite-target), every non-Exact path of that host is a
case-insensitive regex anchored at the start, as ingress-nginx then writes all of the
host's locations as `~*` locations.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from proxy.ingress.annotations import LocationConfig, parse

log = logging.getLogger("proxy.ingress")

Obj = dict[str, Any]
CATCH_ALL = "_"
EXACT, PREFIX, IMPLEMENTATION_SPECIFIC = "Exact", "Prefix", "ImplementationSpecific"


@dataclass(frozen=True)
class ServiceBackend:
    """spec...backend.service: a Service port by number or by name."""

    namespace: str
    name: str
    port: int | str

    @property
    def upstream_name(self) -> str:
        return f"{self.namespace}-{self.name}-{self.port}"  # ingress-nginx's upstream naming


@dataclass
class Location:
    path: str
    path_type: str
    backend: ServiceBackend | None  # None: the controller's default backend (404)
    ingress: tuple[str, str] | None = None  # (namespace, name) of the Ingress it came from
    config: LocationConfig = field(default_factory=LocationConfig)
    is_default: bool = False  # a server's root location made from a default backend
    unsupported: str | None = None  # why the backend cannot be served (a resource backend)
    pattern: re.Pattern[str] | None = None  # set when the server matches by regex

    def match(self, path: str) -> re.Match[str] | bool | None:
        if self.path_type == EXACT:
            return path == self.path
        if self.pattern is not None:
            return self.pattern.match(path)
        return prefix_matches(self.path, path)


@dataclass
class Server:
    hostname: str
    locations: list[Location]
    tls: bool = False
    tls_secret: tuple[str, str] | None = None  # (namespace, name); None with tls: fake certificate
    regex: bool = False

    def route(self, path: str) -> tuple[Location, re.Match[str] | None]:
        for location in self.locations:
            found = location.match(path)
            if found:
                return location, found if isinstance(found, re.Match) else None
        return self.locations[-1], None  # unreachable while a root location exists


@dataclass
class RoutingTable:
    servers: dict[str, Server]
    errors: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # per Ingress

    def server_for(self, host: str) -> Server:
        name = normalize_host(host)
        server = self.servers.get(name)
        if server is None and "." in name:
            server = self.servers.get("*." + name.split(".", 1)[1])
        return server or self.servers[CATCH_ALL]

    def route(self, host: str, path: str) -> tuple[Server, Location, re.Match[str] | None]:
        server = self.server_for(host)
        location, found = server.route(path)
        return server, location, found

    def backends(self) -> set[ServiceBackend]:
        return {loc.backend for s in self.servers.values() for loc in s.locations if loc.backend}


def normalize_host(host: str) -> str:
    """A Host header as a server name: lower case, without port or trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0].rstrip(".") if host.count(":") == 1 else host.rstrip(".")


def prefix_matches(prefix: str, path: str) -> bool:
    """The Ingress API's Prefix: element-wise on `/`, a trailing slash ignored."""
    base = prefix.rstrip("/")
    return not base or path == base or path.startswith(base + "/")


def _backend(namespace: str, backend: Obj | None) -> tuple[ServiceBackend | None, str | None]:
    if not backend:
        return None, None
    service = backend.get("service")
    if not service:
        kind = (backend.get("resource") or {}).get("kind", "resource")
        return None, f"resource backends ({kind}) are not supported by the mkp ingress controller"
    port = service.get("port") or {}
    number = port.get("number")
    return ServiceBackend(namespace, service.get("name", ""), int(number) if number else port.get("name", "")), None


def _ingress_order(ing: Obj) -> tuple[str, str, str]:
    meta = ing.get("metadata") or {}
    return meta.get("creationTimestamp") or "", meta.get("namespace") or "", meta.get("name") or ""


def _key(ing: Obj) -> tuple[str, str]:
    meta = ing.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


def _root(backend: ServiceBackend | None, ingress: tuple[str, str] | None, config: LocationConfig,
          unsupported: str | None = None) -> Location:
    return Location("/", PREFIX, backend, ingress, config, is_default=True, unsupported=unsupported)


class _Builder:
    """One pass of ingress-nginx's merge over the Ingresses we serve."""

    def __init__(self) -> None:
        self.servers: dict[str, Server] = {CATCH_ALL: Server(CATCH_ALL, [_root(None, None, LocationConfig())])}
        self.errors: dict[tuple[str, str], list[str]] = {}

    def add_servers(self, ing: Obj, config: LocationConfig) -> None:
        key, spec = _key(ing), ing.get("spec") or {}
        default, unsupported = _backend(key[0], spec.get("defaultBackend"))
        if default is not None or unsupported:
            catch_all = self.servers[CATCH_ALL]
            keep = catch_all.locations[0].config if spec.get("rules") else config
            catch_all.locations[0] = _root(default, key, keep, unsupported)
        for rule in spec.get("rules") or []:
            host = (rule.get("host") or CATCH_ALL).lower()
            if host not in self.servers:
                self.servers[host] = Server(host, [_root(default, key, config, unsupported)])

    def add_locations(self, ing: Obj, config: LocationConfig) -> None:
        key, spec = _key(ing), ing.get("spec") or {}
        for rule in spec.get("rules") or []:
            server = self.servers[(rule.get("host") or CATCH_ALL).lower()]
            for path in (rule.get("http") or {}).get("paths") or []:
                self._add_path(server, key, config, path)

    def _add_path(self, server: Server, key: tuple[str, str], config: LocationConfig, path: Obj) -> None:
        value, path_type = path.get("path") or "/", path.get("pathType") or IMPLEMENTATION_SPECIFIC
        backend, unsupported = _backend(key[0], path.get("backend"))
        new = Location(value, path_type, backend, key, config, unsupported=unsupported)
        for i, existing in enumerate(server.locations):
            if existing.path == value and existing.path_type == path_type:
                if existing.is_default:
                    server.locations[i] = new
                else:
                    log.info("location %s%s (%s) already configured by Ingress %s/%s; %s/%s's is ignored",
                             server.hostname, value, path_type, *existing.ingress or ("", ""), *key)
                return
        server.locations.append(new)

    def add_tls(self, ing: Obj) -> None:
        key, spec = _key(ing), ing.get("spec") or {}
        tls = spec.get("tls") or []
        if not tls:
            return
        for rule in spec.get("rules") or []:
            host = (rule.get("host") or CATCH_ALL).lower()
            server = self.servers[host]
            if server.tls:
                continue
            server.tls = True
            secret = _secret_for(host, tls)
            server.tls_secret = (key[0], secret) if secret else None

    def finish(self) -> RoutingTable:
        for server in self.servers.values():
            server.regex = any(loc.config.regex for loc in server.locations)
            for loc in server.locations:
                if server.regex and loc.path_type != EXACT:
                    loc.pattern = self._compile(loc)
            server.locations.sort(key=lambda loc: (-len(loc.path), loc.path_type != EXACT))
        return RoutingTable(self.servers, self.errors)

    def _compile(self, loc: Location) -> re.Pattern[str] | None:
        try:
            return re.compile(loc.path, re.IGNORECASE)
        except re.error as exc:
            if loc.ingress:
                self.errors.setdefault(loc.ingress, []).append(f"path {loc.path!r} is not a valid regex: {exc}")
            return re.compile(re.escape(loc.path), re.IGNORECASE)


def _secret_for(host: str, tls: list[Obj]) -> str | None:
    for entry in tls:
        if host in [h.lower() for h in entry.get("hosts") or []]:
            return entry.get("secretName") or None
    for entry in tls:
        if not entry.get("hosts"):
            return entry.get("secretName") or None
    return None


def build_table(ingresses: list[Obj]) -> RoutingTable:
    """The routing table for these Ingresses (the ones this controller serves)."""
    ordered = sorted(ingresses, key=_ingress_order)
    configs = {_key(ing): parse((ing.get("metadata") or {}).get("annotations")) for ing in ordered}
    builder = _Builder()
    for ing in ordered:
        builder.add_servers(ing, configs[_key(ing)])
    for ing in ordered:
        builder.add_locations(ing, configs[_key(ing)])
    for ing in ordered:
        builder.add_tls(ing)
    for key, config in configs.items():
        if config.errors:
            builder.errors.setdefault(key, []).extend(config.errors)
    return builder.finish()


def rewrite(location: Location, path: str, query: str) -> str | None:
    """The upstream URI when the location has rewrite-target, as nginx's
    `rewrite "(?i)<path>" <target> break;`: the whole URI becomes the target with $1..$9
    expanded; the query string is appended unless the target sets its own."""
    target = location.config.rewrite_target
    if target is None:
        return None
    pattern = location.pattern or re.compile(re.escape(location.path), re.IGNORECASE)
    found = pattern.search(path)
    if found is None:
        return None
    groups = found.groups()
    result = re.sub(r"\$(\d)", lambda m: _group(groups, int(m.group(1))), target)
    if "?" in result:
        if result.endswith("?"):
            return result[:-1]
        return f"{result}&{query}" if query else result
    return f"{result}?{query}" if query else result


def _group(groups: tuple[str | None, ...], n: int) -> str:
    if n == 0 or n > len(groups):
        return ""
    return groups[n - 1] or ""
