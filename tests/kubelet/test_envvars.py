"""The container environment: $(VAR) expansion (the cases of Kubernetes' own expansion
tests), service links, envFrom/env precedence, valueFrom sources and the kubelet's error
texts for missing ConfigMaps, Secrets and keys."""

from __future__ import annotations

from typing import Any

import pytest

from kubelet.envvars import ConfigError, container_env, expand, mapping_for, resource_field_value, service_env
from tests.kubelet.volumes.fakes import FakeSource, pod

EXPANSION_CASES = [
    ("whole string", "$(VAR_A)", "A"),
    ("repeat", "$(VAR_A)-$(VAR_A)", "A-A"),
    ("beginning", "$(VAR_A)-1", "A-1"),
    ("middle", "___$(VAR_B)___", "___B___"),
    ("end", "___$(VAR_C)", "___C"),
    ("compound", "$(VAR_A)_$(VAR_B)_$(VAR_C)", "A_B_C"),
    ("escape & expand", "$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),
    ("compound escape", "$$(VAR_A)_$$(VAR_B)", "$(VAR_A)_$(VAR_B)"),
    ("mixed in escapes", "f000-$$VAR_A", "f000-$VAR_A"),
    ("backslash escape ignored", "foo\\$(VAR_C)bar", "foo\\Cbar"),
    ("double backslash", "foo\\\\$(VAR_C)bar", "foo\\\\Cbar"),
    ("lots of backslashes", "foo\\\\\\\\$(VAR_A)bar", "foo\\\\\\\\Abar"),
    ("nested var references", "$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"),
    ("nested var references second type", "$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"),
    ("value is a reference", "$(VAR_REF)", "$(VAR_A)"),
    ("value is a reference x 2", "%%$(VAR_REF)--$(VAR_REF)%%", "%%$(VAR_A)--$(VAR_A)%%"),
    ("empty var", "foo$(VAR_EMPTY)bar", "foobar"),
    ("unterminated expression", "foo$(VAR_Awhoops!", "foo$(VAR_Awhoops!"),
    ("expression without operator", "f00__(VAR_A)__", "f00__(VAR_A)__"),
    ("shell special vars pass through", "$?_boo_$!", "$?_boo_$!"),
    ("bare operators are ignored", "$VAR_A", "$VAR_A"),
    ("undefined vars are passed through", "$(VAR_DNE)", "$(VAR_DNE)"),
    ("multiple (even) operators, var undefined", "$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"),
    ("multiple (even) operators, var defined", "$$$$$$(VAR_A)", "$$$(VAR_A)"),
    ("multiple (odd) operators, var undefined", "$$$$$$$(GOOD_ODDS)", "$$$$(GOOD_ODDS)"),
    ("multiple (odd) operators, var defined", "$$$$$$$(VAR_A)", "$$$A"),
    ("missing open expression", "$VAR_A)", "$VAR_A)"),
    ("shell syntax ignored", "${VAR_A}", "${VAR_A}"),
    ("trailing incomplete expression not consumed", "$(VAR_B)_______$(A", "B_______$(A"),
    ("trailing incomplete expression, no content", "$(VAR_C)_______$(", "C_______$("),
    ("operator at end of input string is preserved", "$(VAR_A)foobarzab$", "Afoobarzab$"),
    ("shell escaped incomplete expr", "foo-\\$(VAR_A", "foo-\\$(VAR_A"),
    ("lots of $( in middle", "--$($($($($--", "--$($($($($--"),
    ("lots of $( in beginning", "$($($($($--foo$(", "$($($($($--foo$("),
    ("lots of $( at end", "foo0--$($($($(", "foo0--$($($($("),
    ("escaped operators in variable names are not escaped", "$(foo$$var)", "$(foo$$var)"),
    ("newline not expanded", "\n", "\n"),
]


@pytest.mark.parametrize(("name", "text", "expected"), EXPANSION_CASES, ids=[c[0] for c in EXPANSION_CASES])
@pytest.mark.parametrize("dual", [False, True], ids=["one-context", "two-contexts"])
def test_expansion_matches_the_kubelet(name: str, text: str, expected: str, dual: bool) -> None:
    first = {"VAR_A": "A", "VAR_EMPTY": ""}
    second = {"VAR_B": "B", "VAR_C": "C", "VAR_REF": "$(VAR_A)"}
    mapping = mapping_for(first, second) if dual else mapping_for({**first, **second})
    assert expand(text, mapping) == expected


def _service(name: str, namespace: str, ip: str, port: int, *, port_name: str = "", protocol: str = "TCP") -> dict:
    entry: dict[str, Any] = {"protocol": protocol, "port": port}
    if port_name:
        entry["name"] = port_name
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"clusterIP": ip, "ports": [entry]}}


