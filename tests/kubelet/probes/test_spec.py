"""Probe specs: defaults, port resolution and the Go spellings failure messages use."""

from __future__ import annotations

import pytest

from kubelet.probes.spec import (
    LIVENESS,
    READINESS,
    ProbeError,
    ProbeSpec,
    expand_static,
    go_duration,
    go_quote,
    join_host_port,
    probes_of,
    resolve_port,
)


def test_defaults_match_the_api_defaults():
    spec = ProbeSpec.parse(LIVENESS, {"httpGet": {"path": "/healthz", "port": 8080}})
    assert (spec.handler, spec.initial_delay, spec.period, spec.timeout) == ("httpGet", 0, 10, 1)
    assert (spec.success_threshold, spec.failure_threshold, spec.termination_grace_period) == (1, 3, None)
    assert spec.action == {"path": "/healthz", "port": 8080}


def test_explicit_values_and_probe_level_grace_period():
    spec = ProbeSpec.parse(READINESS, {"tcpSocket": {"port": 80}, "initialDelaySeconds": 5, "periodSeconds": 2,
                                       "timeoutSeconds": 3, "successThreshold": 2, "failureThreshold": 7,
                                       "terminationGracePeriodSeconds": 4})
    assert (spec.initial_delay, spec.period, spec.timeout, spec.success_threshold,
            spec.failure_threshold, spec.termination_grace_period) == (5, 2, 3, 2, 7, 4)


def test_a_non_integer_field_is_a_clear_error():
    with pytest.raises(ValueError, match="periodSeconds must be an integer"):
        ProbeSpec.parse(LIVENESS, {"exec": {"command": ["true"]}, "periodSeconds": "10"})


def test_probes_of_lists_only_declared_probes():
    specs = probes_of({"name": "app", "readinessProbe": {"grpc": {"port": 9090}}})
    assert list(specs) == [READINESS] and specs[READINESS].handler == "grpc"


@pytest.mark.parametrize(("port", "expected"), [
    pytest.param(8080, 8080, id="number"),
    pytest.param("http", 9898, id="named"),
    pytest.param("8081", 8081, id="number-in-a-string"),
])
def test_resolve_port(port, expected):
    container = {"ports": [{"name": "http", "containerPort": 9898}]}
    assert resolve_port(port, container) == expected


@pytest.mark.parametrize(("port", "message"), [
    pytest.param("metrics", 'strconv.Atoi: parsing "metrics": invalid syntax', id="unknown-name"),
    pytest.param(0, "invalid port number: 0", id="zero"),
    pytest.param(70000, "invalid port number: 70000", id="too-big"),
    pytest.param(None, "invalid port number: 0", id="unset"),
])
def test_resolve_port_errors_are_the_kubelets(port, message):
    with pytest.raises(ProbeError) as info:
        resolve_port(port, {"ports": [{"name": "http", "containerPort": 80}]})
    assert str(info.value) == message


def test_go_spellings():
    assert go_quote('sh -c "exit 1"\n') == r'"sh -c \"exit 1\"\n"'
    assert [go_duration(s) for s in (1, 30, 60, 90, 3600, 0.5)] == ["1s", "30s", "1m0s", "1m30s", "1h0m0s", "500ms"]
    assert join_host_port("127.0.0.1", 80) == "127.0.0.1:80"
    assert join_host_port("::1", 80) == "[::1]:80"


def test_exec_command_expansion_uses_static_env_only():
    env = [{"name": "FILE", "value": "/tmp/ok"}, {"name": "SECRET", "valueFrom": {"secretKeyRef": {}}}]
    argv = ["cat", "$(FILE)", "[$(SECRET)]", "$(MISSING)", "$$(FILE)", "$x", "$(open"]
    assert expand_static(argv, env) == ["cat", "/tmp/ok", "[]", "$(MISSING)", "$(FILE)", "$x", "$(open"]
