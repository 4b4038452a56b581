"""Envoy's v3 static bootstrap, the subset the engine implements, as frozen dataclasses
named after Envoy's messages (issue 6 §2). A config written for real Envoy loads
unchanged where the features overlap; anything outside the subset (an unknown field,
filter or @type) is refused with one ConfigError naming its full path.

    errors      ConfigError
    schema      the reflective reader/writer every message uses (durations, enums, @type)
    core        addresses, data sources, header mutations, matchers, percents, TLS
    http_filters router, local_ratelimit, fault, cors
    route       RouteConfiguration, VirtualHost, Route and their actions
    listener    Listener, filter chains (and select_filter_chain), HttpConnectionManager,
                TcpProxy, access logs, tracing
    cluster     Cluster, endpoints, circuit breakers, outlier detection
    bootstrap   Bootstrap, load/loads/from_dict, cross checks, to_dict, config_dump
    watch       reload on file change
"""

from __future__ import annotations

from proxy.engine.config.bootstrap import (
    Admin,
    Bootstrap,
    StaticResources,
    config_dump,
    from_dict,
    load,
    loads,
    route_configs,
    to_dict,
)
from proxy.engine.config.errors import ConfigError
from proxy.engine.config.listener import select_filter_chain
from proxy.engine.config.watch import ConfigWatcher, watch

__all__ = [
    "Admin", "Bootstrap", "ConfigError", "ConfigWatcher", "StaticResources", "config_dump", "from_dict",
    "load", "loads", "route_configs", "select_filter_chain", "to_dict", "watch",
]
