"""The write path between decoding a body and storing an object.

In Kubernetes' order: strict field checking and defaulting happen when the body is
decoded; then mutating admission; then the REST strategy prepares server-owned
metadata and status; managedFields record who changed what; then validation and
validating admission. Create, update, patch and apply all go through `admit_create` /
`admit_update`, so no write can skip a stage.
"""

from __future__ import annotations

from typing import Any

from apiserver import errors
from apiserver.context import Ctx
from apiserver.objcopy import deep_copy
from apiserver.pipeline import Attributes
from apiserver.registry import strategy

Obj = dict[str, Any]


def check_identity(ctx: Ctx, obj: Any, *, name_required: bool) -> Obj:
    """The body is an object of the URL's kind, version, namespace and name."""
    info = ctx.info
    if not isinstance(obj, dict):
        raise errors.bad_request(f"the object provided is unrecognized (must be of type {info.kind})")
    kind = obj.setdefault("kind", info.kind)
    api_version = obj.setdefault("apiVersion", ctx.api_version)
    if kind != info.kind:
        raise errors.bad_request(
            f"the object provided is unrecognized (must be of type {info.kind}): couldn't get version/kind; "
            f"json parse error: {kind} is not {info.kind}")
    if api_version != ctx.api_version:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version ({ctx.api_version})")
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        raise errors.bad_request("metadata must be an object")
    if info.namespaced:
        ns = meta.get("namespace") or ""
        if ns and ns != ctx.namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = ctx.namespace
    else:
        meta.pop("namespace", None)
    if ctx.name and meta.get("name") and meta["name"] != ctx.name:
        raise errors.bad_request(
            f"the name of the object ({meta['name']}) does not match the name on the URL ({ctx.name})")
    if ctx.name and not meta.get("name"):
        meta["name"] = ctx.name
    if name_required and not meta.get("name") and not meta.get("generateName"):
        raise errors.invalid_object(info.kind, info.group, "", [
            errors.required("metadata.name", "name or generateName is required")])
    return obj


def check_fields(ctx: Ctx, obj: Obj) -> None:
    """Unknown fields: an error with fieldValidation=Strict, a warning with Warn
    (the default), nothing with Ignore. Custom resources are pruned of them."""
    from apiserver.admission import fields

    mode = ctx.field_validation()
    if ctx.info.crd is not None:
        from apiserver.crd.pruning import prune

        raw = _crd_schema(ctx, ctx.version)
        unknown = prune(obj, raw) if raw else []
    else:
        schema = ctx.info.schema(ctx.version)
        unknown = fields.unknown_fields(obj, schema) if schema is not None and mode != "Ignore" else []
    if unknown and mode == "Strict":
        raise fields.field_validation_error(unknown, kind=ctx.info.kind, version=ctx.version)
    if unknown and mode == "Warn":
        ctx.warnings.extend(fields.field_validation_warnings(unknown))


