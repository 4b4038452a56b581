"""The kubelet server's aiohttp application and routes, as the real kubelet names them:

    GET  /healthz                                   ok
    GET  /pods                                      the pods this kubelet runs (PodList)
    GET  /stats/summary                             the stats Summary (node, pods, containers)
    GET  /containerLogs/{namespace}/{pod}/{container}   logs.py
    GET|POST /exec/{namespace}/{pod}/{container}    exec.py (WebSocket channel protocols)
    GET|POST /attach/{namespace}/{pod}/{container}  exec.py
    *    /portForward/{namespace}/{pod}             portforward.py (SPDY over WebSocket, and
                                                    the channel protocol the Python client uses)

`request.app["pods"]` is the PodProvider (see `kubelet/server/__init__.py`).
`serve(provider, host, port)` starts it; the kubelet publishes host and port in its Node
status (addresses InternalIP, daemonEndpoints.kubeletEndpoint.Port).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from aiohttp import web

from kubelet.server import PodProvider, exec, logs

log = logging.getLogger("kubelet.server")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def pods(request: web.Request) -> web.Response:
    provider: PodProvider = request.app["pods"]
    return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": provider.pods()})


async def stats_summary(request: web.Request) -> web.Response:
    provider: PodProvider = request.app["pods"]
    return web.json_response(await provider.summary())


async def metrics_resource(request: web.Request) -> web.Response:
    """`/metrics/resource`: the Summary's cpu and memory in Prometheus text, as the
    kubelet serves them for metrics-server."""
    from kubelet.stats import resource_metrics
    provider: PodProvider = request.app["pods"]
    return web.Response(text=resource_metrics(await provider.summary()),
                        content_type="text/plain", charset="utf-8", headers={"X-Content-Type-Options": "nosniff"})


def build_app(provider: PodProvider) -> web.Application:
    app = web.Application(client_max_size=16 * 1024 * 1024)
    with warnings.catch_warnings():  # a plain "pods" key: the portforward module reads it too
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        app["pods"] = provider
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/pods", pods)
    app.router.add_get("/stats/summary", stats_summary)
    app.router.add_get("/metrics/resource", metrics_resource)
    app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", logs.container_logs)
    for method in ("GET", "POST"):
        app.router.add_route(method, "/exec/{namespace}/{pod}/{container}", exec.exec_handler)
        app.router.add_route(method, "/attach/{namespace}/{pod}/{container}", exec.attach_handler)
    _add_portforward(app)
    return app


def _add_portforward(app: web.Application) -> None:
    try:
        from kubelet.server import portforward  # written alongside (SPDY and channel port-forward)
    except ImportError:
        log.warning("kubelet/server/portforward.py is missing: /portForward is not served")
        return
    app.router.add_route("*", "/portForward/{namespace}/{pod}", portforward.handler)


async def serve(provider: PodProvider, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start the server on host:port (port 0: any free port); returns the runner (call
    `cleanup()` to stop) and the port bound."""
    runner = web.AppRunner(build_app(provider), access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound: Any = runner.addresses[0]
    return runner, int(bound[1])
