"""get and list, and the shapes a response can take.

A client chooses the shape with its Accept header: the object (JSON, or YAML), a
`Table` (kubectl get), or `PartialObjectMetadata` (metadata-only informers). Lists
honour label and field selectors, limit/continue paging at one consistent revision,
and resourceVersion / resourceVersionMatch as Kubernetes defines them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apiserver import errors
from apiserver.context import Ctx
from apiserver.registry.store import ListPage

Obj = dict[str, Any]


class Shape:
    """What the client's Accept header asks for."""

    def __init__(self, accept: str) -> None:
        self.table = False
        self.partial = False
        self.yaml = False
        for part in accept.split(","):
            params = {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in part.split(";")[1:])}
            media = part.split(";", 1)[0].strip()
            if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
                self.table = True
                break
            if params.get("as") in ("PartialObjectMetadata", "PartialObjectMetadataList") and params.get("g") == "meta.k8s.io":
                self.partial = True
                break
            if media in ("application/json", "*/*", "application/*", "application/vnd.kubernetes.protobuf"):
                break
            if media == "application/yaml":
                self.yaml = True
                break

    @property
    def include_object(self) -> str:
        return "Metadata"


def table_include_object(ctx: Ctx) -> str:
    value = ctx.params.get("includeObject", "Metadata") or "Metadata"
    if value not in ("None", "Metadata", "Object"):
        raise errors.bad_request(f"includeObject must be one of None, Metadata, Object; got {value}")
    return value


def printer(ctx: Ctx) -> Any:
    from apiserver import tables

    if ctx.info.crd is not None:
        for v in ctx.info.crd["spec"].get("versions", []):
            if v.get("name") == ctx.version:
                return tables.crd_printer(v.get("additionalPrinterColumns"))
        return tables.crd_printer(None)
    return tables.printer_for(ctx.info.group, ctx.info.kind)


def as_table(ctx: Ctx, objects: list[Obj], *, resource_version: str = "", continue_token: str = "",
             remaining: int | None = None) -> Obj:
    from apiserver import tables

    return tables.build_table(printer(ctx), objects, include_object=table_include_object(ctx),
                              resource_version=resource_version, continue_token=continue_token,
                              remaining=remaining)


def partial(obj: Obj) -> Obj:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def parse_limit(ctx: Ctx) -> int:
    raw = ctx.params.get("limit", "0") or "0"
    try:
        limit = int(raw)
    except ValueError:
        raise errors.bad_request(f"invalid limit: {raw}") from None
    return max(limit, 0)


def matcher(ctx: Ctx) -> Callable[[Obj], bool] | None:
    """A predicate for labelSelector and fieldSelector, or None when both are empty."""
    from apiserver import selectors

    label_raw, field_raw = ctx.params.get("labelSelector", ""), ctx.params.get("fieldSelector", "")
    if not label_raw and not field_raw:
        return None
    labels = selectors.parse_label_selector(label_raw) if label_raw else None
    fields = selectors.parse_field_selector(field_raw) if field_raw else None
    if fields is not None:
        # Returns the selector with field labels renamed to their canonical paths.
        fields = selectors.validate_field_selector(ctx.info.group, ctx.info.kind, fields)
    group, kind = ctx.info.group, ctx.info.kind

    def match(obj: Obj) -> bool:
        if labels is not None and not labels.matches(obj.get("metadata", {}).get("labels") or {}):
            return False
        return fields is None or fields.matches(selectors.field_set(group, kind, obj))

    return match


def list_revision(ctx: Ctx) -> int:
    """The revision a list must be served at: 0 = latest. resourceVersionMatch=Exact
    (or a continue token) pins one; NotOlderThan/unset serve the latest state, which
    is never older than what was asked (we have no lagging cache)."""
    rv = ctx.params.get("resourceVersion", "")
    match = ctx.params.get("resourceVersionMatch", "")
    if match and match not in ("Exact", "NotOlderThan"):
        raise errors.bad_request(f"resourceVersionMatch: Unsupported value: \"{match}\"")
    if match and not rv:
        raise errors.bad_request("resourceVersionMatch is forbidden unless resourceVersion is provided")
    if not rv or rv == "0":
        return 0
    try:
        revision = int(rv)
    except ValueError:
        raise errors.bad_request(f"invalid resource version: {rv}") from None
    current = ctx.server.storage.current_revision()
    if revision > current:
        raise errors.StatusError(
            504, "Timeout", f"Too large resource version: {revision}, current: {current}",
            details={"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                     "retryAfterSeconds": 1})
    return revision if match == "Exact" else 0


async def list_page(ctx: Ctx) -> ListPage:
    namespace = ctx.namespace if ctx.info.namespaced else None
    return await ctx.server.store.list(
        ctx.info, namespace or None, match=matcher(ctx), limit=parse_limit(ctx),
        continue_token=ctx.params.get("continue", ""), revision=list_revision(ctx))


def list_body(ctx: Ctx, page: ListPage, shape: Shape, convert: Callable[[Obj], Obj]) -> Obj:
    items = [convert(o) for o in page.items]
    rv = str(page.revision)
    if shape.table:
        return as_table(ctx, items, resource_version=rv, continue_token=page.continue_token, remaining=page.remaining)
    meta: Obj = {"resourceVersion": rv}
    if page.continue_token:
        meta["continue"] = page.continue_token
        if page.remaining is not None:
            meta["remainingItemCount"] = page.remaining
    if shape.partial:
        return {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                "items": [partial(o) for o in items]}
    return {"kind": ctx.info.list_kind, "apiVersion": ctx.api_version, "metadata": meta, "items": items}


def object_body(ctx: Ctx, obj: Obj, shape: Shape) -> Obj:
    if shape.table:
        rv = obj.get("metadata", {}).get("resourceVersion", "")
        return as_table(ctx, [obj], resource_version=rv)
    if shape.partial:
        return partial(obj)
    return obj
