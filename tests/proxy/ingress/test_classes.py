"""Which Ingresses the controller serves."""

from __future__ import annotations

import pytest

from minikube_py.client import Store
from minikube_py.client.store import Lister
from proxy.ingress.classes import ClassFilter, ingress_class_object


def classes(*objects: dict) -> Lister:
    store = Store()
    for obj in objects:
        store.upsert(obj)
    return Lister(store)


def ing(class_name: str | None = None, legacy: str | None = None) -> dict:
    meta: dict = {"name": "i", "namespace": "d"}
    if legacy:
        meta["annotations"] = {"kubernetes.io/ingress.class": legacy}
    return {"metadata": meta, "spec": {"ingressClassName": class_name} if class_name else {}}


NOT_DEFAULT = {**ingress_class_object("mkp"), "metadata": {"name": "mkp"}}
FOREIGN = {"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}


@pytest.mark.parametrize(("known", "ingress", "served"), [
    pytest.param([ingress_class_object("mkp")], ing("mkp"), True, id="our-class"),
    pytest.param([ingress_class_object("mkp"), FOREIGN], ing("nginx"), False, id="another-controllers-class"),
    pytest.param([ingress_class_object("mkp")], ing("missing"), False, id="class-that-does-not-exist"),
    pytest.param([ingress_class_object("mkp")], ing(), True, id="no-class-and-we-are-default"),
    pytest.param([NOT_DEFAULT], ing(), False, id="no-class-and-we-are-not-default"),
    pytest.param([ingress_class_object("mkp")], ing("mkp", legacy="nginx"), False, id="legacy-annotation-wins"),
    pytest.param([NOT_DEFAULT], ing(legacy="mkp"), True, id="legacy-annotation-names-us"),
])
def test_class_filter(known, ingress, served):
    assert ClassFilter(classes(*known), "mkp").serves(ingress) is served
