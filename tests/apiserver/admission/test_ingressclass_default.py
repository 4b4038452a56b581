"""DefaultIngressClass: new Ingresses without a class get the default IngressClass."""

from __future__ import annotations

import asyncio

import orjson

ING = "/apis/networking.k8s.io/v1/namespaces/default/ingresses"
CLASSES = "/apis/networking.k8s.io/v1/ingressclasses"
JSON = {"Content-Type": "application/json"}


async def _post(client, url: str, body: dict) -> dict:
    resp = await client.post(url, data=orjson.dumps(body), headers=JSON)
    assert resp.status == 201, await resp.text()
    return await resp.json()


def _class(name: str, default: bool) -> dict:
    annotations = {"ingressclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": name, "annotations": annotations}, "spec": {"controller": f"example.com/{name}"}}


def _ingress(name: str, class_name: str | None = None, annotations: dict | None = None) -> dict:
    spec: dict = {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}
    if class_name is not None:
        spec["ingressClassName"] = class_name
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "annotations": annotations or {}}, "spec": spec}


async def test_no_default_class_leaves_the_ingress_alone(client):
    await _post(client, CLASSES, _class("plain", default=False))
    created = await _post(client, ING, _ingress("a"))
    assert "ingressClassName" not in created["spec"]


async def test_default_class_is_set_on_create_only_when_none_is_named(client):
    await _post(client, CLASSES, _class("other", default=False))
    await _post(client, CLASSES, _class("mkp", default=True))
    assert (await _post(client, ING, _ingress("a")))["spec"]["ingressClassName"] == "mkp"
    assert (await _post(client, ING, _ingress("b", "other")))["spec"]["ingressClassName"] == "other"
    legacy = await _post(client, ING, _ingress("c", annotations={"kubernetes.io/ingress.class": "nginx"}))
    assert "ingressClassName" not in legacy["spec"]


async def test_the_newest_of_several_defaults_wins(client):
    await _post(client, CLASSES, _class("old", default=True))
    await asyncio.sleep(1.05)  # creationTimestamp has whole seconds
    await _post(client, CLASSES, _class("new", default=True))
    assert (await _post(client, ING, _ingress("a")))["spec"]["ingressClassName"] == "new"
