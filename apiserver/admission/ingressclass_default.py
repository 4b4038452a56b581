"""The DefaultIngressClass admission plugin (plugin/pkg/admission/network/defaultingressclass).

A new Ingress that names no class (no `spec.ingressClassName` and no legacy
`kubernetes.io/ingress.class` annotation) gets the default IngressClass: the one annotated
`ingressclass.kubernetes.io/is-default-class: "true"`; with several, the newest (then by
name), as the StorageClass default is picked. Without a default class the Ingress is left
alone. Only creates are defaulted: an update never changes the class, and a class marked
default later does not reach existing Ingresses. `kubectl get ingress` then shows the
class, and the controllers that serve that class pick the Ingress up by its field.
"""

from __future__ import annotations

from typing import Any

from apiserver.admission.storageclass_default import pick_newest
from apiserver.context import Server
from apiserver.pipeline import Attributes

Obj = dict[str, Any]
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def is_default_class(ingress_class: Obj) -> bool:
    annotations = (ingress_class.get("metadata") or {}).get("annotations") or {}
    return annotations.get(DEFAULT_CLASS_ANNOTATION) == "true"


class DefaultIngressClass:
    """Mutating admission: new Ingresses without a class get the default class."""

    def __init__(self, server: Server) -> None:
        self.server = server

    async def admit(self, attrs: Attributes) -> None:
        if attrs.operation != "CREATE" or attrs.subresource or attrs.obj is None:
            return
        if (attrs.info.group, attrs.info.kind) != ("networking.k8s.io", "Ingress"):
            return
        annotations = (attrs.obj.get("metadata") or {}).get("annotations") or {}
        if (attrs.obj.get("spec") or {}).get("ingressClassName") is not None or LEGACY_CLASS_ANNOTATION in annotations:
            return
        info = self.server.registry.lookup("networking.k8s.io", "v1", "ingressclasses")
        if info is None:
            return
        classes = [c for c in (await self.server.store.list(info, None)).items if is_default_class(c)]
        default = pick_newest(classes)
        if default is not None:
            attrs.obj.setdefault("spec", {})["ingressClassName"] = default["metadata"]["name"]
