"""Server-side apply (`PATCH` with `application/apply-patch+yaml`).

The applied configuration is merged into the live object by field ownership
(apiserver/patch/apply.py); a missing object is created (201). Conflicts with other
field managers are a 409 unless `force=true`.
"""

from __future__ import annotations

from typing import Any

from apiserver import errors
from apiserver.codec import body as codec
from apiserver.context import Ctx
from apiserver.handlers import admission, namespaces
from apiserver.handlers.writes import finish_update, to_client, to_storage
from apiserver.registry import strategy

Obj = dict[str, Any]


def _parse_force(ctx: Ctx) -> bool:
    value = ctx.params.get("force", "false").lower()
    if value not in ("true", "false", "1", "0", ""):
        raise errors.bad_request(f"invalid force parameter: {value}")
    return value in ("true", "1")


async def apply(ctx: Ctx, raw: bytes) -> tuple[Obj, bool]:
    from apiserver.patch.apply import server_side_apply

    manager = ctx.field_manager(default_from_agent=False)
    if not manager:
        raise errors.invalid_object("PatchOptions", "meta.k8s.io", "", [
            errors.required("fieldManager", "is required for apply patch")])
    force = _parse_force(ctx)
    applied = admission.check_identity(ctx, codec.decode_yaml(raw), name_required=True)
    if applied["metadata"].get("managedFields"):
        raise errors.bad_request("metadata.managedFields must be nil")
    sub = ctx.rinfo.subresource
    if sub not in ("", "status"):
        raise errors.method_not_allowed()
    precondition = applied["metadata"].get("resourceVersion") or ""
    schema = ctx.info.schema(ctx.version)
    created = False

    async def compute(current: Obj | None) -> Obj | None:
        nonlocal created
        config = admission.copy_obj(applied)
        admission.check_fields(ctx, config)
        live = None if current is None else to_client(ctx, current)
        created = current is None
        if created and ctx.info.namespaced:
            await namespaces.check_namespace_open(ctx)
        new = server_side_apply(live, config, schema=schema, manager=manager, api_version=ctx.api_version,
                                force=force, now=strategy.now_rfc3339(), subresource=sub)
        new = to_storage(ctx, new)
        if current is None:
            return await admission.admit_create(ctx, new, manager=None)
        new["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
        return await admission.admit_update(ctx, new, current, manager=None, subresource=sub)

    old, new = await ctx.server.store.guaranteed_update(
        ctx.info, ctx.namespace, ctx.name, compute, precondition_rv=precondition,
        dry_run=ctx.dry_run, allow_create=sub == "")
    await admission.release_unused(ctx, old, new)
    return to_client(ctx, await finish_update(ctx, new)), created
