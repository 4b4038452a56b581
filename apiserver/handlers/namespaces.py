"""Namespace lifecycle: what the NamespaceLifecycle admission plugin and the namespace
REST storage do.

New objects need an existing namespace that is not being deleted. Deleting a namespace
marks it Terminating (deletionTimestamp + status.phase) and keeps it while
`spec.finalizers` (set to ["kubernetes"] at creation) is not empty; the namespace
controller empties it and clears that finalizer through `/finalize`. The four system
namespaces exist from the start and cannot be deleted.
"""

from __future__ import annotations

from typing import Any

from apiserver import errors
from apiserver.context import Ctx, Server
from apiserver.registry import strategy

Obj = dict[str, Any]
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
UNDELETABLE = ("default", "kube-system", "kube-public")


async def check_namespace_open(ctx: Ctx, name: str = "") -> None:
    namespace = ctx.namespace
    name = name or ctx.name or ""
    info = ctx.server.registry.lookup("", "v1", "namespaces")
    assert info is not None
    ns = await ctx.server.store.try_get(info, None, namespace)
    if ns is None:
        raise errors.not_found("namespaces", namespace)
    if ns["metadata"].get("deletionTimestamp") or (ns.get("status") or {}).get("phase") == "Terminating":
        raise errors.StatusError(
            403, "Forbidden",
            f"{ctx.info.plural}{'.' + ctx.info.group if ctx.info.group else ''} "
            f"\"{name}\" is forbidden: unable to create new content in namespace {namespace} "
            "because it is being terminated",
            details={"name": name, "group": ctx.info.group, "kind": ctx.info.plural,
                     "causes": [{"reason": "NamespaceTerminating", "message": f"namespace {namespace} is being terminated",
                                 "field": "metadata.namespace"}]},
        )


def mark_terminating(ns: Obj, now: str) -> None:
    ns["metadata"].setdefault("deletionTimestamp", now)
    ns["metadata"].setdefault("deletionGracePeriodSeconds", 0)
    ns.setdefault("status", {})["phase"] = "Terminating"


def check_deletable(name: str) -> None:
    if name in UNDELETABLE:
        raise errors.forbidden_request(
            f'namespaces "{name}" is forbidden: this namespace may not be deleted',
            resource="namespaces", name=name)


async def ensure_system_namespaces(server: Server) -> None:
    """Create default, kube-system, kube-public and kube-node-lease if missing."""
    from apiserver.admission.defaults import default_object

    info = server.registry.lookup("", "v1", "namespaces")
    assert info is not None
    for name in SYSTEM_NAMESPACES:
        if await server.store.try_get(info, None, name) is not None:
            continue
        ns: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        default_object("", "v1", "Namespace", ns)
        strategy.prepare_for_create(info, ns)
        try:
            await server.store.create(info, ns)
        except errors.StatusError as exc:
            if exc.reason != "AlreadyExists":
                raise
