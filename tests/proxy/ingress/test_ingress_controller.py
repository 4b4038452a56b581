"""The ingress controller end to end: a real API server, curl in front, loopback backends behind."""

from __future__ import annotations

import asyncio
import base64
import subprocess
from pathlib import Path

import aiohttp

from minikube_py.client import EVENTS, INGRESSES, SECRETS, SERVICES
from proxy.ingress.classes import DEFAULT_CLASS_ANNOTATION, INGRESSCLASSES
from tests.conftest import require_tool
from tests.proxy.ingress.conftest import Harness, eventually


def service_backend(name: str, port: int = 80) -> dict:
    return {"service": {"name": name, "port": {"number": port}}}


def paths(*entries: tuple[str, str, str]) -> dict:
    return {"paths": [{"path": p, "pathType": t, "backend": service_backend(s)} for p, t, s in entries]}


def make_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    cert, key = directory / f"{host}.crt", directory / f"{host}.key"
    subprocess.run([require_tool("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", f"/CN={host}", "-addext", f"subjectAltName=DNS:{host}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


async def tls_secret(h: Harness, name: str, cert: Path, key: Path) -> None:
    await h.client.create(SECRETS, {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": h.namespace},
        "data": {"tls.crt": base64.b64encode(cert.read_bytes()).decode(),
                 "tls.key": base64.b64encode(key.read_bytes()).decode()}})


SEED_ANNOTATIONS = {"nginx.ingress.kubernetes.io/ssl-redirect": "true", "nginx.ingress.kubernetes.io/rate-limit": "100"}


async def seed(h: Harness, tmp_path: Path) -> Path:
    """The study guide's Ingress, its two Services with one backend each, and its TLS Secret."""
    orders, inventory = await h.backend("orders"), await h.backend("inventory")
    await h.service("order-service", [(orders.address, orders.port, True)])
    await h.service("inventory-service", [(inventory.address, inventory.port, True)])
    cert, key = make_certificate(tmp_path, "api.walmart.com")
    await tls_secret(h, "tls-secret", cert, key)
    await h.ingress("api-ingress", {
        "tls": [{"hosts": ["api.walmart.com"], "secretName": "tls-secret"}],
        "rules": [{"host": "api.walmart.com", "http": paths(("/orders", "Prefix", "order-service"),
                                                            ("/inventory", "Prefix", "inventory-service"))}],
    }, SEED_ANNOTATIONS)
    return cert


async def test_seed_ingress_over_https_routes_by_path_with_forwarded_headers(harness: Harness, tmp_path: Path):
    cert = await seed(harness, tmp_path)
    resolve = ["--resolve", f"api.walmart.com:{harness.https_port}:127.0.0.1", "--cacert", str(cert)]
    base = f"https://api.walmart.com:{harness.https_port}"

    async def orders():
        reply = await harness.curl(f"{base}/orders/42?x=1", *resolve)
        return reply if reply.status == 200 else None

    reply = await eventually(orders, what="/orders over https")
    seen = reply.json()
    assert seen["backend"] == "orders" and seen["path"] == "/orders/42?x=1"
    headers = seen["headers"]
    assert headers["Host"] == f"api.walmart.com:{harness.https_port}"
    assert headers["X-Forwarded-Proto"] == "https" and headers["X-Forwarded-Port"] == str(harness.https_port)
    assert headers["X-Forwarded-For"] == "127.0.0.1" and headers["X-Real-IP"] == "127.0.0.1"
    assert headers["X-Forwarded-Host"] == f"api.walmart.com:{harness.https_port}"
    assert len(headers["X-Request-ID"]) == 32
    assert reply.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert (await harness.curl(f"{base}/inventory", *resolve)).json()["backend"] == "inventory"
    assert (await harness.curl(f"{base}/other", *resolve)).status == 404


async def test_seed_ingress_redirects_plain_http_with_308(harness: Harness, tmp_path: Path):
    await seed(harness, tmp_path)

    async def redirected():
        reply = await harness.get("api.walmart.com", "/orders?a=b")
        return reply if reply.status == 308 else None

    reply = await eventually(redirected, what="the ssl redirect")
    assert reply.headers["location"] == f"https://api.walmart.com:{harness.https_port}/orders?a=b"


async def test_served_ingress_gets_status_and_a_sync_event(harness: Harness, tmp_path: Path):
    await seed(harness, tmp_path)

    async def status():
        ing = await harness.client.get(INGRESSES, "api-ingress", harness.namespace)
        return ing["status"]["loadBalancer"].get("ingress")

    entries = await eventually(status, what="status.loadBalancer.ingress")
    assert entries == [{"ip": "127.0.0.1", "ports": [{"port": harness.http_port, "protocol": "TCP"},
                                                     {"port": harness.https_port, "protocol": "TCP"}]}]

    async def sync_event():
        events = (await harness.client.list(EVENTS, harness.namespace))["items"]
        return [e for e in events if e["reason"] == "Sync" and e["involvedObject"]["name"] == "api-ingress"]

    event = (await eventually(sync_event, what="the Sync event"))[0]
    assert event["type"] == "Normal" and event["message"] == "Scheduled for sync"
    assert event["source"]["component"] == "mkp-ingress-controller"


async def test_ingress_class_mkp_is_created_as_the_default(harness: Harness):
    ingress_class = await harness.client.get(INGRESSCLASSES, "mkp")
    assert ingress_class["spec"]["controller"] == "mkp.dev/ingress-controller"
    assert ingress_class["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION] == "true"


async def test_status_is_cleared_when_the_ingress_moves_to_another_class(harness: Harness):
    backend = await harness.backend("b")
    await harness.service("svc", [(backend.address, backend.port, True)])
    await harness.ingress("moving", {"ingressClassName": "mkp",
                                     "rules": [{"host": "moving.test", "http": paths(("/", "Prefix", "svc"))}]})

    async def addresses():
        ing = await harness.client.get(INGRESSES, "moving", harness.namespace)
        return ing["status"]["loadBalancer"].get("ingress") or []

    assert await eventually(addresses, what="status set")
    await harness.client.patch(INGRESSES, "moving", {"spec": {"ingressClassName": "someone-else"}}, harness.namespace)
    await eventually(lambda: _empty(addresses), what="status cleared")
    assert (await harness.get("moving.test", "/")).status == 404


async def _empty(fetch) -> bool:
    return not await fetch()


async def test_exact_prefix_default_backend_and_unavailable_service(harness: Harness):
    exact = await harness.backend("exact")
    prefix = await harness.backend("prefix")
    fallback = await harness.backend("fallback")
    for backend in (exact, prefix, fallback):
        await harness.service(backend.name, [(backend.address, backend.port, True)])
    await harness.service("empty", [])
    await harness.ingress("kinds", {
        "defaultBackend": service_backend("fallback"),
        "rules": [{"host": "kinds.test", "http": paths(("/api", "Exact", "exact"), ("/api", "Prefix", "prefix"),
                                                       ("/down", "Prefix", "empty"))}]})

    async def served(path: str, expected: str):
        reply = await harness.get("kinds.test", path)
        return reply.status == 200 and reply.json()["backend"] == expected

    await eventually(lambda: served("/api", "exact"), what="exact /api")
    assert await served("/api/", "prefix") and await served("/api/v1", "prefix")
    assert await served("/apix", "fallback")  # the Ingress's defaultBackend for its host's other paths
    assert (await harness.get("kinds.test", "/down/x")).status == 503
    # ingress-nginx also makes an Ingress's defaultBackend the catch-all server's backend
    assert (await harness.get("no-such-host.test", "/")).json()["backend"] == "fallback"


async def test_unknown_host_gets_the_controllers_404(harness: Harness):
    reply = await eventually(lambda: _status(harness, "nobody.test", "/", 404), what="404")
    assert "404 Not Found" in reply.body


async def _status(harness: Harness, host: str, path: str, status: int):
    reply = await harness.get(host, path)
    return reply if reply.status == status else None


async def test_round_robin_over_ready_endpoints_only(harness: Harness):
    one = await harness.backend("one")
    two = await harness.backend("two", address=one.address.rsplit(".", 1)[0] + ".1", port=one.port)
    await harness.service("rr", [(one.address, one.port, True), (two.address, two.port, True)])
    await harness.ingress("rr", {"rules": [{"host": "rr.test", "http": paths(("/", "Prefix", "rr"))}]})

    async def both_seen():
        names = {(await harness.get("rr.test", "/")).headers.get("x-backend") for _ in range(4)}
        return names == {"one", "two"}

    await eventually(both_seen, what="both endpoints to serve")
    await harness.write_slice("rr", [(one.address, one.port, True), (two.address, two.port, False)])

    async def only_one():
        names = [(await harness.get("rr.test", "/")).headers.get("x-backend") for _ in range(4)]
        return names == ["one"] * 4

    await eventually(only_one, what="the unready endpoint to leave the rotation")


async def test_tls_by_sni_and_the_fake_certificate_otherwise(harness: Harness, tmp_path: Path):
    backend = await harness.backend("secure")
    await harness.service("secure", [(backend.address, backend.port, True)])
    cert, key = make_certificate(tmp_path, "secure.test")
    await tls_secret(harness, "secure-tls", cert, key)
    await harness.ingress("secure", {"tls": [{"hosts": ["secure.test"], "secretName": "secure-tls"}],
                                     "rules": [{"host": "secure.test", "http": paths(("/", "Prefix", "secure"))}]})
    port = harness.https_port

    async def verified():
        reply = await harness.curl(f"https://secure.test:{port}/", "--resolve", f"secure.test:{port}:127.0.0.1",
                                   "--cacert", str(cert))
        return reply if reply.status == 200 else None

    assert (await eventually(verified, what="the Secret's certificate by SNI")).json()["backend"] == "secure"
    other = await harness.curl(f"https://other.test:{port}/", "--resolve", f"other.test:{port}:127.0.0.1", "-k", "-v")
    assert "Kubernetes Ingress Controller Fake Certificate" in other.stderr
    assert other.status == 404


async def test_rate_limit_answers_503_over_the_burst(harness: Harness):
    backend = await harness.backend("limited")
    await harness.service("limited", [(backend.address, backend.port, True)])
    await harness.ingress("limited", {"rules": [{"host": "limited.test", "http": paths(("/", "Prefix", "limited"))}]},
                          {"nginx.ingress.kubernetes.io/limit-rps": "1",
                           "nginx.ingress.kubernetes.io/limit-burst-multiplier": "2"})
    await eventually(lambda: _status(harness, "limited.test", "/", 200), what="the limited Ingress")
    statuses = [(await harness.get("limited.test", "/")).status for _ in range(6)]
    assert 503 in statuses and statuses[-1] == 503


async def test_rewrite_target(harness: Harness):
    backend = await harness.backend("rewritten")
    await harness.service("rewritten", [(backend.address, backend.port, True)])
    await harness.ingress("rewrite", {"rules": [{"host": "rw.test", "http": paths(
        ("/something(/|$)(.*)", "ImplementationSpecific", "rewritten"))}]},
        {"nginx.ingress.kubernetes.io/rewrite-target": "/$2"})
    reply = await eventually(lambda: _status(harness, "rw.test", "/something/new?q=1", 200), what="rewrite")
    assert reply.json()["path"] == "/new?q=1"


async def test_502_when_no_endpoint_accepts_the_connection(harness: Harness):
    await harness.service("refusing", [("127.77.250.250", 9, True)])
    await harness.ingress("refusing", {"rules": [{"host": "refusing.test", "http": paths(("/", "Prefix", "refusing"))}]})
    await eventually(lambda: _status(harness, "refusing.test", "/", 502), what="502")


async def test_request_body_streams_to_the_backend(harness: Harness):
    backend = await harness.backend("upload")
    await harness.service("upload", [(backend.address, backend.port, True)])
    await harness.ingress("upload", {"rules": [{"host": "upload.test", "http": paths(("/", "Prefix", "upload"))}]})
    await eventually(lambda: _status(harness, "upload.test", "/", 200), what="upload Ingress")
    reply = await harness.get("upload.test", "/up", "-H", "Transfer-Encoding: chunked", "--data-binary", "x" * 100_000)
    assert reply.json()["body_length"] == 100_000 and reply.json()["method"] == "POST"


async def test_websocket_is_relayed(harness: Harness):
    backend = await harness.backend("ws")
    await harness.service("ws", [(backend.address, backend.port, True)])
    await harness.ingress("ws", {"rules": [{"host": "ws.test", "http": paths(("/", "Prefix", "ws"))}]})
    await eventually(lambda: _status(harness, "ws.test", "/", 200), what="ws Ingress")
    async with aiohttp.ClientSession() as session, session.ws_connect(
            f"http://127.0.0.1:{harness.http_port}/ws", headers={"Host": "ws.test"}, protocols=("echo",)) as ws:
        assert ws.protocol == "echo"
        await ws.send_str("hello")
        assert (await asyncio.wait_for(ws.receive(), 5)).data == "ws:hello"


async def test_metrics_count_requests_and_healthz_answers(harness: Harness):
    backend = await harness.backend("counted")
    await harness.service("counted", [(backend.address, backend.port, True)])
    await harness.ingress("counted", {"rules": [{"host": "counted.test", "http": paths(("/c", "Prefix", "counted"))}]})
    await eventually(lambda: _status(harness, "counted.test", "/c", 200), what="counted Ingress")
    base = f"http://127.0.0.1:{harness.controller.metrics_port}"
    assert (await harness.curl(f"{base}/healthz")).status == 200
    metrics = (await harness.curl(f"{base}/metrics")).body
    line = next(m for m in metrics.splitlines() if m.startswith("nginx_ingress_controller_requests{")
                and f'namespace="{harness.namespace}"' in m and 'ingress="counted"' in m and 'status="200"' in m)
    assert 'service="counted"' in line and 'path="/c"' in line and int(line.rsplit(" ", 1)[1]) >= 1


async def test_expect_100_continue_head_and_chunked_responses(harness: Harness):
    backend = await harness.backend("bodies")
    await harness.service("bodies", [(backend.address, backend.port, True)])
    await harness.ingress("bodies", {"rules": [{"host": "bodies.test", "http": paths(("/", "Prefix", "bodies"))}]})
    await eventually(lambda: _status(harness, "bodies.test", "/", 200), what="bodies Ingress")
    # Without a "100 Continue" from the ingress curl would wait --expect100-timeout (past --max-time).
    upload = await harness.get("bodies.test", "/up", "-H", "Expect: 100-continue", "--expect100-timeout", "20",
                               "--data-binary", "y" * 50_000)
    assert upload.status == 200 and upload.json()["body_length"] == 50_000
    assert "Expect" not in upload.json()["headers"]
    head = await harness.get("bodies.test", "/h", "-I", "-o", "/dev/null")
    assert head.status == 200 and int(head.headers["content-length"]) > 0 and head.body == ""
    streamed = await harness.get("bodies.test", "/stream")
    assert len(streamed.body) == 100_000 and streamed.headers.get("transfer-encoding") == "chunked"


async def test_stopping_the_controller_takes_its_address_out_of_the_status(harness: Harness):
    await harness.ingress("leaving", {"rules": [{"host": "leaving.test", "http": paths(("/", "Prefix", "none"))}]})

    async def addresses():
        ing = await harness.client.get(INGRESSES, "leaving", harness.namespace)
        return ing["status"]["loadBalancer"].get("ingress") or []

    await eventually(addresses, what="status set")
    await harness.stop()
    assert await addresses() == []


async def test_external_name_service_is_proxied_to_its_name_and_target_port(harness: Harness):
    backend = await harness.backend("external", address="127.0.0.1")
    await harness.client.create(SERVICES, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "external", "namespace": harness.namespace},
        "spec": {"type": "ExternalName", "externalName": "localhost",
                 "ports": [{"port": 80, "targetPort": backend.port}]}})
    await harness.ingress("external", {"rules": [{"host": "ext.test", "http": paths(("/", "Prefix", "external"))}]})
    reply = await eventually(lambda: _status(harness, "ext.test", "/e", 200), what="ExternalName backend")
    assert reply.json()["backend"] == "external"


async def test_body_over_proxy_body_size_gets_413(harness: Harness, tmp_path: Path):
    backend = await harness.backend("sized")
    await harness.service("sized", [(backend.address, backend.port, True)])
    await harness.ingress("default-size", {"rules": [{"host": "small.test", "http": paths(("/", "Prefix", "sized"))}]})
    await harness.ingress("bigger", {"rules": [{"host": "big.test", "http": paths(("/", "Prefix", "sized"))}]},
                          {"nginx.ingress.kubernetes.io/proxy-body-size": "4m"})
    await eventually(lambda: _status(harness, "big.test", "/", 200), what="the Ingresses")
    body = tmp_path / "body"
    body.write_bytes(b"z" * (2 * 1024 * 1024))
    assert (await harness.get("small.test", "/", "--data-binary", f"@{body}")).status == 413
    reply = await harness.get("big.test", "/", "--data-binary", f"@{body}")
    assert reply.status == 200 and reply.json()["body_length"] == 2 * 1024 * 1024


async def test_read_timeout_gives_504(harness: Harness):
    backend = await harness.backend("slow")
    await harness.service("slow", [(backend.address, backend.port, True)])
    await harness.ingress("slow", {"rules": [{"host": "slow.test", "http": paths(("/", "Prefix", "slow"))}]},
                          {"nginx.ingress.kubernetes.io/proxy-read-timeout": "1"})
    await eventually(lambda: _status(harness, "slow.test", "/", 200), what="slow Ingress")
    assert (await harness.get("slow.test", "/slow")).status == 504


async def test_bad_annotation_and_missing_secret_are_warning_events(harness: Harness):
    await harness.ingress("faulty", {"tls": [{"hosts": ["faulty.test"], "secretName": "nowhere"}],
                                     "rules": [{"host": "faulty.test", "http": paths(("/", "Prefix", "x"))}]},
                          {"nginx.ingress.kubernetes.io/limit-rps": "many"})

    async def warnings():
        events = (await harness.client.list(EVENTS, harness.namespace))["items"]
        return sorted(e["message"] for e in events if e["type"] == "Warning" and e["involvedObject"]["name"] == "faulty")

    messages = await eventually(lambda: _two(warnings), what="two Warning events")
    assert "limit-rps" in messages[0] or "limit-rps" in messages[1]
    assert any(f"Secret {harness.namespace}/nowhere not found" in m for m in messages)


async def _two(fetch):
    found = await fetch()
    return found if len(found) == 2 else None
