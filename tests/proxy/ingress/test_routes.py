"""Routing: how Ingresses merge into servers and locations, and which location a request gets."""

from __future__ import annotations

import pytest

from proxy.ingress.routes import (
    CATCH_ALL,
    ServiceBackend,
    build_table,
    normalize_host,
    prefix_matches,
    rewrite,
)


def ingress(name: str, rules: list[dict] | None = None, *, default: str | None = None, tls: list[dict] | None = None,
            annotations: dict[str, str] | None = None, created: str = "2026-01-01T00:00:00Z",
            namespace: str = "default") -> dict:
    spec: dict = {}
    if rules is not None:
        spec["rules"] = rules
    if default:
        spec["defaultBackend"] = {"service": {"name": default, "port": {"number": 80}}}
    if tls is not None:
        spec["tls"] = tls
    meta = {"name": name, "namespace": namespace, "creationTimestamp": created,
            "annotations": {f"nginx.ingress.kubernetes.io/{k}": v for k, v in (annotations or {}).items()}}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec}


def rule(host: str | None, *paths: tuple[str, str, str]) -> dict:
    out: dict = {"http": {"paths": [{"path": p, "pathType": t, "backend": {"service": {"name": s, "port": {"number": 80}}}}
                                    for p, t, s in paths]}}
    if host:
        out["host"] = host
    return out


SEED = ingress("api-ingress", [rule("api.walmart.com", ("/orders", "Prefix", "order-service"),
                                    ("/inventory", "Prefix", "inventory-service"))],
               tls=[{"hosts": ["api.walmart.com"], "secretName": "tls-secret"}],
               annotations={"ssl-redirect": "true", "rate-limit": "100"})


def backend_of(table, host: str, path: str) -> str | None:
    _server, location, _found = table.route(host, path)
    return location.backend.name if location.backend else None


@pytest.mark.parametrize(("prefix", "path", "matches"), [
    pytest.param("/foo", "/foo", True, id="same"),
    pytest.param("/foo", "/foo/", True, id="trailing-slash"),
    pytest.param("/foo", "/foo/bar", True, id="below"),
    pytest.param("/foo", "/foobar", False, id="not-element-wise"),
    pytest.param("/foo/", "/foo", True, id="rule-trailing-slash"),
    pytest.param("/", "/anything", True, id="root"),
    pytest.param("/aaa/bbb", "/aaa/bbbxyz", False, id="api-table-last-element"),
])
def test_prefix_matches_element_wise(prefix, path, matches):
    assert prefix_matches(prefix, path) is matches


@pytest.mark.parametrize(("host", "path", "backend"), [
    pytest.param("api.walmart.com", "/orders", "order-service", id="orders"),
    pytest.param("api.walmart.com", "/orders/42", "order-service", id="orders-below"),
    pytest.param("API.Walmart.com:8080", "/inventory", "inventory-service", id="host-case-and-port"),
    pytest.param("api.walmart.com", "/ordersx", None, id="no-path-match-default-backend"),
    pytest.param("other.com", "/orders", None, id="unknown-host-catch-all"),
])
def test_seed_ingress_routes(host, path, backend):
    assert backend_of(build_table([SEED]), host, path) == backend


def test_longest_path_wins_and_exact_before_prefix_on_equal_length():
    table = build_table([ingress("a", [rule("h", ("/", "Prefix", "root"), ("/foo", "Prefix", "foo-prefix"),
                                            ("/foo", "Exact", "foo-exact"), ("/foo/bar", "Prefix", "bar"))])])
    assert backend_of(table, "h", "/foo") == "foo-exact"
    assert backend_of(table, "h", "/foo/") == "foo-prefix"
    assert backend_of(table, "h", "/foo/bar/baz") == "bar"
    assert backend_of(table, "h", "/x") == "root"


def test_exact_does_not_match_below_or_with_slash():
    table = build_table([ingress("a", [rule("h", ("/exact", "Exact", "e"))])])
    assert backend_of(table, "h", "/exact") == "e"
    assert backend_of(table, "h", "/exact/") is None


def test_implementation_specific_is_prefix():
    table = build_table([ingress("a", [rule("h", ("/is", "ImplementationSpecific", "s"))])])
    assert backend_of(table, "h", "/is/x") == "s"
    assert backend_of(table, "h", "/isx") is None


@pytest.mark.parametrize(("host", "backend"), [
    pytest.param("bar.foo.com", "wild", id="one-label"),
    pytest.param("foo.com", None, id="bare-domain-not-matched"),
    pytest.param("baz.bar.foo.com", None, id="two-labels-not-matched"),
    pytest.param("exact.foo.com", "exact", id="exact-host-before-wildcard"),
])
def test_wildcard_host_matches_one_label(host, backend):
    table = build_table([ingress("a", [rule("*.foo.com", ("/", "Prefix", "wild")),
                                       rule("exact.foo.com", ("/", "Prefix", "exact"))])])
    assert backend_of(table, host, "/") == backend


