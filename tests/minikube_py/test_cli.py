"""`mkp up` / `down` / `status` / `version` / `apiserver`, driven as a user would: the CLI
in child processes, the real kubectl, and /proc to prove nothing is left running."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from minikube_py import process
from tests.conftest import MkpCluster, mkp_env, require_tool, run_mkp


@dataclass
class Mkp:
    """Runs `mkp` in a private MKP_HOME; the fixture purges every cluster it touched."""

    home: Path
    env: dict[str, str]
    names: set[str] = field(default_factory=lambda: {"mkp"})

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if "--name" in args:
            self.names.add(args[args.index("--name") + 1])
        return run_mkp(*args, env=self.env, check=check)

    def state(self, name: str = "mkp") -> dict:
        return json.loads((self.home / name / "cluster.json").read_text())

    def user_kubeconfig(self) -> dict:
        return yaml.safe_load(Path(self.env["KUBECONFIG"]).read_text())


@pytest.fixture
def mkp(tmp_path: Path) -> Iterator[Mkp]:
    home = tmp_path.resolve()
    runner = Mkp(home, mkp_env(home))
    yield runner
    for name in runner.names:
        run_mkp("down", "--purge", "--name", name, env=runner.env, check=False)
        assert process.cluster_processes(home / name) == []


def readyz(server: str) -> int:
    with urllib.request.urlopen(server + "/readyz", timeout=2) as r:
        return r.status


def test_up_status_kubectl_version_then_down_leaves_no_process(mkp: Mkp) -> None:
    kubectl = require_tool("kubectl")
    began = time.monotonic()
    mkp("up", "--port", "0", "--no-merge")
    elapsed = time.monotonic() - began
    print(f"\n`mkp up` to ready, including both interpreters' start-up: {elapsed:.2f}s")

    status = mkp("status")
    assert "apiserver" in status.stdout and "running" in status.stdout and "ready" in status.stdout
    kubeconfig = mkp.home / "mkp" / "kubeconfig"
    out = subprocess.run([kubectl, "--kubeconfig", str(kubeconfig), "version", "-o", "json"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    assert json.loads(out)["serverVersion"]["minor"] == "32"

    pids = process.cluster_processes(mkp.home / "mkp")
    assert pids, "components must carry MKP_CLUSTER_HOME"
    mkp("down")
    assert all(not process.is_alive(p) for p in pids)
    assert process.cluster_processes(mkp.home / "mkp") == []
    assert mkp("status", check=False).returncode == 1


def test_up_on_running_cluster_says_so_and_keeps_it(mkp: Mkp) -> None:
    mkp("up", "--no-merge")
    before = mkp.state()["port"], (mkp.home / "mkp/pids/apiserver.pid").read_text()
    again = mkp("up", "--no-merge")
    assert "already running" in again.stdout
    assert (mkp.state()["port"], (mkp.home / "mkp/pids/apiserver.pid").read_text()) == before


def test_up_after_down_resumes_with_same_data_and_port(mkp: Mkp) -> None:
    mkp("up", "--no-merge")
    first = mkp.state()
    marker = mkp.home / "mkp" / "data" / "marker"
    marker.write_text("kept")
    mkp("down")
    mkp("up", "--no-merge")
    second = mkp.state()
    assert marker.read_text() == "kept"
    assert second["port"] == first["port"] and second["created"] == first["created"]
    assert readyz(f"http://127.0.0.1:{second['port']}") == 200


def test_up_after_down_picks_new_port_when_old_one_is_taken_and_updates_kubeconfigs(mkp: Mkp) -> None:
    mkp("up")
    old = mkp.state()["port"]
    mkp("down")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", old))
        squatter.listen()
        out = mkp("up").stdout
    new = mkp.state()["port"]
    assert new != old and f"port {old} is taken" in out
    own = yaml.safe_load((mkp.home / "mkp" / "kubeconfig").read_text())
    assert own["clusters"][0]["cluster"]["server"] == f"http://127.0.0.1:{new}"
    user = mkp.user_kubeconfig()
    assert [c["cluster"]["server"] for c in user["clusters"]] == [f"http://127.0.0.1:{new}"]


def test_up_merges_context_into_kubeconfig_keeping_other_entries(mkp: Mkp) -> None:
    user = Path(mkp.env["KUBECONFIG"])
    user.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "other",
        "clusters": [{"name": "other", "cluster": {"server": "https://10.0.0.1"}}],
        "contexts": [{"name": "other", "context": {"cluster": "other", "user": "other"}}],
        "users": [{"name": "other", "user": {"token": "secret"}}],
    }))
    user.chmod(0o640)
    mkp("up")
    merged = mkp.user_kubeconfig()
    assert merged["current-context"] == "mkp"
    assert {c["name"] for c in merged["contexts"]} == {"other", "mkp"}
    assert merged["users"][0] == {"name": "other", "user": {"token": "secret"}}
    assert user.stat().st_mode & 0o777 == 0o640
    kubectl = require_tool("kubectl")
    out = subprocess.run([kubectl, "--context", "mkp", "version", "-o", "json"], env=mkp.env,
                         capture_output=True, text=True, check=True, timeout=30).stdout
    assert json.loads(out)["serverVersion"]["minor"] == "32"


def test_unparsable_user_kubeconfig_fails_up_but_leaves_it_untouched_and_cluster_running(mkp: Mkp) -> None:
    user = Path(mkp.env["KUBECONFIG"])
    user.write_text("clusters: [oops\n")
    result = mkp("up", check=False)
    assert result.returncode == 1 and "merging its context failed" in result.stderr
    assert user.read_text() == "clusters: [oops\n"
    assert mkp("status").returncode == 0


def test_down_purge_removes_state_and_kubeconfig_entries(mkp: Mkp) -> None:
    user = Path(mkp.env["KUBECONFIG"])
    user.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "other", "cluster": {"server": "https://10.0.0.1"}}],
        "contexts": [{"name": "other", "context": {"cluster": "other", "user": "other"}}],
        "users": [{"name": "other", "user": {}}],
    }))
    mkp("up")
    out = mkp("down", "--purge").stdout
    assert "deleted" in out
    assert not (mkp.home / "mkp").exists()
    left = mkp.user_kubeconfig()
    assert [c["name"] for c in left["contexts"]] == ["other"]
    assert [c["name"] for c in left["clusters"]] == ["other"]
    assert [u["name"] for u in left["users"]] == ["other"]
    assert left["current-context"] == ""  # it pointed at mkp: cleared, not re-aimed


def test_stale_pid_files_are_replaced_and_a_reused_pid_is_spared(mkp: Mkp) -> None:
    mkp("up", "--no-merge")
    mkp("down")
    stranger = subprocess.Popen(["sleep", "60"])  # a live process holding the old pid slot
    dead = subprocess.Popen(["true"])
    dead.wait()
    pids = mkp.home / "mkp" / "pids"
    try:
        (pids / "apiserver.pid").write_text(f"{stranger.pid}\n")
        (pids / "all-in-one.pid").write_text(f"{dead.pid}\n")
        out = mkp("up", "--no-merge").stdout
        assert "removed stale pid file" in out and "already running" not in out
        assert int((pids / "apiserver.pid").read_text()) != stranger.pid
        assert not (pids / "all-in-one.pid").exists()
        mkp("down")
        assert stranger.poll() is None, "mkp down must not kill a process that merely reused a pid"
    finally:
        stranger.kill()
        stranger.wait()


def test_down_kills_every_process_marked_with_the_cluster_home(mkp: Mkp) -> None:
    mkp("up", "--no-merge")
    env = {**os.environ, "MKP_CLUSTER_HOME": str(mkp.home / "mkp")}
    pod = subprocess.Popen(["sleep", "300"], env=env, start_new_session=True)  # like a pod
    try:
        mkp("down")
        assert not process.is_alive(pod.pid)
    finally:
        pod.kill()
        pod.wait()


def test_single_process_mode_serves_the_api_from_one_process(mkp: Mkp) -> None:
    out = mkp("up", "--single-process", "--no-merge").stdout
    assert "all-in-one" in out
    state = mkp.state()
    assert state["mode"] == "single-process" and state["components"] == ["all-in-one"]
    assert readyz(f"http://127.0.0.1:{state['port']}") == 200
    assert len(process.cluster_processes(mkp.home / "mkp")) == 1
    assert mkp("status").returncode == 0


def test_up_fails_with_the_log_tail_when_the_apiserver_cannot_bind(mkp: Mkp) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = mkp("up", "--port", str(port), "--no-merge", check=False)
    assert result.returncode == 1
    assert "exited with code" in result.stderr and "address already in use" in result.stderr
    assert process.cluster_processes(mkp.home / "mkp") == []


def test_status_of_a_missing_cluster_exits_nonzero(mkp: Mkp) -> None:
    result = mkp("status", "--name", "nothing-here", check=False)
    assert result.returncode == 1 and "not found" in result.stdout


def test_invalid_cluster_name_is_rejected(mkp: Mkp) -> None:
    result = run_mkp("up", "--name", "Not_A_Label", env=mkp.env, check=False)
    assert result.returncode == 2 and "invalid cluster name" in result.stderr


def test_version_prints_mkp_and_kubernetes_versions(mkp: Mkp) -> None:
    out = mkp("version").stdout
    assert "mkp version:" in out and "Kubernetes version: v1.32" in out


def test_apiserver_command_runs_standalone_and_reports_its_port(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    env = mkp_env(tmp_path)
    argv = [sys.executable, "-m", "minikube_py.cli", "apiserver", "--data-dir", str(tmp_path / "data"),
            "--port", "0", "--port-file", str(port_file)]
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while not port_file.exists():
            assert server.poll() is None and time.monotonic() < deadline, server.stderr and server.stderr.read()
            time.sleep(0.02)
        assert readyz(f"http://127.0.0.1:{port_file.read_text()}") == 200
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_mkp_cluster_fixture_gives_a_reachable_cluster(mkp_cluster: MkpCluster) -> None:
    assert readyz(mkp_cluster.server) == 200
    out = mkp_cluster.kubectl("version", "-o", "json").stdout
    assert json.loads(out)["serverVersion"]["gitVersion"].startswith("v1.32")
    assert mkp_cluster.mkp("status").returncode == 0
    assert (mkp_cluster.home / "cluster.json").exists()
