"""The Envoy v3 bootstraps `proxy_bench.py` runs `mkp proxy -c FILE` with: what a sidecar
in a mesh would be given, so the bench measures the proxy with its usual work on.

Each proxy gets one listener (http_connection_manager, inline route_config, optional
`istio.stats` filter, a JSON file access log with Envoy's / Istio's usual fields), one
STATIC cluster and an admin listener (the bench reads /stats/prometheus from it to tell
whether metrics were really recorded). Routing is realistic rather than trivial: three
virtual hosts, and in the matching one the request (`GET /index.html`, Host
`backend.bench.svc.cluster.local`) only matches the fifth route, after a prefix, an exact
path, a regex and a header match that do not.

The mTLS hop is Istio's STRICT peer authentication: the client sidecar's cluster has an
UpstreamTlsContext (workload cert, root CA, the server's SPIFFE ID as the only accepted
SAN); the server sidecar's listener a DownstreamTlsContext that requires a client cert.
Certificates come from proxy.engine.pki (ECDSA P-256, as our CA's default).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

HOST = "backend.bench.svc.cluster.local"
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
ISTIO_STATS = "type.googleapis.com/stats.PluginConfig"
UP_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
DOWN_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
# Istio's default JSON access log fields (meshConfig.accessLogEncoding: JSON)
LOG_FIELDS = {
    "start_time": "%START_TIME%", "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "protocol": "%PROTOCOL%",
    "response_code": "%RESPONSE_CODE%", "response_flags": "%RESPONSE_FLAGS%",
    "bytes_received": "%BYTES_RECEIVED%", "bytes_sent": "%BYTES_SENT%", "duration": "%DURATION%",
    "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%", "user_agent": "%REQ(USER-AGENT)%",
    "request_id": "%REQ(X-REQUEST-ID)%", "authority": "%REQ(:AUTHORITY)%",
    "upstream_host": "%UPSTREAM_HOST%", "upstream_cluster": "%UPSTREAM_CLUSTER%",
    "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
}


def _addr(port: int) -> dict:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def route_config(cluster: str) -> dict:
    """Three virtual hosts; the bench's request matches the fifth route of the third."""
    other = [{"match": {"prefix": "/"}, "route": {"cluster": cluster}}]
    routes = [
        {"match": {"prefix": "/api/v2/"}, "route": {"cluster": cluster, "prefix_rewrite": "/"}},
        {"match": {"path": "/healthz"}, "direct_response": {"status": 200}},
        {"match": {"safe_regex": {"regex": "/users/[0-9]+"}}, "route": {"cluster": cluster}},
        {"match": {"prefix": "/", "headers": [{"name": "x-canary", "string_match": {"exact": "true"}}]},
         "route": {"cluster": cluster, "timeout": "5s"}},
        {"match": {"prefix": "/"}, "route": {"cluster": cluster, "timeout": "15s"}},
    ]
    return {"name": "bench", "virtual_hosts": [
        {"name": "reviews", "domains": ["reviews.bench.svc.cluster.local", "reviews"], "routes": other},
        {"name": "ratings", "domains": ["ratings.bench.svc.cluster.local", "ratings"], "routes": other},
        {"name": "backend", "domains": [HOST, f"{HOST}:80", "backend", "*"], "routes": routes},
    ]}


def bootstrap(*, listen: int, upstream: int, admin: int, log_path: str | None, stats: bool,
              cluster: str = "backend", downstream_tls: dict | None = None,
              upstream_tls: dict | None = None) -> dict:
    """One sidecar's bootstrap: listener `listen` -> cluster `cluster` at `upstream`."""
    http_filters = [{"name": "istio.stats", "typed_config": {"@type": ISTIO_STATS}}] if stats else []
    http_filters.append({"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}})
    hcm: dict[str, Any] = {"@type": HCM, "stat_prefix": "bench", "route_config": route_config(cluster),
                           "http_filters": http_filters}
    if log_path:
        hcm["access_log"] = [{"name": "envoy.access_loggers.file", "typed_config": {
            "@type": FILE_LOG, "path": log_path, "log_format": {"json_format": LOG_FIELDS}}}]
    chain: dict[str, Any] = {"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                          "typed_config": hcm}]}
    if downstream_tls is not None:
        chain["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": downstream_tls}
    c: dict[str, Any] = {"name": cluster, "type": "STATIC", "connect_timeout": "1s", "lb_policy": "ROUND_ROBIN",
                         "load_assignment": {"cluster_name": cluster, "endpoints": [
                             {"lb_endpoints": [{"endpoint": {"address": _addr(upstream)}}]}]}}
    if upstream_tls is not None:
        c["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": upstream_tls}
    return {"admin": {"address": _addr(admin)},
            "static_resources": {"listeners": [{"name": f"bench_{listen}", "address": _addr(listen),
                                                "filter_chains": [chain]}],
                                 "clusters": [c]}}


def mtls_contexts(directory: Path) -> tuple[dict, dict]:
    """(UpstreamTlsContext of the client sidecar, DownstreamTlsContext of the server
    sidecar), with certificates written under `directory` by proxy.engine.pki."""
    from proxy.engine import pki

    ca = pki.CertificateAuthority.create()
    root, _ = ca.write(directory / "ca")
    client_chain, client_key = ca.issue_workload("bench", "client").write(directory / "client")
    server_chain, server_key = ca.issue_workload("bench", "backend").write(directory / "backend")

    def common(chain: Path, key: Path) -> dict:
        return {"tls_certificates": [{"certificate_chain": {"filename": str(chain)},
                                      "private_key": {"filename": str(key)}}]}

    up = {"@type": UP_TLS, "sni": f"outbound_.80_._.{HOST}", "common_tls_context": {
        **common(client_chain, client_key),
        "validation_context": {"trusted_ca": {"filename": str(root)}, "match_typed_subject_alt_names": [
            {"san_type": "URI", "matcher": {"exact": pki.spiffe_id("bench", "backend")}}]}}}
    down = {"@type": DOWN_TLS, "require_client_certificate": True, "common_tls_context": {
        **common(server_chain, server_key), "validation_context": {"trusted_ca": {"filename": str(root)}}}}
    return up, down


def refusal(cfg: dict) -> str | None:
    """Why the engine would refuse `cfg` (parse + building a ProxyServer, no sockets), or None."""
    from proxy.engine.config import ConfigError, from_dict
    from proxy.engine.server import ProxyServer

    async def build() -> None:
        server = ProxyServer(from_dict(cfg))
        for c in server.clusters.values():
            c.close()

    try:
        asyncio.run(build())
    except (ConfigError, ValueError, OSError) as e:
        return f"{type(e).__name__}: {e}"
    return None