def apply_defaults(ctx: Ctx, obj: Obj) -> None:
    """Defaults of the storage version (objects are converted before admission)."""
    if (ctx.info.group, ctx.info.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
        from apiserver.crd import default_crd

        default_crd(obj)
        return
    if ctx.info.crd is not None:
        from apiserver.crd.defaulting import apply_defaults as apply_schema_defaults

        raw = _crd_schema(ctx, ctx.info.version)
        if raw:
            apply_schema_defaults(obj, raw)
        return
    from apiserver.admission.defaults import default_object

    default_object(ctx.info.group, ctx.info.version, ctx.info.kind, obj)


def _crd_schema(ctx: Ctx, version: str) -> Obj | None:
    for v in (ctx.info.crd or {}).get("spec", {}).get("versions", []):
        if v.get("name") == version:
            return (v.get("schema") or {}).get("openAPIV3Schema")
    return None


def validate(ctx: Ctx, obj: Obj, old: Obj | None) -> None:
    info = ctx.info
    if info.crd is not None:
        from apiserver.admission.validation import validate_object
        from apiserver.crd.validation import validate_custom_object

        errs = validate_object(info.group, info.kind, obj, old)  # generic metadata rules
        raw = _crd_schema(ctx, ctx.info.version)
        if raw:
            errs += validate_custom_object(obj, raw)
    elif (info.group, info.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
        from apiserver.admission.validation import validate_object
        from apiserver.crd import validate_crd, validate_crd_update

        errs = validate_object(info.group, info.kind, obj, old)
        errs += validate_crd(obj) if old is None else validate_crd_update(obj, old)
    else:
        from apiserver.admission.validation import validate_object

        errs = validate_object(info.group, info.kind, obj, old)
    if errs:
        raise errors.invalid_object(info.kind, info.group, obj["metadata"].get("name", ""), errs)


def _attributes(ctx: Ctx, operation: str, obj: Obj | None, old: Obj | None, subresource: str = "") -> Attributes:
    meta = (obj or old or {}).get("metadata", {})
    return Attributes(operation, ctx.info, ctx.version, ctx.namespace, meta.get("name", ctx.name),
                      subresource, obj, old, ctx.user, ctx.dry_run, ctx.warnings)


def _track(ctx: Ctx, old: Obj | None, new: Obj, manager: str, subresource: str = "") -> None:
    from apiserver.patch.managedfields import track_update

    info = ctx.info
    track_update(old, new, schema=info.schema(info.version), manager=manager,
                 api_version=info.api_version(info.version), now=strategy.now_rfc3339(), subresource=subresource)


def _is_service(ctx: Ctx) -> bool:
    return (ctx.info.group, ctx.info.kind) == ("", "Service")


async def _validate_allocating(ctx: Ctx, obj: Obj, old: Obj | None, operation: str, subresource: str = "") -> None:
    """Service values (clusterIP, nodePorts) are claimed before validation, as the
    Service REST storage does; anything claimed here is released again if the write
    is rejected or only a dry run."""
    from apiserver.registry.allocators import ServiceAllocations

    claimed: tuple[set[str], set[int]] = (set(), set())
    if _is_service(ctx) and subresource == "":
        await ctx.server.allocator.assign(obj, old)
        new_ips, new_ports = ServiceAllocations.held(obj)
        old_ips, old_ports = ServiceAllocations.held(old)
        claimed = (new_ips - old_ips, new_ports - old_ports)
    try:
        validate(ctx, obj, old)
        await ctx.server.pipeline.validate(_attributes(ctx, operation, obj, old, subresource))
    except BaseException:
        await release(ctx, claimed)
        raise
    if ctx.dry_run:
        await release(ctx, claimed)


async def release_unused(ctx: Ctx, old: Obj | None, new: Obj | None) -> None:
    """After an update is stored: free the Service values the old object held and the
    new one does not (the repair pass is the backstop if we crash in between)."""
    from apiserver.registry.allocators import ServiceAllocations

    if not _is_service(ctx) or ctx.dry_run or old is None or new is None:
        return
    old_ips, old_ports = ServiceAllocations.held(old)
    new_ips, new_ports = ServiceAllocations.held(new)
    await release(ctx, (old_ips - new_ips, old_ports - new_ports))


async def release(ctx: Ctx, claimed: tuple[set[str], set[int]]) -> None:
    for ip in claimed[0]:
        await ctx.server.allocator.release_ip(ip)
    for port in claimed[1]:
        await ctx.server.allocator.release_port(port)


async def admit_create(ctx: Ctx, obj: Obj, *, manager: str | None) -> Obj:
    """Everything a new object (already converted to the storage version) goes through
    before storage, in kube-apiserver's order: server-owned metadata first (so
    create-only defaults such as the Job selector see the uid), defaulting, mutating
    admission, managedFields, allocation, validation, validating admission.
    `manager` None means managedFields were already computed (apply)."""
    meta = obj["metadata"]
    if not meta.get("name"):
        meta["name"] = strategy.generate_name(meta.get("generateName", ""))
    strategy.prepare_for_create(ctx.info, obj)
    apply_defaults(ctx, obj)
    await ctx.server.pipeline.admit(_attributes(ctx, "CREATE", obj, None))
    strategy.drop_empty_metadata(obj)
    if manager is not None:
        _track(ctx, None, obj, manager)
    await _validate_allocating(ctx, obj, None, "CREATE")
    return obj


async def admit_update(ctx: Ctx, new: Obj, old: Obj, *, manager: str | None, subresource: str = "") -> Obj | None:
    """Everything an update (in the storage version) goes through. Returns None when
    nothing would change (no write, no new resourceVersion): Kubernetes skips no-op
    updates."""
    if subresource == "status":
        new = strategy.prepare_for_status_update(ctx.info, new, old)
    elif subresource in ("", "scale"):  # /scale writes the spec: generation bumps
        strategy.prepare_for_update(ctx.info, new, old)
        if _is_service(ctx):
            from apiserver.admission.defaults_core import prepare_service_update
            from apiserver.registry.service_strategy import drop_type_dependent_fields

            prepare_service_update(new, old)
            drop_type_dependent_fields(new, old)
    new.setdefault("metadata", {})["resourceVersion"] = old["metadata"].get("resourceVersion")
    apply_defaults(ctx, new)
    await ctx.server.pipeline.admit(_attributes(ctx, "UPDATE", new, old, subresource))
    strategy.drop_empty_metadata(new)
    if manager is not None:
        _track(ctx, old, new, manager, subresource)
    if strategy.unchanged(new, old):
        return None
    await _validate_allocating(ctx, new, old, "UPDATE", subresource)
    return new


def copy_obj(obj: Obj) -> Obj:
    return deep_copy(obj)
