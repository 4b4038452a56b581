"""Subresources other than status: scale, namespaces/finalize, pods/binding, and the
create-only review resources (SelfSubjectAccessReview, SelfSubjectRulesReview,
SelfSubjectReview, SubjectAccessReview, TokenReview).

`/scale` presents any scalable object as an autoscaling/v1 `Scale` (spec.replicas,
status.replicas, status.selector as a string); custom resources map it through their
CRD's specReplicasPath / statusReplicasPath / labelSelectorPath. The reviews answer
from the pipeline's authenticator and authorizer, so they tell the truth about what the
server will allow.
"""

from __future__ import annotations

from typing import Any

from apiserver import errors
from apiserver.context import Ctx
from apiserver.handlers import admission, namespaces
from apiserver.handlers.writes import finish_update
from apiserver.request import RequestInfo

Obj = dict[str, Any]


def _scale_paths(ctx: Ctx) -> tuple[str, str, str]:
    if ctx.info.crd is None:
        return ".spec.replicas", ".status.replicas", ""
    for v in ctx.info.crd["spec"].get("versions", []):
        if v.get("name") == ctx.info.version:
            scale = (v.get("subresources") or {}).get("scale") or {}
            return scale.get("specReplicasPath", ".spec.replicas"), scale.get("statusReplicasPath", ".status.replicas"), \
                scale.get("labelSelectorPath", "")
    return ".spec.replicas", ".status.replicas", ""


def _get_path(obj: Obj, path: str) -> Any:
    cur: Any = obj
    for part in path.strip(".").split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _set_path(obj: Obj, path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    cur = obj
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value


def to_scale(ctx: Ctx, obj: Obj) -> Obj:
    from apiserver import selectors

    spec_path, status_path, selector_path = _scale_paths(ctx)
    meta = obj["metadata"]
    if ctx.info.crd is None:
        raw_selector = (obj.get("spec") or {}).get("selector")
        selector = selectors.selector_from_object(raw_selector).to_string() if isinstance(raw_selector, dict) else ""
    else:
        selector = _get_path(obj, selector_path) if selector_path else ""
    status: Obj = {"replicas": _get_path(obj, status_path) or 0}
    if selector:
        status["selector"] = selector
    scale_meta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": scale_meta,
            "spec": {"replicas": _get_path(obj, spec_path) or 0}, "status": status}


async def get_scale(ctx: Ctx) -> Obj:
    return to_scale(ctx, await ctx.server.store.get(ctx.info, ctx.namespace, ctx.name))


async def update_scale(ctx: Ctx, compute_scale: Any) -> Obj:
    """Write a Scale: `compute_scale(current_scale) -> new_scale` (PUT body or patched)."""
    spec_path, _, _ = _scale_paths(ctx)
    precondition = ""

    async def compute(current: Obj | None) -> Obj | None:
        nonlocal precondition
        assert current is not None
        scale = compute_scale(to_scale(ctx, current))
        if not isinstance(scale, dict) or scale.get("kind", "Scale") != "Scale":
            raise errors.bad_request("the body must be an autoscaling/v1 Scale")
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid_object("Scale", "autoscaling", ctx.name, [
                errors.invalid("spec.replicas", replicas, "must be greater than or equal to 0")])
        new = admission.copy_obj(current)
        _set_path(new, spec_path, replicas)
        return await admission.admit_update(ctx, new, current, manager=ctx.field_manager(), subresource="scale")

    _, new = await ctx.server.store.guaranteed_update(ctx.info, ctx.namespace, ctx.name, compute,
                                                      precondition_rv=precondition, dry_run=ctx.dry_run)
    return to_scale(ctx, new)


async def put_scale(ctx: Ctx, body: Any) -> Obj:
    rv = ((body or {}).get("metadata") or {}).get("resourceVersion", "") if isinstance(body, dict) else ""

    def replace(current_scale: Obj) -> Obj:
        if rv and rv != current_scale["metadata"].get("resourceVersion"):
            raise errors.conflict(ctx.info.plural, ctx.name, ctx.info.group)
        return body

    return await update_scale(ctx, replace)


