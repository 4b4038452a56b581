"""Dispatch of resource requests (`/api/v1/...`, `/apis/<g>/<v>/...`) to the verbs.

Resolves the URL to a registry row, authenticates and authorizes the caller, then
routes by verb and subresource. Responses are JSON (or YAML / Table / metadata-only as
the Accept header asks); a GET of the stored version is served straight from the
stored bytes.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from apiserver import errors
from apiserver.codec import body as codec
from apiserver.context import Ctx, Server
from apiserver.handlers import deletes, eviction, podproxy, reads, subresources, watch, writes
from apiserver.registry import conversion
from apiserver.registry.builtin import VIRTUAL_KINDS
from apiserver.request import RequestInfo

Obj = dict[str, Any]
_NOT_FOUND = "the server could not find the requested resource"


def respond(ctx: Ctx | None, body: Any, status: int = 200, shape: reads.Shape | None = None) -> web.Response:
    if shape is not None and shape.yaml:
        response = web.Response(body=codec.encode_yaml(body), status=status, content_type="application/yaml")
    else:
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        response = web.Response(body=raw, status=status, content_type="application/json")
    for warning in ctx.warnings if ctx is not None else ():
        response.headers.add("Warning", warning if warning.startswith("299") else f'299 - "{warning}"')
    return response


async def _context(server: Server, request: web.Request, rinfo: RequestInfo) -> Ctx:
    info = server.registry.lookup(rinfo.group, rinfo.version, rinfo.resource)
    if info is None:
        raise errors.StatusError(404, "NotFound", _NOT_FOUND, details={})
    if rinfo.namespace and not info.namespaced:
        raise errors.StatusError(404, "NotFound", _NOT_FOUND, details={})
    user = await server.pipeline.authenticate(request)
    await server.pipeline.authorize(user, rinfo)
    return Ctx(server, request, rinfo, info, rinfo.version, user)


async def handle(server: Server, request: web.Request, rinfo: RequestInfo) -> web.StreamResponse:
    ctx = await _context(server, request, rinfo)
    verb, sub = rinfo.verb, rinfo.subresource
    if sub and sub not in ctx.info.subresources:
        raise errors.StatusError(404, "NotFound", _NOT_FOUND, details={})
    if (ctx.info.group, ctx.info.kind) in VIRTUAL_KINDS and verb != "create":
        raise errors.method_not_allowed()
    if sub and podproxy.handles(ctx):  # pods/log, exec, attach, portforward; nodes/proxy: the kubelet's
        return await podproxy.serve(ctx)
    if verb in ("update", "patch", "delete") and not ctx.name:
        raise errors.method_not_allowed()
    if not sub and verb not in ctx.info.verbs and not (verb == "watch" and "list" in ctx.info.verbs
                                                       and "watch" in ctx.info.verbs):
        raise errors.method_not_allowed()
    if verb == "watch":
        return await watch.serve_watch(ctx)
    if verb == "list":
        return await _list(ctx)
    if verb == "get":
        return await _get(ctx)
    if verb in ("create", "update", "patch"):
        return await _write(ctx, verb, await request.read())
    if verb == "delete":
        obj, _ = await deletes.delete_one(ctx, ctx.name, deletes.delete_options(ctx, await request.read()))
        return respond(ctx, writes.to_client(ctx, obj))
    if verb == "deletecollection":
        return await _delete_collection(ctx, await request.read())
    raise errors.method_not_allowed()


async def _get(ctx: Ctx) -> web.StreamResponse:
    sub = ctx.rinfo.subresource
    shape = reads.Shape(ctx.request.headers.get("Accept", ""))
    if sub == "scale":
        return respond(ctx, await subresources.get_scale(ctx), shape=shape)
    if sub not in ("", "status"):
        raise errors.StatusError(
            400, "BadRequest", f"{ctx.info.plural}/{sub} is served by the node's kubelet, which this cluster does not run yet")
    kv = await ctx.server.store.get_raw(ctx.info, ctx.namespace, ctx.name)
    if not shape.table and not shape.partial and not shape.yaml and not conversion.needs_conversion(ctx.info, ctx.version):
        return respond(ctx, kv.value)
    obj = writes.to_client(ctx, orjson.loads(kv.value))
    return respond(ctx, reads.object_body(ctx, obj, shape), shape=shape)


async def _list(ctx: Ctx) -> web.StreamResponse:
    if ctx.params.get("watch") in ("true", "1"):
        return await watch.serve_watch(ctx)
    shape = reads.Shape(ctx.request.headers.get("Accept", ""))
    page = await reads.list_page(ctx)
    return respond(ctx, reads.list_body(ctx, page, shape, lambda o: writes.to_client(ctx, o)), shape=shape)


async def _write(ctx: Ctx, verb: str, raw: bytes) -> web.StreamResponse:
    sub = ctx.rinfo.subresource
    content_type = ctx.request.headers.get("Content-Type")
    if verb == "patch":
        if sub == "scale":
            return respond(ctx, await _patch_scale(ctx, raw, content_type))
        obj, created = await writes.patch(ctx, raw, content_type)
        return respond(ctx, obj, 201 if created else 200)
    body = codec.decode_object(raw, content_type)
    if verb == "create":
        if (ctx.info.group, ctx.info.kind) in VIRTUAL_KINDS:
            return respond(ctx, await subresources.review(ctx, body), 201)
        if sub == "binding":
            return respond(ctx, await subresources.bind_pod(ctx, body), 201)
        if sub == "eviction" and (ctx.info.group, ctx.info.kind) == ("", "Pod"):
            return respond(ctx, await eviction.evict_pod(ctx, body), 201)
        if ctx.name or sub:
            raise errors.method_not_allowed()
        return respond(ctx, await writes.create(ctx, body), 201)
    if sub == "scale":
        return respond(ctx, await subresources.put_scale(ctx, body))
    if sub == "finalize":
        return respond(ctx, await subresources.finalize_namespace(ctx, body))
    obj, created = await writes.update(ctx, body)
    return respond(ctx, obj, 201 if created else 200)


async def _patch_scale(ctx: Ctx, raw: bytes, content_type: str | None) -> Obj:
    media = codec.media_type(content_type)
    patch_type = codec.PATCH_TYPES.get(media)
    document = codec.decode_json(raw)

    def patched(scale: Obj) -> Obj:
        if patch_type == "json":
            from apiserver.patch.jsonpatch import json_patch

            return json_patch(scale, document)
        if patch_type in ("merge", "strategic"):
            from apiserver.patch.mergepatch import merge_patch

            return merge_patch(scale, document)
        raise errors.StatusError(415, "UnsupportedMediaType", f"the server does not support patch type {media} on scale")

    return await subresources.update_scale(ctx, patched)


async def _delete_collection(ctx: Ctx, raw: bytes) -> web.StreamResponse:
    opts = deletes.delete_options(ctx, raw)
    page = await reads.list_page(ctx)
    deleted = []
    for obj in page.items:
        try:
            result, _ = await deletes.delete_one(ctx, obj["metadata"]["name"], opts)
        except errors.StatusError as exc:
            if exc.code == 404:
                continue
            raise
        deleted.append(writes.to_client(ctx, result))
    body = {"kind": ctx.info.list_kind, "apiVersion": ctx.api_version,
            "metadata": {"resourceVersion": str(ctx.server.storage.current_revision())}, "items": deleted}
    return respond(ctx, body)
