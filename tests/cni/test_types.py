"""The JSON shapes of the CNI spec 1.0: results, errors, configuration lists, the
configuration a plugin reads on stdin, and CNI_ARGS."""

from __future__ import annotations

import json

import pytest

from cni.config import NetworkConfigList, RuntimeConf, plugin_stdin
from cni.types import (
    DNS,
    ERR_DECODING_FAILURE,
    ERR_INCOMPATIBLE_VERSION,
    ERR_INVALID_NETWORK_CONFIG,
    CNIError,
    Interface,
    IPConfig,
    Result,
    Route,
    version_result,
)

SPEC_RESULT = {
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "cni0", "mac": "00:11:22:33:44:55"},
                   {"name": "eth0", "mac": "99:88:77:66:55:44", "sandbox": "/var/run/netns/cni-1"}],
    "ips": [{"address": "10.244.1.5/24", "gateway": "10.244.1.1", "interface": 1}],
    "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.96.0.0/12", "gw": "10.244.1.1"}],
    "dns": {"nameservers": ["10.96.0.10"], "domain": "cluster.local", "search": ["default.svc.cluster.local"]},
}


def test_result_round_trips_the_spec_example_shape():
    result = Result.from_json(SPEC_RESULT)
    assert result.interfaces[1] == Interface("eth0", "99:88:77:66:55:44", "/var/run/netns/cni-1")
    assert result.ips[0].ip == "10.244.1.5"
    assert result.routes[1] == Route("10.96.0.0/12", "10.244.1.1")
    assert result.to_json() == SPEC_RESULT


def test_result_omits_empty_fields_but_always_has_dns():
    out = Result(ips=[IPConfig("127.244.0.2/24")]).to_json()
    assert out == {"cniVersion": "1.0.0", "ips": [{"address": "127.244.0.2/24"}], "dns": {}}
    assert json.loads(json.dumps(out)) == out


def test_result_of_0_3_1_with_ip_version_field_is_accepted():
    old = {"cniVersion": "0.3.1", "ips": [{"version": "4", "address": "10.1.0.2/16", "gateway": "10.1.0.1"}]}
    result = Result.from_json(old)
    assert result.ips == [IPConfig("10.1.0.2/16", "10.1.0.1")]
    assert result.converted("1.0.0").to_json()["cniVersion"] == "1.0.0"


