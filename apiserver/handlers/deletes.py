"""DELETE of one object and of collections.

Kubernetes deletion is two-phase when something must happen first: an object with
finalizers (or deleted with propagationPolicy Orphan/Foreground, which add the `orphan`
/ `foregroundDeletion` finalizers for the garbage collector) only gets a
deletionTimestamp and stays until its finalizers are removed; a pod bound to a node is
deleted gracefully (deletionTimestamp = now + grace period) and removed by its kubelet;
a namespace turns Terminating. Everything else is removed at once. The response is the
object, as it is after the call.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from apiserver import errors
from apiserver.codec import body as codec
from apiserver.context import Ctx
from apiserver.handlers import namespaces
from apiserver.registry import strategy

Obj = dict[str, Any]
_PROPAGATION = ("Orphan", "Background", "Foreground")


def delete_options(ctx: Ctx, raw: bytes) -> Obj:
    """DeleteOptions from the body (kubectl) or the query (Python client)."""
    opts: Obj = {}
    if raw.strip():
        decoded = codec.decode_object(raw, ctx.request.headers.get("Content-Type"))
        if not isinstance(decoded, dict):
            raise errors.bad_request("DeleteOptions must be an object")
        opts.update(decoded)
    q = ctx.params
    if "gracePeriodSeconds" in q:
        try:
            opts["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
        except ValueError:
            raise errors.bad_request(f"invalid gracePeriodSeconds: {q['gracePeriodSeconds']}") from None
    if "propagationPolicy" in q:
        opts["propagationPolicy"] = q["propagationPolicy"]
    if "orphanDependents" in q:
        opts["orphanDependents"] = q["orphanDependents"] in ("true", "1")
    if "dryRun" in q:
        opts["dryRun"] = q.getall("dryRun")
    policy = opts.get("propagationPolicy")
    if policy is not None and policy not in _PROPAGATION:
        raise errors.invalid_object("DeleteOptions", "meta.k8s.io", "", [
            errors.not_supported("propagationPolicy", policy, list(_PROPAGATION))])
    if policy is not None and opts.get("orphanDependents") is not None:
        raise errors.invalid_object("DeleteOptions", "meta.k8s.io", "", [
            errors.invalid("propagationPolicy", policy, "orphanDependents and deletionPropagation cannot be both set")])
    return opts


def _check_preconditions(ctx: Ctx, obj: Obj, opts: Obj) -> None:
    pre = opts.get("preconditions") or {}
    meta = obj["metadata"]
    if pre.get("uid") and pre["uid"] != meta.get("uid"):
        raise errors.conflict(ctx.info.plural, meta["name"], ctx.info.group,
                              f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta.get('uid')}")
    if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
        raise errors.conflict(ctx.info.plural, meta["name"], ctx.info.group,
                              f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                              f"ResourceVersion in object meta: {meta.get('resourceVersion')}")


def _propagation_finalizer(opts: Obj) -> str | None:
    policy = opts.get("propagationPolicy")
    if policy == "Orphan" or (policy is None and opts.get("orphanDependents") is True):
        return "orphan"
    if policy == "Foreground":
        return "foregroundDeletion"
    return None


def _grace_period(ctx: Ctx, obj: Obj, opts: Obj) -> int:
    """Pods bound to a node terminate gracefully; everything else goes at once."""
    if ctx.info.kind != "Pod" or ctx.info.group:
        return 0
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
        return 0
    grace = opts.get("gracePeriodSeconds")
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds", 30)
    return max(int(grace), 0)


def _mark_deleting(ctx: Ctx, obj: Obj, finalizer: str | None, grace: int) -> Obj | None:
    """The object with deletion started, or None if it can be removed right away."""
    meta = obj["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    if finalizer and finalizer not in finalizers:
        finalizers = [f for f in finalizers if f not in ("orphan", "foregroundDeletion")] + [finalizer]
    is_namespace = ctx.info.kind == "Namespace" and not ctx.info.group
    if not finalizers and grace == 0 and not is_namespace:
        return None
    now = datetime.now(UTC)
    if meta.get("deletionTimestamp"):
        current_grace = meta.get("deletionGracePeriodSeconds") or 0
        if finalizers == list(meta.get("finalizers") or []) and grace >= current_grace:
            return obj  # already deleting; nothing shortens it
    meta["finalizers"] = finalizers
    if not finalizers:
        meta.pop("finalizers")
    meta["deletionTimestamp"] = (now + timedelta(seconds=grace)).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta["deletionGracePeriodSeconds"] = grace
    if strategy.has_generation(ctx.info):
        meta["generation"] = meta.get("generation", 0) + 1
    if is_namespace:
        obj.setdefault("status", {})["phase"] = "Terminating"
    return obj


async def delete_one(ctx: Ctx, name: str, opts: Obj) -> tuple[Obj, bool]:
    """Returns (object, still_exists)."""
    if ctx.info.kind == "Namespace" and not ctx.info.group:
        namespaces.check_deletable(name)
    dry_run = bool(opts.get("dryRun")) or ctx.dry_run
    finalizer = _propagation_finalizer(opts)
    store = ctx.server.store
    while True:
        current = await store.get(ctx.info, ctx.namespace, name)
        _check_preconditions(ctx, current, opts)
        if opts.get("gracePeriodSeconds") == 0 and current["metadata"].get("deletionTimestamp") \
                and not current["metadata"].get("finalizers"):
            grace = 0
        else:
            grace = _grace_period(ctx, current, opts)
        rv = current["metadata"]["resourceVersion"]
        marked = _mark_deleting(ctx, admission_copy(current), finalizer, grace)
        try:
            if marked is None:
                return await remove(ctx, current, dry_run=dry_run), False
            if marked == current:
                return current, True

            async def write(latest: Obj | None, marked: Obj = marked) -> Obj:
                return marked

            _, new = await store.guaranteed_update(ctx.info, ctx.namespace, name, write, precondition_rv=rv,
                                                   dry_run=dry_run)
            return new, True
        except errors.StatusError as exc:
            if exc.reason != "Conflict" or (opts.get("preconditions") or {}):
                raise
            # Someone wrote in between: decide again on the fresh object.


async def remove(ctx: Ctx, obj: Obj, *, dry_run: bool = False) -> Obj:
    """Delete from storage now; a Service's clusterIP and nodePorts are released."""
    deleted = await ctx.server.store.delete_now(ctx.info, obj, dry_run=dry_run)
    if not dry_run and (ctx.info.group, ctx.info.kind) == ("", "Service"):
        await ctx.server.allocator.release_all(deleted)
    return deleted


def admission_copy(obj: Obj) -> Obj:
    import copy

    return copy.deepcopy(obj)
