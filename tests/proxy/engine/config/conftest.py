"""A small valid bootstrap the validation tests break one field at a time."""

from __future__ import annotations

import copy

import pytest

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"

BASE = {
    "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 9901}}},
    "static_resources": {
        "listeners": [{
            "name": "http",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 8080}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": HCM,
                    "stat_prefix": "ingress",
                    "route_config": {"name": "local", "virtual_hosts": [{
                        "name": "all", "domains": ["*"],
                        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "web"}}],
                    }]},
                    "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}],
                },
            }]}],
        }],
        "clusters": [
            {"name": "web", "load_assignment": {"cluster_name": "web", "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 8000}}}}]}]}},
            {"name": "api", "type": "STRICT_DNS", "load_assignment": {"cluster_name": "api", "endpoints": [
                {"lb_endpoints": [
                    {"endpoint": {"address": {"socket_address": {"address": "localhost", "port_value": 8001}}}}]}]}},
        ],
    },
}


@pytest.fixture
def base() -> dict:
    return copy.deepcopy(BASE)
