"""Which Ingresses this controller serves, and its IngressClass.

An Ingress is ours when:
- its legacy annotation `kubernetes.io/ingress.class` names our class (the annotation wins
  over spec.ingressClassName, as in ingress-nginx);
- or spec.ingressClassName names an IngressClass whose spec.controller is ours
  (`mkp.dev/ingress-controller`);
- or it names no class at all and an IngressClass of ours is the cluster's default
  (annotation `ingressclass.kubernetes.io/is-default-class: "true"`). In a real cluster the
  DefaultIngressClass admission plugin writes the default class into such an Ingress when
  it is created; serving class-less Ingresses here gives the same outcome.

At start the controller makes sure its IngressClass exists (created as the default class,
as minikube's ingress addon does for `nginx`); an existing one is left as the user has it.
"""

from __future__ import annotations

import logging
from typing import Any

from minikube_py.client import ApiClient, ApiError, Lister, Resource

log = logging.getLogger("proxy.ingress")

Obj = dict[str, Any]

INGRESSCLASSES = Resource("networking.k8s.io", "v1", "ingressclasses", False, "IngressClass")
CONTROLLER_CLASS = "mkp.dev/ingress-controller"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def ingress_class_object(name: str, controller: str = CONTROLLER_CLASS) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": name, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"},
                     "labels": {"app.kubernetes.io/component": "controller",
                                "app.kubernetes.io/name": "mkp-ingress"}},
        "spec": {"controller": controller},
    }


async def ensure_ingress_class(client: ApiClient, name: str, controller: str = CONTROLLER_CLASS) -> Obj:
    """The IngressClass `name`, created (as the default class) if missing. One that exists
    with another controller is a configuration error: we would serve nothing."""
    try:
        existing = await client.get(INGRESSCLASSES, name)
    except ApiError as exc:
        if not exc.is_not_found():
            raise
        try:
            created = await client.create(INGRESSCLASSES, ingress_class_object(name, controller))
            log.info("created IngressClass %s (default class, controller %s)", name, controller)
            return created
        except ApiError as exc2:
            if not exc2.is_already_exists():
                raise
            existing = await client.get(INGRESSCLASSES, name)
    other = (existing.get("spec") or {}).get("controller")
    if other != controller:
        raise ValueError(f"IngressClass {name} exists with controller {other!r}, not {controller!r}: "
                         f"choose another --ingress-class or delete it")
    return existing


def is_default_class(ingress_class: Obj) -> bool:
    annotations = (ingress_class.get("metadata") or {}).get("annotations") or {}
    return annotations.get(DEFAULT_CLASS_ANNOTATION) == "true"


class ClassFilter:
    """Decides "is this Ingress ours?" from the IngressClass cache."""

    def __init__(self, classes: Lister, ingress_class: str, controller: str = CONTROLLER_CLASS) -> None:
        self.classes = classes
        self.ingress_class = ingress_class
        self.controller = controller

    def _ours(self, ingress_class: Obj | None) -> bool:
        return ingress_class is not None and (ingress_class.get("spec") or {}).get("controller") == self.controller

    def we_are_default(self) -> bool:
        return any(self._ours(c) and is_default_class(c) for c in self.classes.list())

    def serves(self, ingress: Obj) -> bool:
        annotations = (ingress.get("metadata") or {}).get("annotations") or {}
        legacy = annotations.get(LEGACY_CLASS_ANNOTATION)
        if legacy:
            return legacy == self.ingress_class
        name = (ingress.get("spec") or {}).get("ingressClassName")
        if name:
            return self._ours(self.classes.get(name))
        return self.we_are_default()
