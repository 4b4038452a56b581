"""Plugin binaries through the exec protocol, and chains run as libcni runs them:
the reference host-local binary, plus a small recording plugin written by the test."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from cni.config import NetworkConfigList, RuntimeConf
from cni.invoke import ExecPlugin, PluginRegistry
from cni.libcni import CNIConfig
from cni.types import ERR_INCOMPATIBLE_VERSION, ERR_INVALID_ENVIRONMENT, CNIError, IPConfig, Result

# A plugin binary: logs each call (command, CNI_* variables, stdin) to conf["log"]; ADD
# appends conf["address"] to prevResult's ips; "fail" in the conf makes it exit 1.
RECORDER = """#!{python}
import json, os, sys
conf = json.load(sys.stdin)
env = {{k: v for k, v in os.environ.items() if k.startswith("CNI_")}}
with open(conf["log"], "a") as log:
    log.write(json.dumps({{"env": env, "conf": conf}}) + "\\n")
if conf.get("fail"):
    if conf["fail"] == "object":
        print(json.dumps({{"cniVersion": "1.0.0", "code": 11, "msg": "try again later", "details": "busy"}}))
    else:
        print("plain failure text", file=sys.stderr)
    sys.exit(1)
if env["CNI_COMMAND"] == "ADD":
    result = conf.get("prevResult") or {{"cniVersion": conf["cniVersion"], "dns": {{}}}}
    result.setdefault("ips", []).append({{"address": conf["address"]}})
    print(json.dumps(result))
