"""A tiny kopf operator used by test_kopf.py: greets each Greeting in its status."""

import kopf


@kopf.on.create("demo.mkp.dev", "v1", "greetings")
def greet(spec, body, patch, **_):
    patch.status["message"] = f"hello, {spec.get('name', 'world')}"
    kopf.info(body, reason="Greeted", message="said hello")


@kopf.on.update("demo.mkp.dev", "v1", "greetings", field="spec.name")
def regreet(new, patch, **_):
    patch.status["message"] = f"hello again, {new}"
