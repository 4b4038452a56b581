"""create, update (PUT), patch and server-side apply of objects.

Each write reads the stored object, computes the new one through the admission path
(handlers/admission.py) and stores it with compare-and-swap; a lost race re-runs the
computation on the fresh object (guaranteed update), unless the client pinned a
resourceVersion, in which case it gets the Kubernetes 409 Conflict.
"""

from __future__ import annotations

from typing import Any

from apiserver import errors
from apiserver.codec import body as codec
from apiserver.context import Ctx
from apiserver.handlers import admission, namespaces
from apiserver.registry import conversion

Obj = dict[str, Any]
_GENERATE_NAME_ATTEMPTS = 8


def to_storage(ctx: Ctx, obj: Obj) -> Obj:
    return conversion.to_storage(ctx.info, obj, ctx.version)


def to_client(ctx: Ctx, obj: Obj) -> Obj:
    return conversion.from_storage(ctx.info, obj, ctx.version)


async def create(ctx: Ctx, obj: Any) -> Obj:
    obj = admission.check_identity(ctx, obj, name_required=True)
    if obj["metadata"].get("resourceVersion"):
        raise errors.bad_request("resourceVersion should not be set on objects to be created")
    if ctx.info.namespaced:
        await namespaces.check_namespace_open(ctx, obj["metadata"].get("name") or "")
    admission.check_fields(ctx, obj)
    obj = to_storage(ctx, obj)
    manager = ctx.field_manager()
    generated = not obj["metadata"].get("name")
    for _ in range(_GENERATE_NAME_ATTEMPTS if generated else 1):
        attempt = admission.copy_obj(obj)
        if generated:
            attempt["metadata"].pop("name", None)
        new = await admission.admit_create(ctx, attempt, manager=manager)
        try:
            return to_client(ctx, await ctx.server.store.create(ctx.info, new, dry_run=ctx.dry_run))
        except errors.StatusError as exc:
            if (ctx.info.group, ctx.info.kind) == ("", "Service") and not ctx.dry_run:
                await ctx.server.allocator.release_all(new)
            if not (generated and exc.reason == "AlreadyExists"):
                raise
    raise errors.already_exists(ctx.info.plural, obj["metadata"].get("generateName", ""), ctx.info.group)


def _subresource_for_write(ctx: Ctx) -> str:
    sub = ctx.rinfo.subresource
    if sub and sub not in ("status",):
        raise errors.method_not_allowed()
    return sub


async def update(ctx: Ctx, obj: Any) -> tuple[Obj, bool]:
    """PUT. Returns (object, created)."""
    sub = _subresource_for_write(ctx)
    obj = admission.check_identity(ctx, obj, name_required=True)
    admission.check_fields(ctx, obj)
    obj = to_storage(ctx, obj)
    precondition = obj["metadata"].get("resourceVersion") or ""
    if not precondition and ctx.info.crd is not None:
        raise errors.invalid_object(ctx.info.kind, ctx.info.group, ctx.name, [
            errors.invalid("metadata.resourceVersion", 0, "must be specified for an update")])
    manager = ctx.field_manager()

    async def compute(current: Obj | None) -> Obj | None:
        new = admission.copy_obj(obj)
        assert current is not None
        return await admission.admit_update(ctx, new, current, manager=manager, subresource=sub)

    old, new = await ctx.server.store.guaranteed_update(
        ctx.info, ctx.namespace, ctx.name, compute, precondition_rv=precondition, dry_run=ctx.dry_run)
    await admission.release_unused(ctx, old, new)
    return to_client(ctx, await finish_update(ctx, new)), False


async def finish_update(ctx: Ctx, new: Obj) -> Obj:
    """After a successful write: an object with a deletionTimestamp, no finalizers and
    no grace period left is deleted for real (the last finalizer was removed)."""
    meta = new["metadata"]
    if meta.get("deletionTimestamp") and not meta.get("finalizers") and not meta.get("deletionGracePeriodSeconds"):
        if ctx.info.kind != "Namespace" or not (new.get("spec") or {}).get("finalizers"):
            try:
                from apiserver.handlers.deletes import remove

                return await remove(ctx, new, dry_run=ctx.dry_run)
            except errors.StatusError as exc:
                if exc.code != 409 and exc.code != 404:
                    raise
    return new


async def patch(ctx: Ctx, raw: bytes, content_type: str | None) -> tuple[Obj, bool]:
    """PATCH with any of the four patch types. Returns (object, created)."""
    media = codec.media_type(content_type)
    patch_type = codec.PATCH_TYPES.get(media)
    if patch_type is None or patch_type == "apply-cbor":
        raise errors.StatusError(415, "UnsupportedMediaType", f"the server does not support patch type {media}"
                                 if patch_type is None else "the body of the request was in an unknown format")
    codec.check_size(raw)
    if patch_type == "apply":
        from apiserver.handlers.apply import apply

        return await apply(ctx, raw)
    if patch_type == "strategic" and ctx.info.crd is not None:
        raise errors.StatusError(
            415, "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
    document = codec.decode_json(raw)
    sub = _subresource_for_write(ctx)
    manager = ctx.field_manager()
    precondition = ""
    if patch_type != "json" and isinstance(document, dict):
        precondition = ((document.get("metadata") or {}).get("resourceVersion")) or ""

    async def compute(current: Obj | None) -> Obj | None:
        assert current is not None
        patched = _apply_patch(ctx, patch_type, to_client(ctx, current), document)
        patched = admission.check_identity(ctx, patched, name_required=True)
        patched_rv = patched["metadata"].get("resourceVersion")
        if patched_rv and patched_rv != current["metadata"].get("resourceVersion"):
            # any patch type may carry a resourceVersion; it is a precondition
            raise errors.conflict(ctx.info.plural, ctx.name, ctx.info.group)
        admission.check_fields(ctx, patched)
        patched = to_storage(ctx, patched)
        patched["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
        return await admission.admit_update(ctx, patched, current, manager=manager, subresource=sub)

    old, new = await ctx.server.store.guaranteed_update(
        ctx.info, ctx.namespace, ctx.name, compute, precondition_rv=precondition, dry_run=ctx.dry_run)
    await admission.release_unused(ctx, old, new)
    return to_client(ctx, await finish_update(ctx, new)), False


def _apply_patch(ctx: Ctx, patch_type: str, current: Obj, document: Any) -> Any:
    if patch_type == "json":
        from apiserver.patch.jsonpatch import json_patch

        return json_patch(current, document)
    if patch_type == "merge":
        from apiserver.patch.mergepatch import merge_patch

        return merge_patch(current, document)
    from apiserver.patch.strategic import strategic_merge_patch

    return strategic_merge_patch(current, document, ctx.info.schema(ctx.version))