"""


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    path = directory / "recorder"
    path.write_text(RECORDER.format(python=sys.executable))
    path.chmod(0o755)
    return directory


def calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def rt_for(container: str = "sandbox-1") -> RuntimeConf:
    return RuntimeConf.for_pod("default", "web", "uid-1", container, netns="/proc/self/ns/net")


def host_local_conf(tmp_path: Path, version: str = "1.0.0", subnet: str = "127.244.5.0/24") -> dict[str, Any]:
    return {"cniVersion": version, "name": "net", "type": "host-local",
            "ipam": {"type": "host-local", "dataDir": str(tmp_path / "networks"), "ranges": [[{"subnet": subnet}]]}}


async def test_reference_host_local_add_check_del_and_version(tmp_path, host_local_binary):
    plugin = ExecPlugin(host_local_binary, cni_path=[str(host_local_binary.parent)])
    conf = host_local_conf(tmp_path)
    result = await plugin.add(conf, rt_for())
    assert result.ips == [IPConfig("127.244.5.2/24", "127.244.5.1")]
    await plugin.check({**conf, "prevResult": result.to_json()}, rt_for())
    with pytest.raises(CNIError, match="Failed to find address added by container other"):
        await plugin.check({**conf, "prevResult": result.to_json()}, rt_for("other"))
    await plugin.delete(conf, rt_for())
    assert not (tmp_path / "networks" / "net" / "127.244.5.2").exists()
    assert "1.0.0" in (await plugin.version())["supportedVersions"]


async def test_reference_plugin_errors_come_back_with_their_codes(tmp_path, host_local_binary):
    plugin = ExecPlugin(host_local_binary)
    with pytest.raises(CNIError) as info:
        await plugin.add(host_local_conf(tmp_path, version="9.0.0"), rt_for())
    assert info.value.code == ERR_INCOMPATIBLE_VERSION and info.value.msg == "incompatible CNI versions"
    with pytest.raises(CNIError) as info:
        await plugin.add(host_local_conf(tmp_path), RuntimeConf("c", ""))
    assert info.value.code == ERR_INVALID_ENVIRONMENT and "CNI_NETNS" in info.value.msg
    conf = host_local_conf(tmp_path, subnet="127.244.6.0/30")
    await plugin.add(conf, rt_for("a"))
    with pytest.raises(CNIError, match="no IP addresses available in range set: 127.244.6.1-127.244.6.2"):
        await plugin.add(conf, rt_for("b"))


async def test_exec_protocol_passes_environment_and_stdin(tmp_path, plugin_dir):
    log = tmp_path / "log"
    plugin = PluginRegistry([str(plugin_dir)]).get("recorder")
    conf = {"cniVersion": "1.0.0", "name": "net", "type": "recorder", "log": str(log), "address": "127.0.0.9/8"}
    result = await plugin.add(conf, rt_for())
    assert [ip.address for ip in result.ips] == ["127.0.0.9/8"]
    [call] = calls(log)
    assert call["conf"] == conf
    assert call["env"] == {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "sandbox-1", "CNI_NETNS": "/proc/self/ns/net",
                           "CNI_IFNAME": "eth0", "CNI_PATH": str(plugin_dir), "CNI_ARGS": rt_for().cni_args()}


async def test_plugin_failures_without_and_with_an_error_object(tmp_path, plugin_dir):
    plugin = PluginRegistry([str(plugin_dir)]).get("recorder")
    conf = {"cniVersion": "1.0.0", "name": "net", "type": "recorder", "log": str(tmp_path / "log")}
    with pytest.raises(CNIError) as info:
        await plugin.add({**conf, "fail": "object"}, rt_for())
    assert (info.value.code, info.value.msg, info.value.details) == (11, "try again later", "busy")
    with pytest.raises(CNIError, match="netplugin failed: plain failure text"):
        await plugin.delete({**conf, "fail": "text"}, rt_for())


def test_a_missing_plugin_is_named_with_the_path(tmp_path):
    with pytest.raises(CNIError, match=r'failed to find plugin "nope" in path \[.*nowhere'):
        PluginRegistry([str(tmp_path / "nowhere")]).get("nope")


class InProcessRecorder:
    """An in-process plugin in a chain: appends its address like the binary does."""

    def __init__(self, log: list[tuple[str, dict]]) -> None:
        self.log = log

    async def add(self, conf, rt):
        self.log.append(("ADD", conf))
        prev = Result.from_json(conf["prevResult"]) if "prevResult" in conf else Result()
        prev.ips.append(IPConfig(conf["address"]))
        return prev

    async def delete(self, conf, rt):
        self.log.append(("DEL", conf))

    async def check(self, conf, rt):
        self.log.append(("CHECK", conf))

    async def version(self):
        return {"cniVersion": "1.0.0", "supportedVersions": ["1.0.0"]}


def chain(tmp_path: Path, plugin_dir: Path, version: str = "1.0.0", **extra) -> tuple[CNIConfig, NetworkConfigList,
                                                                                       list]:
    log: list = []
    registry = PluginRegistry([str(plugin_dir)])
    registry.register("inproc", InProcessRecorder(log))
    net = NetworkConfigList.from_json({"cniVersion": version, "name": "chain", **extra, "plugins": [
        {"type": "recorder", "log": str(tmp_path / "log"), "address": "127.0.0.9/8"},
        {"type": "inproc", "address": "127.0.0.10/8"}]})
    return CNIConfig(registry, tmp_path / "cache"), net, log


async def test_chain_adds_in_order_with_prev_result_and_deletes_in_reverse(tmp_path, plugin_dir):
    cni, net, log = chain(tmp_path, plugin_dir)
    result = await cni.add_network_list(net, rt_for())
    assert [ip.address for ip in result.ips] == ["127.0.0.9/8", "127.0.0.10/8"]
    assert log[0][1]["prevResult"]["ips"] == [{"address": "127.0.0.9/8"}]
    cache = tmp_path / "cache" / "results" / "chain-sandbox-1-eth0"
    assert json.loads(cache.read_text())["result"] == result.to_json()
    assert cni.cached_result(net, rt_for()) == result

    await cni.check_network_list(net, rt_for())
    assert log[-1][0] == "CHECK" and log[-1][1]["prevResult"] == result.to_json()
    assert calls(tmp_path / "log")[-1]["env"]["CNI_COMMAND"] == "CHECK"

    binary_calls = len(calls(tmp_path / "log"))
    await cni.del_network_list(net, rt_for())
    assert log[-1][0] == "DEL"  # the in-process (second) plugin was deleted first ...
    last = calls(tmp_path / "log")[-1]  # ... then the binary (first), after it
    assert len(calls(tmp_path / "log")) == binary_calls + 1 and last["env"]["CNI_COMMAND"] == "DEL"
    assert last["conf"]["prevResult"] == result.to_json()
    assert not cache.exists()
    await cni.del_network_list(net, rt_for())  # DEL of something gone succeeds


async def test_check_rules_follow_libcni(tmp_path, plugin_dir):
    cni, net, _ = chain(tmp_path, plugin_dir, version="0.3.1")
    with pytest.raises(CNIError, match='configuration version "0.3.1" does not support the CHECK command'):
        await cni.check_network_list(net, rt_for())
    cni, net, log = chain(tmp_path, plugin_dir, disableCheck=True)
    await cni.check_network_list(net, rt_for())
    assert log == []
    cni, net, _ = chain(tmp_path, plugin_dir)
    with pytest.raises(CNIError, match="no cached result"):
        await cni.check_network_list(net, rt_for("never-added"))
