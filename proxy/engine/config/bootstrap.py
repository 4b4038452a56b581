"""The bootstrap (envoy.config.bootstrap.v3.Bootstrap, static resources only): reading a
file (YAML or JSON), the checks that span messages (names unique, routes naming
clusters that exist, one listener per address), and the way back to Envoy's
/config_dump shape."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxy.engine.config.cluster import Cluster
from proxy.engine.config.core import Address
from proxy.engine.config.errors import ConfigError
from proxy.engine.config.listener import AccessLog, HttpConnectionManager, Listener, TcpProxy
from proxy.engine.config.route import RouteConfiguration
from proxy.engine.config.schema import TYPE_PREFIX, dump, fld, parse


@dataclass(frozen=True, kw_only=True)
class Node:
    id: str = fld("")
    cluster: str = fld("")
    metadata: dict | None = fld()


@dataclass(frozen=True, kw_only=True)
class Admin:
    address: Address | None = fld()
    access_log: tuple[AccessLog, ...] = fld(factory=tuple)
    access_log_path: str = fld("")  # deprecated


@dataclass(frozen=True, kw_only=True)
class StaticResources:
    listeners: tuple[Listener, ...] = fld(factory=tuple)
    clusters: tuple[Cluster, ...] = fld(factory=tuple)


@dataclass(frozen=True, kw_only=True)
class Bootstrap:
    node: Node | None = fld()
    admin: Admin | None = fld()
    static_resources: StaticResources = fld(factory=StaticResources)

    @property
    def listeners(self) -> tuple[Listener, ...]:
        return self.static_resources.listeners

    @property
    def clusters(self) -> tuple[Cluster, ...]:
        return self.static_resources.clusters

    def cluster(self, name: str) -> Cluster | None:
        return next((c for c in self.clusters if c.name == name), None)


def from_dict(obj: Any) -> Bootstrap:
    """A validated Bootstrap from JSON-shaped data; ConfigError naming the path if not."""
    if obj is None:
        obj = {}
    boot = parse(Bootstrap, obj, "")
    _cross_check(boot)
    return boot


def loads(text: str, *, fmt: str = "yaml") -> Bootstrap:
    """Parse YAML (a superset of JSON) or, with fmt="json", strict JSON."""
    if fmt == "json":
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ConfigError("", f"not valid JSON: {e}") from None
        return from_dict(data)
    import yaml  # only for YAML files: a JSON-fed proxy does not carry the parser

    try:
        data = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise ConfigError("", f"not valid {fmt.upper()}: {e}") from None
    return from_dict(data)


def load(path: str | Path) -> Bootstrap:
    """Read a bootstrap file; `.json` files as JSON, anything else as YAML."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError("", f"cannot read {p}: {e.strerror}") from None
    return loads(text, fmt="json" if p.suffix == ".json" else "yaml")


def _network_filters(boot: Bootstrap):
    for i, lis in enumerate(boot.listeners):
        chains = [(f"filter_chains[{j}]", fc) for j, fc in enumerate(lis.filter_chains)]
        if lis.default_filter_chain is not None:
            chains.append(("default_filter_chain", lis.default_filter_chain))
        for where, fc in chains:
            for k, f in enumerate(fc.filters):
                yield f"static_resources.listeners[{i}].{where}.filters[{k}].typed_config", f.typed_config


def _cross_check(boot: Bootstrap) -> None:
    _unique([c.name for c in boot.clusters], "static_resources.clusters[{}].name", "cluster name")
    _unique([lis.name for lis in boot.listeners if lis.name], "static_resources.listeners[{}].name",
            "listener name")
    addrs = [(lis.address.socket_address.address, lis.address.socket_address.port_value,
              lis.address.socket_address.protocol) for lis in boot.listeners]
    _unique(addrs, "static_resources.listeners[{}].address", "listener address")
    known = {c.name for c in boot.clusters}
    for path, cfg in _network_filters(boot):
        if isinstance(cfg, HttpConnectionManager) and cfg.route_config is not None:
            if cfg.route_config.validate_clusters is False:
                continue
            for sub, name in cfg.route_config.clusters():
                if name not in known:
                    raise ConfigError(f"{path}.route_config.{sub}", f"unknown cluster {name!r}")
            if cfg.tracing and cfg.tracing.provider:
                name = cfg.tracing.provider.typed_config.collector_cluster
                if name not in known:
                    raise ConfigError(f"{path}.tracing.provider.typed_config.collector_cluster",
                                      f"unknown cluster {name!r}")
        elif isinstance(cfg, TcpProxy):
            names = [(f"{path}.cluster", cfg.cluster)] if cfg.cluster else \
                [(f"{path}.weighted_clusters.clusters[{k}].name", c.name)
                 for k, c in enumerate(cfg.weighted_clusters.clusters)]  # type: ignore[union-attr]
            for sub, name in names:
                if name not in known:
                    raise ConfigError(sub, f"unknown cluster {name!r}")


def _unique(values: list, template: str, what: str) -> None:
    seen: dict[Any, int] = {}
    for i, v in enumerate(values):
        if v in seen:
            raise ConfigError(template.format(i), f"duplicate {what} {v!r} (also at index {seen[v]})")
        seen[v] = i


def to_dict(boot: Bootstrap, *, defaults: bool = False) -> dict[str, Any]:
    """The bootstrap as Envoy-shaped JSON data; `from_dict(to_dict(b)) == b`."""
    return dump(boot, defaults=defaults)


def route_configs(boot: Bootstrap) -> list[RouteConfiguration]:
    """The inline route configurations of every HTTP connection manager."""
    return [cfg.route_config for _, cfg in _network_filters(boot)
            if isinstance(cfg, HttpConnectionManager) and cfg.route_config is not None]


def config_dump(boot: Bootstrap, *, version_info: str = "", last_updated: float | None = None,
                defaults: bool = False) -> dict[str, Any]:
    """Envoy's admin /config_dump document: Bootstrap, Listeners, Clusters and Routes
    config dumps (static resources only)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(last_updated if last_updated is not None else time.time()))
    stamp += "Z"
    admin = TYPE_PREFIX + "envoy.admin.v3."
    return {"configs": [
        {"@type": admin + "BootstrapConfigDump", "bootstrap": to_dict(boot, defaults=defaults),
         "last_updated": stamp},
        {"@type": admin + "ClustersConfigDump", "version_info": version_info,
         "static_clusters": [{"cluster": {"@type": TYPE_PREFIX + "envoy.config.cluster.v3.Cluster",
                                          **dump(c, defaults=defaults)}, "last_updated": stamp}
                             for c in boot.clusters]},
        {"@type": admin + "ListenersConfigDump", "version_info": version_info,
         "static_listeners": [{"listener": {"@type": TYPE_PREFIX + "envoy.config.listener.v3.Listener",
                                            **dump(lis, defaults=defaults)}, "last_updated": stamp}
                              for lis in boot.listeners]},
        {"@type": admin + "RoutesConfigDump",
         "static_route_configs": [{"route_config": {
             "@type": TYPE_PREFIX + "envoy.config.route.v3.RouteConfiguration", **dump(rc, defaults=defaults)},
             "last_updated": stamp} for rc in route_configs(boot)]},
    ]}
