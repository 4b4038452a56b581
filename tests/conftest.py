"""Fixtures shared by the whole suite: real `mkp` clusters, a leak check, tool checks.

Tests that need a cluster get one started exactly as a user would (`mkp up` in a child
process), isolated from the developer's own: `MKP_HOME` is a fresh temporary directory,
`--no-merge` keeps the user's kubeconfig out of it (and `KUBECONFIG` points into the
temporary directory anyway, in case a test merges on purpose), and `--port 0` lets the
OS pick a port so suites can run side by side. Teardown always runs `mkp down --purge`,
and falls back to killing by marker if that fails.

Every process of a test cluster carries `MKP_CLUSTER_HOME=<state dir>` under pytest's
base temporary directory, so at the end of the session one /proc scan finds anything a
test leaked (a pod, a component); those are killed and the session fails.

Fixture API (see `MkpCluster`):
    mkp_cluster          function-scoped cluster
    mkp_cluster_module   module-scoped cluster (share one across a test module)
    start_mkp_cluster(mkp_home, name=None, *up_args)   context manager behind both
    run_mkp(*args, env=..., check=True)                 run the CLI like a user
    require_tool(name)   skip if missing; fail instead when CI=true
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from minikube_py import process

REPO_ROOT = Path(__file__).resolve().parent.parent
KUBECTL = "/usr/bin/kubectl"


def require_tool(name: str) -> str:
    """Path of an external tool the test needs. Missing: skip locally, but fail on CI
    (CI=true), where a silent skip would hide that a test never ran."""
    path = shutil.which(name) or (KUBECTL if name == "kubectl" and os.access(KUBECTL, os.X_OK) else None)
    if path:
        return path
    message = f"{name} is not installed"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: a missing tool is a failure, not a skip)")
    pytest.skip(message)


def mkp_env(mkp_home: Path) -> dict[str, str]:
    """Environment for `mkp` in tests: its own MKP_HOME and user kubeconfig."""
    env = dict(os.environ)
    env["MKP_HOME"] = str(mkp_home)
    env["KUBECONFIG"] = str(mkp_home / "user-kubeconfig")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("MKP_CLUSTER_HOME", None)
    return env


def run_mkp(*args: str, env: dict[str, str], check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `mkp <args>` (this interpreter, this checkout) and capture its output."""
    argv = [sys.executable, "-m", "minikube_py.cli", *args]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"mkp {' '.join(args)} exited {result.returncode}\n"
                             f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


@dataclass
class MkpCluster:
    """A running test cluster.

    name        cluster name (unique per cluster)
    home        the cluster's state directory, $MKP_HOME/<name> (its MKP_CLUSTER_HOME)
    mkp_home    $MKP_HOME
    server      API server URL, e.g. http://127.0.0.1:40123
    kubeconfig  path of the cluster's own kubeconfig
    env         environment that addresses this cluster's MKP_HOME
    """

    name: str
    home: Path
    mkp_home: Path
    server: str
    kubeconfig: Path
    env: dict[str, str]

    def mkp(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`mkp <args> --name <this cluster>`."""
        return run_mkp(*args, "--name", self.name, env=self.env, check=check, timeout=timeout)

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this cluster; text in, text out."""
        argv = [require_tool("kubectl"), "--kubeconfig", str(self.kubeconfig), *args]
        result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                                env=self.env, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {result.returncode}\n"
                                 f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        return result


def _force_cleanup(state_dir: Path) -> list[int]:
    leaked = process.cluster_processes(state_dir)
    process.stop(leaked, grace=2.0)
    return leaked


STARTED_CLUSTERS: set[str] = set()  # names of the clusters this session started


@contextlib.contextmanager
def start_mkp_cluster(mkp_home: Path, name: str | None = None, *up_args: str) -> Iterator[MkpCluster]:
    """`mkp up --port 0 --no-merge` in `mkp_home`; always `mkp down --purge` afterwards."""
    name = name or f"t-{uuid.uuid4().hex[:10]}"
    STARTED_CLUSTERS.add(name)
    mkp_home = mkp_home.resolve()  # MKP_CLUSTER_HOME values are resolved paths
    env = mkp_env(mkp_home)
    state_dir = mkp_home / name
    try:
        if "--nodes" not in up_args:  # API-level tests want no node unless they ask for one
            up_args = ("--nodes", "0", *up_args)
        run_mkp("up", "--name", name, "--port", "0", "--no-merge", *up_args, env=env)
        kubeconfig = state_dir / "kubeconfig"
        server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        yield MkpCluster(name, state_dir, mkp_home, server, kubeconfig, env)
    finally:
        keep = os.environ.get("MKP_TEST_KEEP_LOGS")  # a directory: each cluster's logs are copied there
        if keep and (state_dir / "logs").is_dir():
            shutil.copytree(state_dir / "logs", Path(keep) / name, dirs_exist_ok=True)
        down_error = None
        try:
            run_mkp("down", "--name", name, "--purge", env=env)
        except (AssertionError, subprocess.TimeoutExpired) as e:
            down_error = e
        leaked = _force_cleanup(state_dir)
        if down_error or leaked:
            pytest.fail(f"teardown of cluster {name}: mkp down --purge failed ({down_error}); "
                        f"force-killed {leaked}")


@pytest.fixture
def mkp_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MkpCluster]:
    with start_mkp_cluster(tmp_path_factory.mktemp("mkp")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def mkp_cluster_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MkpCluster]:
    with start_mkp_cluster(tmp_path_factory.mktemp("mkp")) as cluster:
        yield cluster


@pytest.fixture(scope="session", autouse=True)
def _no_mkp_process_left_behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the last test: no process may still carry an MKP_CLUSTER_HOME from this run,
    and no bridge-network host object may be there that was not there before it."""
    check_network = os.geteuid() == 0 and shutil.which("ip") is not None
    if check_network:
        from minikube_py import network
        before = set(network.leftovers())
    yield
    prefix = str(tmp_path_factory.getbasetemp().resolve()) + os.sep
    leaked = process.marked_processes(prefix, prefix=True)
    # Pod processes carry only their spec's environment: find them by their shim's
    # state path (process runtime) or their cgroup (namespaces runtime).
    leaked += [pid for pid in _pod_processes(prefix) if pid not in leaked]
    if leaked:
        details = {pid: " ".join(process.cmdline(pid)) for pid in leaked}
        process.stop(leaked, grace=2.0)
        pytest.fail(f"processes of test clusters were left running (now killed): {details}")
    if check_network and STARTED_CLUSTERS:  # host objects are global: only a session with clusters can own some
        left = [item for item in network.leftovers() if item not in before]
        if left:
            pytest.fail(f"bridge-mode clusters left host network objects behind: {left}")


def _pod_processes(prefix: str) -> list[int]:
    """Processes whose command line names a path under `prefix` (shims and what they
    run from there) or that sit in the pod cgroups of a test cluster's node."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cgroup = (entry / "cgroup").read_text()
        except OSError:
            continue
        # This session's clusters' nodes are named after them (t-<hex>, t-<hex>-m02):
        # other pytest sessions on the machine keep their pods.
        if prefix in cmdline or any(f"/mkpods/{name}" in cgroup for name in STARTED_CLUSTERS):
            found.append(int(entry.name))
    return found


def wait_until(check: Callable[[], Any], timeout: float = 90.0, what: str = "condition",
               interval: float = 0.25) -> Any:
    """Poll `check()` until it returns something truthy (returned), or fail after
    `timeout` seconds: how e2e tests wait for a cluster to converge."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
