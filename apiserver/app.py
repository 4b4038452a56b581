"""The aiohttp application: routes, the Status error middleware, start-up and shutdown.

Non-resource paths (health, version, discovery, OpenAPI) are routed directly; every
other `/api` and `/apis` path goes to one dispatcher (handlers/resources.py), which
resolves it against the registry, since CRDs add resources at run time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from apiserver import errors
from apiserver.context import Server
from apiserver.handlers import discovery, namespaces, resources
from apiserver.pipeline import Pipeline
from apiserver.registry.allocators import DEFAULT_SERVICE_CIDR, Allocator, ServiceAllocations, run_repair
from apiserver.registry.registry import Registry
from apiserver.registry.store import ObjectStore
from apiserver.request import parse_request
from apiserver.storage.interface import Storage

log = logging.getLogger("apiserver")

KUBERNETES_VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.4", "gitCommit": "mkp", "gitTreeState": "clean",
    "buildDate": "2025-04-22T00:00:00Z", "goVersion": "python", "compiler": "cpython", "platform": "linux/amd64",
}
SERVER_KEY = web.AppKey("server", Server)


def status_response(exc: errors.StatusError) -> web.Response:
    return web.Response(body=orjson.dumps(exc.to_status()), status=exc.code, content_type="application/json",
                        headers=exc.headers)


@web.middleware
async def status_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.StatusError as exc:
        return status_response(exc)
    except web.HTTPException:
        raise
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:  # noqa: BLE001 - every failure must reach the client as a Status
        log.exception("internal error serving %s %s", request.method, request.path)
        return status_response(errors.internal(f"{type(exc).__name__}: {exc}"))


def _json(body: Any, content_type: str = "application/json") -> web.Response:
    return web.Response(body=orjson.dumps(body), headers={"Content-Type": content_type})


def _server(request: web.Request) -> Server:
    return request.app[SERVER_KEY]


async def healthz(request: web.Request) -> web.Response:
    if "verbose" in request.query:
        return web.Response(text="[+]ping ok\n[+]etcd ok\n[+]poststarthook/crd-informer-synced ok\nhealthz check passed\n")
    return web.Response(text="ok")


async def version(request: web.Request) -> web.Response:
    return _json(KUBERNETES_VERSION)


async def api_root(request: web.Request) -> web.Response:
    server = _server(request)
    if discovery.wants_aggregated(request.headers.get("Accept", "")):
        return _json(discovery.aggregated(server.registry, core=True), discovery.AGGREGATED_CONTENT_TYPE)
    return _json(discovery.api_versions(server.address))


async def apis_root(request: web.Request) -> web.Response:
    server = _server(request)
    if discovery.wants_aggregated(request.headers.get("Accept", "")):
        return _json(discovery.aggregated(server.registry, core=False), discovery.AGGREGATED_CONTENT_TYPE)
    return _json(discovery.api_group_list(server.registry))


async def dispatch(request: web.Request) -> web.StreamResponse:
    server = _server(request)
    path = request.path
    rinfo = parse_request(request.method, path, request.query.get("watch") in ("true", "1"))
    if not rinfo.is_resource:
        return await _non_resource(server, request, rinfo.group, rinfo.version, path)
    return await resources.handle(server, request, rinfo)


async def _non_resource(server: Server, request: web.Request, group: str, version: str, path: str) -> web.Response:
    if request.method != "GET":
        raise errors.method_not_allowed()
    segments = [s for s in path.split("/") if s]
    if segments[:1] == ["api"] and len(segments) == 2 and server.registry.known_version("", version):
        return _json(discovery.api_resource_list(server.registry, "", version))
    if segments[:1] == ["apis"] and len(segments) == 2:
        group_doc = discovery.api_group(server.registry, group)
        if group_doc is not None:
            return _json(group_doc)
    if segments[:1] == ["apis"] and len(segments) == 3 and server.registry.known_version(group, version):
        return _json(discovery.api_resource_list(server.registry, group, version))
    raise errors.StatusError(404, "NotFound", "the server could not find the requested resource", details={})


async def openapi(request: web.Request) -> web.Response:
    from apiserver import openapi as docs
    from apiserver import openapi_v2

    server = _server(request)
    infos = list(server.registry.resources())
    tail = request.match_info.get("tail", "")
    if request.path.startswith("/openapi/v2"):
        if "application/com.github.proto-openapi.spec.v2" in request.headers.get("Accept", ""):
            body, etag = openapi_v2.openapi_v2_protobuf(infos)
            content_type = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
        else:
            body, etag = openapi_v2.openapi_v2_json(infos)
            content_type = "application/json"
        return web.Response(body=body, headers={"Content-Type": content_type, "ETag": f'"{etag}"'})
    if not tail:
        return _json(docs.openapi_v3_index(infos))
    parts = tail.split("/")
    if parts[0] == "api" and len(parts) == 2:
        group, ver = "", parts[1]
    elif parts[0] == "apis" and len(parts) == 3:
        group, ver = parts[1], parts[2]
    else:
        raise errors.StatusError(404, "NotFound", "the server could not find the requested resource", details={})
    if not server.registry.known_version(group, ver):
        raise errors.StatusError(404, "NotFound", "the server could not find the requested resource", details={})
    body, digest = docs.openapi_v3_group_version_json(infos, group, ver)
    asked = request.query.get("hash")
    if asked and asked != digest:
        raise web.HTTPMovedPermanently(f"{request.path}?hash={digest}")
    headers = {"Content-Type": "application/json", "ETag": f'"{digest}"'}
    if asked:
        headers["Cache-Control"] = "public, immutable"
    return web.Response(body=body, headers=headers)


def build_app(server: Server) -> web.Application:
    app = web.Application(middlewares=[status_middleware], client_max_size=16 * 1024 * 1024)
    app[SERVER_KEY] = server
    for path in ("/healthz", "/livez", "/readyz"):
        app.router.add_get(path, healthz)
    app.router.add_get("/version", version)
    app.router.add_get("/api", api_root)
    app.router.add_get("/apis", apis_root)
    app.router.add_get("/openapi/v2", openapi)
    app.router.add_get("/openapi/v3", openapi)
    app.router.add_get("/openapi/v3/{tail:.*}", openapi)
    app.router.add_route("*", "/api/{tail:.*}", dispatch)
    app.router.add_route("*", "/apis/{tail:.*}", dispatch)
    return app


def open_storage(data_dir: Path) -> Storage:
    from apiserver.storage.sqlite import SQLiteStorage

    data_dir.mkdir(parents=True, exist_ok=True)
    return SQLiteStorage(data_dir / "state.db")


async def start_server(storage: Storage, *, address: str = "127.0.0.1:6443",
                       service_cidr: str = DEFAULT_SERVICE_CIDR) -> tuple[Server, list[asyncio.Task[Any]]]:
    """The Server and its background tasks (CRD serving, allocation repair, compaction)."""
    from apiserver import crd_serving
    from apiserver.admission.ingressclass_default import DefaultIngressClass
    from apiserver.admission.storage_protection import StorageObjectInUseProtection
    from apiserver.admission.storageclass_default import DefaultStorageClass, ensure_default_storage_class

    registry = Registry()
    allocator = Allocator(storage, ServiceAllocations.from_config(service_cidr))
    server = Server(registry=registry, storage=storage, store=ObjectStore(storage), pipeline=Pipeline(),
                    allocator=allocator, address=address)
    await namespaces.ensure_system_namespaces(server)
    server.pipeline.mutating.append(DefaultStorageClass(server))
    server.pipeline.mutating.append(DefaultIngressClass(server))
    server.pipeline.mutating.append(StorageObjectInUseProtection())
    await ensure_default_storage_class(server)
    services_info = registry.lookup("", "v1", "services")
    assert services_info is not None

    async def list_services() -> list[dict[str, Any]]:
        return (await server.store.list(services_info, None)).items

    tasks = [asyncio.create_task(crd_serving.run(server), name="crd-serving"),
             asyncio.create_task(run_repair(allocator, list_services), name="allocation-repair")]
    compactor = getattr(storage, "run_compactor", None)
    if compactor is not None:
        tasks.append(asyncio.create_task(compactor(), name="compactor"))
    await crd_serving.wait_synced(server)
    return server, tasks


async def stop_tasks(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