@pytest.mark.parametrize("data, code", [
    pytest.param({"cniVersion": "0.2.0", "ip4": {"ip": "10.0.0.2/8"}}, ERR_INCOMPATIBLE_VERSION, id="old-version"),
    pytest.param({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2"}]}, ERR_DECODING_FAILURE, id="no-prefix"),
    pytest.param({"cniVersion": "1.0.0", "ips": [{"address": "nonsense/8"}]}, ERR_DECODING_FAILURE, id="bad-ip"),
    pytest.param({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/8", "interface": 0}]},
                 ERR_DECODING_FAILURE, id="interface-index-out-of-range"),
    pytest.param({"cniVersion": "1.0.0", "ips": [{"gateway": "10.0.0.1"}]}, ERR_DECODING_FAILURE, id="no-address"),
    pytest.param(["not", "an", "object"], ERR_DECODING_FAILURE, id="not-object"),
])
def test_invalid_results_are_rejected_with_spec_codes(data, code):
    with pytest.raises(CNIError) as info:
        Result.from_json(data)
    assert info.value.code == code


def test_error_object_shape():
    err = CNIError(ERR_INCOMPATIBLE_VERSION, "incompatible CNI versions", "config is \"9.9.9\"")
    assert err.to_json() == {"cniVersion": "1.0.0", "code": 1, "msg": "incompatible CNI versions",
                             "details": "config is \"9.9.9\""}
    assert CNIError.from_json(err.to_json()).code == 1
    assert "details" not in CNIError(11, "try again later").to_json()


def test_version_result_lists_supported_versions():
    assert version_result() == {"cniVersion": "1.0.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]}


def test_dns_serialises_only_what_is_set():
    assert DNS(nameservers=["10.96.0.10"]).to_json() == {"nameservers": ["10.96.0.10"]}


def test_conflist_parses_and_keeps_plugin_order():
    net = NetworkConfigList.from_json(json.dumps({
        "cniVersion": "1.0.0", "name": "k8s-pod-network", "disableCheck": True,
        "plugins": [{"type": "bridge", "ipam": {"type": "host-local"}}, {"type": "portmap"}]}))
    assert [p["type"] for p in net.plugins] == ["bridge", "portmap"]
    assert net.disable_check is True
    assert net.to_json()["plugins"][0]["ipam"] == {"type": "host-local"}


def test_single_conf_is_promoted_to_a_list():
    net = NetworkConfigList.from_json({"cniVersion": "0.4.0", "name": "lo", "type": "loopback"})
    assert net.plugins == [{"type": "loopback"}] and net.cni_version == "0.4.0"


@pytest.mark.parametrize("data, code, text", [
    pytest.param({"cniVersion": "1.0.0", "name": "-bad", "plugins": [{"type": "x"}]},
                 ERR_INVALID_NETWORK_CONFIG, "invalid network name", id="bad-name"),
    pytest.param({"cniVersion": "9.0.0", "name": "n", "plugins": [{"type": "x"}]},
                 ERR_INCOMPATIBLE_VERSION, "incompatible CNI versions", id="bad-version"),
    pytest.param({"cniVersion": "1.0.0", "name": "n", "plugins": []},
                 ERR_INVALID_NETWORK_CONFIG, "no plugins in list n", id="no-plugins"),
    pytest.param({"cniVersion": "1.0.0", "name": "n", "plugins": [{"ipam": {}}]},
                 ERR_INVALID_NETWORK_CONFIG, "plugins[0] of network n has no type", id="no-type"),
    pytest.param("{not json", ERR_DECODING_FAILURE, "error parsing configuration", id="not-json"),
])
def test_invalid_conflists_are_rejected(data, code, text):
    with pytest.raises(CNIError) as info:
        NetworkConfigList.from_json(data)
    assert info.value.code == code and text in str(info.value)


def test_plugin_stdin_injects_name_version_prev_result_and_declared_capabilities_only():
    net = NetworkConfigList.from_json({"cniVersion": "1.0.0", "name": "n", "plugins": [
        {"type": "bridge"}, {"type": "portmap", "capabilities": {"portMappings": True, "bandwidth": False}}]})
    rt = RuntimeConf("c1", "/var/run/netns/x", capability_args={
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}], "bandwidth": {"x": 1}})
    first = plugin_stdin(net, 0, rt, None)
    assert first == {"type": "bridge", "name": "n", "cniVersion": "1.0.0"}
    prev = Result(ips=[IPConfig("10.244.0.2/24", "10.244.0.1")])
    second = plugin_stdin(net, 1, rt, prev)
    assert second["prevResult"] == prev.to_json()
    assert second["runtimeConfig"] == {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}
    assert "runtimeConfig" not in first and net.plugins[1].get("runtimeConfig") is None


def test_runtime_conf_for_a_pod_carries_the_k8s_cni_args():
    rt = RuntimeConf.for_pod("shop", "web-0", "uid-1", "sandbox-9", netns="/proc/self/ns/net")
    assert rt.container_id == "sandbox-9" and rt.ifname == "eth0"
    assert rt.cni_args() == ("IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;"
                             "K8S_POD_INFRA_CONTAINER_ID=sandbox-9;K8S_POD_UID=uid-1")
    assert rt.arg("K8S_POD_NAME") == "web-0"
    with pytest.raises(CNIError):
        RuntimeConf("c", "/x", args=[("A", "b;c")]).cni_args()