SERVICES = [
    _service("kubernetes", "default", "1.2.3.1", 8081),
    _service("test", "test1", "1.2.3.3", 8083),
    _service("kubernetes", "test2", "1.2.3.4", 8084),
    _service("test", "test2", "1.2.3.5", 8085),
    _service("test", "test2", "None", 8085),
    _service("test", "test2", "", 8085),
    _service("not-special", "default", "1.2.3.8", 8088),
    _service("not-special", "default", "None", 8088),
]


def _links(prefix: str, ip: str, port: int) -> dict[str, str]:
    url = f"tcp://{ip}:{port}"
    return {f"{prefix}_SERVICE_HOST": ip, f"{prefix}_SERVICE_PORT": str(port), f"{prefix}_PORT": url,
            f"{prefix}_PORT_{port}_TCP": url, f"{prefix}_PORT_{port}_TCP_PROTO": "tcp",
            f"{prefix}_PORT_{port}_TCP_PORT": str(port), f"{prefix}_PORT_{port}_TCP_ADDR": ip}


def test_service_links_for_the_pod_namespace_and_the_master_service() -> None:
    assert service_env(SERVICES, "test1", True) == {**_links("TEST", "1.2.3.3", 8083),
                                                   **_links("KUBERNETES", "1.2.3.1", 8081)}


def test_the_namespace_own_kubernetes_service_wins_and_headless_services_give_nothing() -> None:
    assert service_env(SERVICES, "test2", True) == {**_links("TEST", "1.2.3.5", 8085),
                                                   **_links("KUBERNETES", "1.2.3.4", 8084)}


def test_without_service_links_only_the_master_service_is_injected() -> None:
    assert service_env(SERVICES, "test1", False) == _links("KUBERNETES", "1.2.3.1", 8081)
    assert service_env(SERVICES, "default", True) == {**_links("KUBERNETES", "1.2.3.1", 8081),
                                                     **_links("NOT_SPECIAL", "1.2.3.8", 8088)}


def test_named_ports_udp_and_dashes_in_service_variables() -> None:
    svc = {"metadata": {"name": "my-dns", "namespace": "ns"},
           "spec": {"clusterIP": "10.0.0.10", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                                                        {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}}
    env = service_env([svc], "ns", True)
    assert env["MY_DNS_SERVICE_PORT"] == "53"
    assert env["MY_DNS_SERVICE_PORT_DNS"] == "53" and env["MY_DNS_SERVICE_PORT_DNS_TCP"] == "53"
    assert env["MY_DNS_PORT"] == "udp://10.0.0.10:53"
    assert env["MY_DNS_PORT_53_UDP_PROTO"] == "udp" and env["MY_DNS_PORT_53_TCP"] == "tcp://10.0.0.10:53"


def _container(**fields: Any) -> dict:
    return {"name": "app", "image": "busybox", **fields}


async def _env(container: dict, source: FakeSource | None = None, services: list | None = None,
               **kwargs: Any) -> dict[str, str]:
    the_pod = kwargs.pop("the_pod", None) or pod(containers=[container], namespace="test1",
                                                 labels={"app": "web", "tier": "front"},
                                                 annotations={"note": 'say "hi"'})
    return await container_env(the_pod, container, source=source or FakeSource(), node_ip="10.0.0.5",
                               pod_ip=kwargs.pop("pod_ip", "127.244.1.7"), services=services or [], **kwargs)


async def test_env_overrides_env_from_which_overrides_nothing_of_services_but_adds() -> None:
    source = FakeSource()
    source.configmap("cfg", {"FOO": "from-cm", "BAR": "bar", "TEST_SERVICE_HOST": "cm-host"}, namespace="test1")
    container = _container(envFrom=[{"configMapRef": {"name": "cfg"}}],
                           env=[{"name": "FOO", "value": "from-env"},
                                {"name": "KUBERNETES_SERVICE_PORT", "value": "9999"}])
    env = await _env(container, source, SERVICES)
    assert env["FOO"] == "from-env" and env["BAR"] == "bar"
    assert env["TEST_SERVICE_HOST"] == "cm-host"  # a declared variable wins over a service link
    assert env["KUBERNETES_SERVICE_PORT"] == "9999"
    assert env["TEST_PORT"] == "tcp://1.2.3.3:8083"
    names = list(env)
    assert names.index("FOO") < names.index("KUBERNETES_PORT")  # service links come last, as appended


async def test_references_see_earlier_variables_env_from_and_services_only() -> None:
    source = FakeSource()
    source.configmap("cfg", {"GREETING": "hello"}, namespace="test1")
    container = _container(envFrom=[{"configMapRef": {"name": "cfg"}, "prefix": "CM_"}], env=[
        {"name": "LATER_REF", "value": "$(SECOND)"},
        {"name": "FIRST", "value": "one"},
        {"name": "SECOND", "value": "$(FIRST)-two $(CM_GREETING) $(TEST_SERVICE_HOST) $$(FIRST) $(NOPE)"},
        {"name": "EMPTY", "value": ""},
    ])
    env = await _env(container, source, SERVICES)
    assert env["LATER_REF"] == "$(SECOND)"
    assert env["SECOND"] == "one-two hello 1.2.3.3 $(FIRST) $(NOPE)"
    assert env["CM_GREETING"] == "hello" and env["EMPTY"] == ""


async def test_env_from_secret_with_prefix_and_keys_that_are_not_c_identifiers() -> None:
    source = FakeSource()
    source.secret("creds", {"user": b"admin", "pass.word": b"s3cret", "1key": b"x"}, namespace="test1")
    env = await _env(_container(envFrom=[{"secretRef": {"name": "creds"}, "prefix": "DB_"}]), source)
    assert {k: v for k, v in env.items() if k.startswith("DB_")} == {
        "DB_user": "admin", "DB_pass.word": "s3cret", "DB_1key": "x"}


@pytest.mark.parametrize(("container", "message"), [
    (_container(envFrom=[{"configMapRef": {"name": "app-config"}}]), 'configmap "app-config" not found'),
    (_container(envFrom=[{"secretRef": {"name": "creds"}}]), 'secret "creds" not found'),
    (_container(env=[{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "k"}}}]),
     'configmap "app-config" not found'),
    (_container(env=[{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "present", "key": "k"}}}]),
     "couldn't find key k in ConfigMap test1/present"),
    (_container(env=[{"name": "X", "valueFrom": {"secretKeyRef": {"name": "shh", "key": "token"}}}]),
     "couldn't find key token in Secret test1/shh"),
    (_container(env=[{"name": "X", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "token"}}}]),
     'secret "gone" not found'),
], ids=["envfrom-configmap", "envfrom-secret", "keyref-configmap", "keyref-key", "keyref-secret-key",
        "keyref-secret"])