def test_older_ingress_keeps_a_path_and_newer_adds_others():
    old = ingress("old", [rule("h", ("/a", "Prefix", "old-a"))], created="2026-01-01T00:00:00Z")
    new = ingress("new", [rule("h", ("/a", "Prefix", "new-a"), ("/b", "Prefix", "new-b"))],
                  created="2026-01-02T00:00:00Z")
    table = build_table([new, old])
    assert backend_of(table, "h", "/a") == "old-a"
    assert backend_of(table, "h", "/b") == "new-b"


def test_default_backend_without_rules_is_the_catch_all():
    table = build_table([ingress("d", default="fallback"), ingress("r", [rule("h", ("/x", "Prefix", "x"))])])
    assert backend_of(table, "unknown", "/anything") == "fallback"
    assert backend_of(table, "h", "/other") is None  # h's root belongs to r, which has no defaultBackend


def test_default_backend_with_rules_serves_its_hosts_unmatched_paths():
    table = build_table([ingress("a", [rule("h", ("/x", "Prefix", "x"))], default="fallback")])
    assert backend_of(table, "h", "/y") == "fallback"
    assert backend_of(table, "h", "/x") == "x"


def test_rule_without_host_goes_to_the_catch_all_server():
    table = build_table([ingress("a", [rule(None, ("/any", "Prefix", "any"))])])
    assert backend_of(table, "whatever.example", "/any") == "any"
    assert table.server_for("whatever.example").hostname == CATCH_ALL


def test_tls_host_gets_its_secret_and_others_of_a_tls_ingress_the_fake_certificate():
    ing = ingress("a", [rule("a.com", ("/", "Prefix", "s")), rule("b.com", ("/", "Prefix", "s"))],
                  tls=[{"hosts": ["a.com"], "secretName": "a-tls"}])
    table = build_table([ing])
    assert table.servers["a.com"].tls and table.servers["a.com"].tls_secret == ("default", "a-tls")
    assert table.servers["b.com"].tls and table.servers["b.com"].tls_secret is None
    assert not table.servers[CATCH_ALL].tls


def test_rewrite_target_uses_the_path_regex_groups():
    ing = ingress("rw", [rule("h", ("/something(/|$)(.*)", "ImplementationSpecific", "s"))],
                  annotations={"rewrite-target": "/$2"})
    table = build_table([ing])
    _server, location, _ = table.route("h", "/something/new/path")
    assert location.backend == ServiceBackend("default", "s", 80)
    assert rewrite(location, "/something/new/path", "a=1") == "/new/path?a=1"
    assert rewrite(location, "/something", "") == "/"


def test_invalid_annotation_is_reported_and_ignored():
    table = build_table([ingress("bad", [rule("h", ("/", "Prefix", "s"))], annotations={"limit-rps": "lots"})])
    assert table.servers["h"].locations[0].config.limit_rps == 0
    assert "limit-rps" in table.errors[("default", "bad")][0]


def test_seed_rate_limit_annotation_means_limit_rps():
    config = build_table([SEED]).servers["api.walmart.com"].locations[0].config
    assert config.limit_rps == 100 and config.ssl_redirect


def test_resource_backend_is_marked_unsupported():
    ing = ingress("res", [{"host": "h", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
        "resource": {"apiGroup": "k8s.example.com", "kind": "StorageBucket", "name": "icons"}}}]}}])
    location = build_table([ing]).route("h", "/")[1]
    assert location.backend is None and "not supported" in location.unsupported


@pytest.mark.parametrize(("raw", "name"), [
    pytest.param("Foo.COM:80", "foo.com", id="port-and-case"),
    pytest.param("foo.com.", "foo.com", id="trailing-dot"),
    pytest.param("[::1]:8080", "[::1]", id="ipv6"),
])
def test_normalize_host(raw, name):
    assert normalize_host(raw) == name


@pytest.mark.parametrize(("value", "size"), [
    pytest.param("8m", 8 * 1024 * 1024, id="megabytes"),
    pytest.param("512K", 512 * 1024, id="kilobytes"),
    pytest.param("0", 0, id="unlimited"),
    pytest.param("lots", 1024 * 1024, id="invalid-keeps-default"),
])
def test_proxy_body_size(value, size):
    config = build_table([ingress("s", [rule("h", ("/", "Prefix", "s"))], annotations={"proxy-body-size": value})])
    assert config.servers["h"].locations[0].config.proxy_body_size == size