async def finalize_namespace(ctx: Ctx, body: Any) -> Obj:
    """PUT namespaces/x/finalize: only spec.finalizers changes; a Terminating namespace
    with no finalizers left is removed."""
    finalizers = ((body or {}).get("spec") or {}).get("finalizers") if isinstance(body, dict) else None

    async def compute(current: Obj | None) -> Obj | None:
        assert current is not None
        new = admission.copy_obj(current)
        new.setdefault("spec", {})["finalizers"] = list(finalizers or [])
        if not new["spec"]["finalizers"]:
            new["spec"].pop("finalizers")
        return None if new == current else new

    _, new = await ctx.server.store.guaranteed_update(ctx.info, None, ctx.name, compute, dry_run=ctx.dry_run)
    if new["metadata"].get("deletionTimestamp") and not (new.get("spec") or {}).get("finalizers") \
            and not new["metadata"].get("finalizers"):
        return await ctx.server.store.delete_now(ctx.info, new, dry_run=ctx.dry_run)
    return new


async def bind_pod(ctx: Ctx, body: Any) -> Obj:
    """POST pods/x/binding (the scheduler's bind): sets spec.nodeName once."""
    if not isinstance(body, dict) or not (body.get("target") or {}).get("name"):
        raise errors.invalid_object("Binding", "", ctx.name, [errors.required("target.name")])
    node = body["target"]["name"]
    wanted_uid = (body.get("metadata") or {}).get("uid")

    async def compute(current: Obj | None) -> Obj | None:
        assert current is not None
        uid = current["metadata"].get("uid")
        if wanted_uid and wanted_uid != uid:
            raise errors.conflict("pods/binding", ctx.name, "",
                                  f"Precondition failed: UID in precondition: {wanted_uid}, UID in object meta: {uid}")
        if current["metadata"].get("deletionTimestamp"):
            raise errors.conflict("pods", ctx.name, "", f"pod {ctx.name} is being deleted, cannot be assigned to a host")
        if (current.get("spec") or {}).get("nodeName"):
            raise errors.conflict("pods", ctx.name, "", f"pod {ctx.name} is already assigned to node \"{current['spec']['nodeName']}\"")
        new = admission.copy_obj(current)
        new["spec"]["nodeName"] = node
        conditions = [c for c in new.setdefault("status", {}).get("conditions", []) if c.get("type") != "PodScheduled"]
        from apiserver.registry.strategy import now_rfc3339

        conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                           "lastTransitionTime": now_rfc3339()})
        new["status"]["conditions"] = conditions
        return new

    await ctx.server.store.guaranteed_update(ctx.info, ctx.namespace, ctx.name, compute, dry_run=ctx.dry_run)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


async def review(ctx: Ctx, body: Any) -> Obj:
    """The create-only review kinds: answered, never stored."""
    if not isinstance(body, dict):
        raise errors.bad_request(f"the object provided is unrecognized (must be of type {ctx.info.kind})")
    kind = ctx.info.kind
    body = {**body, "apiVersion": ctx.api_version, "kind": kind}
    body.setdefault("metadata", {})
    spec = body.get("spec") or {}
    pipeline = ctx.server.pipeline
    if kind == "SelfSubjectReview":
        user = ctx.user
        body["status"] = {"userInfo": {"username": user.name, "groups": list(user.groups),
                                       **({"uid": user.uid} if user.uid else {})}}
        return body
    if kind in ("SelfSubjectAccessReview", "SubjectAccessReview", "LocalSubjectAccessReview"):
        attrs = spec.get("resourceAttributes") or {}
        non_resource = spec.get("nonResourceAttributes") or {}
        rinfo = RequestInfo(bool(attrs), attrs.get("verb") or non_resource.get("verb", ""),
                            non_resource.get("path", ""), group=attrs.get("group", ""),
                            version=attrs.get("version", ""), namespace=attrs.get("namespace", ""),
                            resource=attrs.get("resource", ""), name=attrs.get("name", ""),
                            subresource=attrs.get("subresource", ""))
        allowed, reason = await pipeline.authorizer.authorize(ctx.user, rinfo)
        body["status"] = {"allowed": allowed, **({"reason": reason} if reason else {})}
        return body
    if kind == "SelfSubjectRulesReview":
        allowed, _ = await pipeline.authorizer.authorize(ctx.user, RequestInfo(True, "*", "", namespace=spec.get("namespace", "")))
        rules = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}] if allowed else []
        non_resource = [{"verbs": ["*"], "nonResourceURLs": ["*"]}] if allowed else []
        body["status"] = {"resourceRules": rules, "nonResourceRules": non_resource, "incomplete": False}
        return body
    raise errors.method_not_allowed(f"{kind} is not supported by this server yet")


__all__ = ["get_scale", "put_scale", "update_scale", "finalize_namespace", "bind_pod", "review", "namespaces",
           "finish_update"]