async def test_missing_required_objects_and_keys_fail_with_the_kubelet_messages(container: dict, message: str) -> None:
    source = FakeSource()
    source.configmap("present", {"other": "1"}, namespace="test1")
    source.secret("shh", {"user": b"u"}, namespace="test1")
    with pytest.raises(ConfigError) as caught:
        await _env(container, source)
    assert caught.value.message == message


async def test_optional_references_to_missing_objects_and_keys_skip_the_variable() -> None:
    source = FakeSource()
    source.configmap("present", {"other": "1"}, namespace="test1")
    container = _container(envFrom=[{"configMapRef": {"name": "absent", "optional": True}},
                                    {"secretRef": {"name": "absent", "optional": True}}], env=[
        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "present", "key": "k", "optional": True}}},
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}}},
        {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "present", "key": "other"}}},
    ])
    env = await _env(container, source)
    assert "A" not in env and "B" not in env and env["C"] == "1"


async def test_secret_key_ref_is_base64_decoded() -> None:
    source = FakeSource()
    source.secret("db", {"password": b"p@ss w0rd\n"}, namespace="test1")
    env = await _env(_container(env=[{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]),
                     source)
    assert env["PW"] == "p@ss w0rd\n"


def _field(name: str, path: str) -> dict:
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}


async def test_field_refs() -> None:
    container = _container(env=[
        _field("POD_NAME", "metadata.name"), _field("POD_NAMESPACE", "metadata.namespace"),
        _field("POD_UID", "metadata.uid"), _field("APP", "metadata.labels['app']"),
        _field("NONE", "metadata.labels['missing']"), _field("LABELS", "metadata.labels"),
        _field("NOTE", "metadata.annotations['note']"), _field("ANNOTATIONS", "metadata.annotations"),
        _field("NODE", "spec.nodeName"), _field("SA", "spec.serviceAccountName"),
        _field("HOST_IP", "status.hostIP"), _field("HOST_IPS", "status.hostIPs"),
        _field("POD_IP", "status.podIP"), _field("POD_IPS", "status.podIPs"),
        {"name": "URL", "value": "http://$(POD_IP):8080"},
    ])
    env = await _env(container, pod_ip=["127.244.1.7", "fd00::7"])
    assert env["POD_NAME"] == "web" and env["POD_NAMESPACE"] == "test1"
    assert env["POD_UID"] == "0b5c6f0e-1111-4222-8333-444455556666"
    assert env["APP"] == "web" and env["NONE"] == ""
    assert env["LABELS"] == 'app="web"\ntier="front"'
    assert env["NOTE"] == 'say "hi"' and env["ANNOTATIONS"] == 'note="say \\"hi\\""'
    assert env["NODE"] == "node-1" and env["SA"] == "default"
    assert env["HOST_IP"] == "10.0.0.5" and env["HOST_IPS"] == "10.0.0.5"
    assert env["POD_IP"] == "127.244.1.7" and env["POD_IPS"] == "127.244.1.7,fd00::7"
    assert env["URL"] == "http://127.244.1.7:8080"


@pytest.mark.parametrize(("path", "message"), [
    ("spec.containers", "field label not supported: spec.containers"),
    ("spec.nodeName['x']", "field label does not support subscript: spec.nodeName['x']"),
    ("spec.restartPolicy", "unsupported fieldPath: spec.restartPolicy"),
])
async def test_bad_field_refs(path: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        await _env(_container(env=[_field("X", path)]))
    assert caught.value.message == message


ALLOCATABLE = {"cpu": "4", "memory": "8Gi", "ephemeral-storage": "100Gi"}


@pytest.mark.parametrize(("resources", "ref", "expected"), [
    ({"limits": {"cpu": "250m"}}, {"resource": "limits.cpu", "divisor": "1m"}, "250"),
    ({"limits": {"cpu": "250m"}}, {"resource": "limits.cpu"}, "1"),  # rounded up
    ({"limits": {"cpu": "1500m"}}, {"resource": "limits.cpu", "divisor": "1"}, "2"),
    ({}, {"resource": "limits.cpu"}, "4"),  # no limit: node allocatable
    ({}, {"resource": "limits.cpu", "divisor": "1m"}, "4000"),
    ({"requests": {"cpu": "100m"}}, {"resource": "requests.cpu", "divisor": "1m"}, "100"),
    ({}, {"resource": "requests.cpu"}, "0"),
    ({"limits": {"memory": "64Mi"}}, {"resource": "limits.memory", "divisor": "1Mi"}, "64"),
    ({"limits": {"memory": "64Mi"}}, {"resource": "limits.memory"}, "67108864"),
    ({"limits": {"memory": "1000"}}, {"resource": "limits.memory", "divisor": "1Ki"}, "1"),
    ({}, {"resource": "limits.memory", "divisor": "1Gi"}, "8"),
    ({"requests": {"memory": "32Mi"}}, {"resource": "requests.memory", "divisor": "1Mi"}, "32"),
    ({}, {"resource": "limits.ephemeral-storage", "divisor": "1Gi"}, "100"),
    ({"limits": {"hugepages-2Mi": "4Mi"}}, {"resource": "limits.hugepages-2Mi", "divisor": "1Mi"}, "4"),
])
def test_resource_field_refs(resources: dict, ref: dict, expected: str) -> None:
    container = _container(resources=resources)
    assert resource_field_value(ref, pod(containers=[container]), container, ALLOCATABLE) == expected


async def test_resource_field_ref_of_another_container_and_unsupported_resources() -> None:
    app = _container(env=[{"name": "SIDE_MEM", "valueFrom": {"resourceFieldRef": {
        "containerName": "side", "resource": "limits.memory", "divisor": "1Mi"}}}])
    side = {"name": "side", "image": "busybox", "resources": {"limits": {"memory": "16Mi"}}}
    the_pod = pod(containers=[app, side])
    env = await _env(app, the_pod=the_pod, node_allocatable=ALLOCATABLE)
    assert env["SIDE_MEM"] == "16"
    with pytest.raises(ConfigError, match="unsupported container resource : limits.gpu"):
        resource_field_value({"resource": "limits.gpu"}, the_pod, app, ALLOCATABLE)
    with pytest.raises(ConfigError, match="container ghost not found"):
        resource_field_value({"resource": "limits.cpu", "containerName": "ghost"}, the_pod, app, ALLOCATABLE)


async def test_each_object_is_fetched_once_per_container() -> None:
    source = FakeSource()
    source.configmap("cfg", {"a": "1", "b": "2"}, namespace="test1")
    container = _container(envFrom=[{"configMapRef": {"name": "cfg"}}], env=[
        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "a"}}},
        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "b"}}}])
    await _env(container, source)
    assert source.calls == 1
