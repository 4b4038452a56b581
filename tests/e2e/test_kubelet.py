"""The process kubelet end to end, with the real kubectl, on `mkp up --nodes 1`, once per
container runtime (`process`, and `namespaces` as root): the issue's "Done when" list.

Each module-scoped cluster runs one real node. The tests create their pods up front
where they can, so the waits overlap.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_tool, start_mkp_cluster
from tests.conftest import wait_until as _wait

pytestmark = pytest.mark.e2e

RUNTIMES = ["process", "namespaces"]

SEED_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: my-app
  labels: {app: my-service, version: v2}
spec:
  containers:
    - name: app
      image: ghcr.io/stefanprodan/podinfo:6.7.1
      command: ["./podinfo", "--port=8080"]
      ports:
        - containerPort: 8080
      resources:
        requests: {cpu: "250m", memory: "256Mi"}
        limits: {cpu: "500m", memory: "512Mi"}
      livenessProbe:
        httpGet: {path: /healthz, port: 8080}
        initialDelaySeconds: 1
        periodSeconds: 2
      readinessProbe:
        httpGet: {path: /readyz, port: 8080}
        initialDelaySeconds: 1
        periodSeconds: 1
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module", params=RUNTIMES)
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    runtime = request.param
    if runtime == "namespaces" and os.geteuid() != 0:
        pytest.skip("the namespaces runtime needs root")
    with start_mkp_cluster(tmp_path_factory.mktemp("mkp"), None, "--nodes", "1", "--runtime", runtime) as c:
        c.runtime = runtime  # type: ignore[attr-defined]
        _wait(lambda: "Ready" in c.kubectl("get", "nodes", "--no-headers", check=False).stdout, 60,
              "the node to be Ready")
        c.kubectl("apply", "-f", "-", input=SEED_POD)
        yield c


def _pod(cluster: Any, name: str) -> dict[str, Any]:
    result = cluster.kubectl("get", "pod", name, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else {}


def _status(cluster: Any, name: str, container: str | None = None) -> dict[str, Any]:
    pod = _pod(cluster, name)
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for s in statuses:
        if container is None or s["name"] == container:
            return s
    return {}


def _ready(cluster: Any, name: str) -> bool:
    pod = _pod(cluster, name)
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or [])


def _events(cluster: Any, name: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json").stdout
    return json.loads(out)["items"]


def test_node_registers_with_host_capacity(cluster: Any) -> None:
    node = json.loads(cluster.kubectl("get", "node", cluster.name, "-o", "json").stdout)
    capacity = node["status"]["capacity"]
    assert capacity["cpu"] == str(os.cpu_count()) and capacity["pods"] == "110"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith(f"{cluster.runtime}://")
    assert "mkp.dev/fake-node" not in node["metadata"]["labels"]
    types = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert types == {"MemoryPressure": "False", "DiskPressure": "False", "PIDPressure": "False", "Ready": "True"}
    port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    address = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    with urllib.request.urlopen(f"http://{address}:{port}/healthz", timeout=5) as resp:
        assert resp.read() == b"ok"


def test_seed_pod_runs_the_demo_app_and_turns_ready(cluster: Any) -> None:
    _wait(lambda: _ready(cluster, "my-app"), 60, "my-app Ready")
    pod = _pod(cluster, "my-app")
    ip = pod["status"]["podIP"]
    # As root the namespaces runtime gets the bridge network by default (10.244.x), the
    # process runtime always the loopback one (127.244.x).
    assert ip.startswith("10.244." if cluster.runtime == "namespaces" else "127.244."), ip
    assert pod["status"]["phase"] == "Running"
    with urllib.request.urlopen(f"http://{ip}:8080/version", timeout=5) as resp:
        assert json.loads(resp.read())["version"] == "6.7.1"
    reasons = [e["reason"] for e in _events(cluster, "my-app")]
    for reason in ("Scheduled", "Pulled", "Created", "Started"):
        assert reason in reasons
    table = cluster.kubectl("get", "pod", "my-app").stdout
    assert re.search(r"my-app\s+1/1\s+Running\s+0", table), table
    # The node reports what it pulled (status.images), within a heartbeat or two.
    _wait(lambda: "ghcr.io/stefanprodan/podinfo:6.7.1" in cluster.kubectl(
        "get", "node", cluster.name, "-o", "jsonpath={.status.images[*].names}").stdout, 40, "the node's images")


def test_exec_prints_the_pod_ip_and_passes_exit_codes(cluster: Any) -> None:
    _wait(lambda: _ready(cluster, "my-app"), 60, "my-app Ready")
    ip = _pod(cluster, "my-app")["status"]["podIP"]
    out = cluster.kubectl("exec", "my-app", "--", "sh", "-c", "echo $POD_IP").stdout.strip()
    assert out == ip
    failed = cluster.kubectl("exec", "my-app", "--", "sh", "-c", "exit 3", check=False)
    assert failed.returncode == 3
    echoed = cluster.kubectl("exec", "-i", "my-app", "--", "cat", input="hello through stdin\n").stdout
    assert echoed == "hello through stdin\n"


def test_logs_and_follow(cluster: Any) -> None:
    cluster.kubectl("run", "talker", "--image=busybox:1.36", "--restart=Never", "--",
                    "sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done")
    _wait(lambda: _status(cluster, "talker").get("state", {}).get("running"), 60, "talker running")
    _wait(lambda: "line 3" in cluster.kubectl("logs", "talker", check=False).stdout, 30, "logs")
    stamped = cluster.kubectl("logs", "talker", "--timestamps", "--tail=1").stdout
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z line \d+\n$", stamped), stamped
    argv = [require_tool("kubectl"), "--kubeconfig", str(cluster.kubeconfig), "logs", "-f", "talker", "--tail=1"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as follow:
        try:
            assert follow.stdout is not None
            first = follow.stdout.readline()
            second = follow.stdout.readline()
            n1, n2 = int(first.split()[1]), int(second.split()[1])
            assert n2 == n1 + 1
        finally:
            follow.kill()
    cluster.kubectl("delete", "pod", "talker", "--grace-period=1", "--wait=false")


def test_port_forward_serves_the_app(cluster: Any) -> None:
    _wait(lambda: _ready(cluster, "my-app"), 60, "my-app Ready")
    local = _free_port()
    argv = [require_tool("kubectl"), "--kubeconfig", str(cluster.kubeconfig), "port-forward", "pod/my-app",
            f"{local}:8080"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as pf:
        try:
            assert pf.stdout is not None
            assert "Forwarding from" in pf.stdout.readline()
            with urllib.request.urlopen(f"http://127.0.0.1:{local}/healthz", timeout=10) as resp:
                assert resp.status == 200
        finally:
            pf.terminate()


def test_cp_copies_in_and_out(cluster: Any, tmp_path: Path) -> None:
    _wait(lambda: _ready(cluster, "my-app"), 60, "my-app Ready")
    src = tmp_path / "in.txt"
    src.write_text("copied into the pod\n")
    target = f"/tmp/mkp-cp-{os.getpid()}-{cluster.runtime}.txt"  # the host's /tmp under `process`
    cluster.kubectl("cp", str(src), f"my-app:{target}")
    assert cluster.kubectl("exec", "my-app", "--", "cat", target).stdout == "copied into the pod\n"
    back = tmp_path / "out.txt"
    cluster.kubectl("cp", f"my-app:{target}", str(back))
    cluster.kubectl("exec", "my-app", "--", "rm", "-f", target)
    assert back.read_text() == "copied into the pod\n"


def test_killed_process_restarts_and_bumps_restart_count(cluster: Any) -> None:
    cluster.kubectl("run", "victim", "--image=busybox:1.36", "--", "sleep", "3600")
    _wait(lambda: _status(cluster, "victim").get("state", {}).get("running"), 60, "victim running")
    pid = _container_pid(cluster, "victim")
    os.kill(pid, signal.SIGKILL)
    status = _wait(lambda: (s := _status(cluster, "victim")).get("restartCount") == 1
                   and s.get("state", {}).get("running") and s, 60, "a restart")
    last = status["lastState"]["terminated"]
    assert last["exitCode"] == 137 and last["reason"] == "Error"
    cluster.kubectl("delete", "pod", "victim", "--grace-period=1", "--wait=false")


def _container_pid(cluster: Any, pod: str) -> int:
    """The host pid of a pod's (first) container, from the shim's pid file."""
    uid = _pod(cluster, pod)["metadata"]["uid"]
    status = _status(cluster, pod)
    attempt = status.get("restartCount", 0)
    root = cluster.home / "nodes" / cluster.name / "run" / "pods" / uid / "containers" / status["name"]
    files = sorted(root.glob("*/pid"), key=lambda p: int(p.parent.name))
    assert files, f"no pid file under {root} (attempt {attempt})"
    return int(files[-1].read_text().strip())


def test_failing_liveness_probe_restarts_with_unhealthy_events(cluster: Any) -> None:
    cluster.kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: Pod
metadata: {name: sick}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: app
      image: busybox:1.36
      command: ["sh", "-c", "touch /tmp/healthy; sleep 3; rm /tmp/healthy; sleep 3600"]
      livenessProbe:
        exec: {command: ["cat", "/tmp/healthy"]}
        periodSeconds: 1
        failureThreshold: 2
""")
    _wait(lambda: _status(cluster, "sick").get("restartCount", 0) >= 1, 60, "a liveness restart")
    events = _events(cluster, "sick")
    unhealthy = [e for e in events if e["reason"] == "Unhealthy"]
    assert unhealthy and unhealthy[0]["message"].startswith("Liveness probe failed:")
    assert any(e["reason"] == "Killing" and "failed liveness probe, will be restarted" in e["message"] for e in events)
    cluster.kubectl("delete", "pod", "sick", "--grace-period=1", "--wait=false")


def test_crashing_container_goes_to_crash_loop_back_off(cluster: Any) -> None:
    cluster.kubectl("run", "crasher", "--image=busybox:1.36", "--", "sh", "-c", "echo bye; exit 2")
    status = _wait(lambda: (s := _status(cluster, "crasher")).get("state", {}).get("waiting", {}).get("reason")
                   == "CrashLoopBackOff" and s, 60, "CrashLoopBackOff")
    assert status["lastState"]["terminated"]["exitCode"] == 2
    assert "back-off 10s restarting failed container=crasher" in status["state"]["waiting"]["message"]
    later = _wait(lambda: (s := _status(cluster, "crasher")).get("restartCount", 0) >= 2
                  and s.get("state", {}).get("waiting", {}).get("reason") == "CrashLoopBackOff" and s, 60,
                  "the second back-off")
    assert "back-off 20s" in later["state"]["waiting"]["message"]
    assert any(e["reason"] == "BackOff" for e in _events(cluster, "crasher"))
    assert "bye" in cluster.kubectl("logs", "crasher", "--previous").stdout
    cluster.kubectl("delete", "pod", "crasher", "--grace-period=0", "--force", "--wait=false")


def test_memory_hog_over_its_limit_is_oom_killed(cluster: Any) -> None:
    if cluster.runtime != "namespaces":
        pytest.skip("only the namespaces runtime enforces memory limits")
    cluster.kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
    - name: hog
      image: python:3
      command: ["python3", "-c", "x = bytearray(200 * 1024 * 1024); import time; time.sleep(60)"]
      resources:
        limits: {memory: "50Mi"}
""")
    status = _wait(lambda: (s := _status(cluster, "hog")).get("state", {}).get("terminated") and s, 60, "the OOM kill")
    terminated = status["state"]["terminated"]
    assert terminated["reason"] == "OOMKilled" and terminated["exitCode"] == 137
    cluster.kubectl("delete", "pod", "hog", "--wait=false")


def test_configmap_and_secret_as_env_and_files_that_update(cluster: Any) -> None:
    k = cluster.kubectl
    k("create", "configmap", "app-config", "--from-literal=greeting=hello")
    k("create", "secret", "generic", "db-credentials", "--from-literal=password=s3cret")
    k("apply", "-f", "-", input="""
apiVersion: v1
kind: Pod
metadata: {name: configured}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: app
      image: busybox:1.36
      command: ["sleep", "3600"]
      env:
        - name: GREETING
          valueFrom: {configMapKeyRef: {name: app-config, key: greeting}}
        - name: DB_PASSWORD
          valueFrom: {secretKeyRef: {name: db-credentials, key: password}}
      volumeMounts:
        - {name: config, mountPath: /etc/config}
        - {name: creds, mountPath: /etc/creds, readOnly: true}
  volumes:
    - name: config
      configMap: {name: app-config}
    - name: creds
      secret: {secretName: db-credentials}
""")
    _wait(lambda: _status(cluster, "configured").get("state", {}).get("running"), 60, "configured running")
    env = k("exec", "configured", "--", "sh", "-c", "echo $GREETING $DB_PASSWORD").stdout.strip()
    assert env == "hello s3cret"
    config_dir, creds_dir = _volume_dirs(cluster, "configured")
    files = k("exec", "configured", "--", "sh", "-c",
              f"cat {config_dir}/greeting; echo; cat {creds_dir}/password").stdout.split()
    assert files == ["hello", "s3cret"]
    editor = "sed -i -e s/greeting:\\ hello/greeting:\\ bonjour/"
    env_edit = dict(os.environ, KUBE_EDITOR=editor)
    subprocess.run([require_tool("kubectl"), "--kubeconfig", str(cluster.kubeconfig), "edit", "configmap",
                    "app-config"], env=env_edit, check=True, capture_output=True, timeout=30)
    assert "bonjour" in k("get", "configmap", "app-config", "-o", "jsonpath={.data.greeting}").stdout
    _wait(lambda: k("exec", "configured", "--", "cat", f"{config_dir}/greeting", check=False).stdout == "bonjour", 60,
          "the configMap file to update")
    k("delete", "pod", "configured", "--wait=false")


def _volume_dirs(cluster: Any, pod: str) -> tuple[str, str]:
    """Where the container sees its configMap and secret volumes: at their mountPaths
    under `namespaces`; under `process`, which cannot remap paths, at the volume
    directories on the host."""
    if cluster.runtime == "namespaces":
        return "/etc/config", "/etc/creds"
    volumes = cluster.home / "nodes" / cluster.name / "pods" / _pod(cluster, pod)["metadata"]["uid"] / "volumes"
    return str(volumes / "kubernetes.io~configmap" / "config"), str(volumes / "kubernetes.io~secret" / "creds")


def test_missing_configmap_is_create_container_config_error(cluster: Any) -> None:
    cluster.kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: Pod
metadata: {name: unconfigured}
spec:
  containers:
    - name: app
      image: busybox:1.36
      command: ["sleep", "3600"]
      env:
        - name: X
          valueFrom: {configMapKeyRef: {name: nowhere, key: x}}
""")
    waiting = _wait(lambda: _status(cluster, "unconfigured").get("state", {}).get("waiting", {}).get("reason")
                    == "CreateContainerConfigError" and _status(cluster, "unconfigured")["state"]["waiting"], 60,
                    "CreateContainerConfigError")
    assert waiting["message"] == 'configmap "nowhere" not found'
    cluster.kubectl("delete", "pod", "unconfigured", "--wait=false")


def test_unknown_image_is_err_image_pull_then_back_off(cluster: Any) -> None:
    cluster.kubectl("run", "nosuch", "--image=walmart/my-service:2.1.0")
    _wait(lambda: _status(cluster, "nosuch").get("state", {}).get("waiting", {}).get("reason")
          in ("ErrImagePull", "ImagePullBackOff"), 60, "ErrImagePull")
    message = _status(cluster, "nosuch")["state"]["waiting"].get("message", "")
    assert "busybox" in message  # names the images the node can run
    _wait(lambda: _status(cluster, "nosuch").get("state", {}).get("waiting", {}).get("reason") == "ImagePullBackOff",
          60, "ImagePullBackOff")
    cluster.kubectl("delete", "pod", "nosuch", "--wait=false")


def test_job_of_the_tools_image_completes(cluster: Any) -> None:
    cluster.kubectl("create", "job", "tools", "--image=busybox:1.36", "--", "sh", "-c", "echo done; exit 0")
    cluster.kubectl("wait", "--for=condition=complete", "job/tools", "--timeout=60s", timeout=70)
    assert "done" in cluster.kubectl("logs", "job/tools").stdout


def test_delete_sends_sigterm_then_sigkill_after_the_grace_period(cluster: Any) -> None:
    cluster.kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 2
  containers:
    - name: app
      image: busybox:1.36
      command: ["sh", "-c", "trap 'echo got TERM' TERM; while true; do sleep 0.1; done"]
""")
    _wait(lambda: _status(cluster, "stubborn").get("state", {}).get("running"), 60, "stubborn running")
    pid = _container_pid(cluster, "stubborn")
    started = time.monotonic()
    cluster.kubectl("delete", "pod", "stubborn", "--wait=true", "--timeout=30s", timeout=40)
    took = time.monotonic() - started
    assert 1.5 <= took < 15, took
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_restarting_the_kubelet_keeps_pods_running(cluster: Any) -> None:
    _wait(lambda: _ready(cluster, "my-app"), 60, "my-app Ready")
    before = _status(cluster, "my-app")
    pid = _container_pid(cluster, "my-app")
    component = f"kubelet-{cluster.name}"
    pid_file = cluster.home / "pids" / f"{component}.pid"
    kubelet_pid = int(pid_file.read_text().strip())
    os.kill(kubelet_pid, signal.SIGTERM)
    _wait(lambda: not Path(f"/proc/{kubelet_pid}").exists(), 20, "the kubelet to stop")
    assert Path(f"/proc/{pid}").exists()
    cluster.mkp("up", "--name", cluster.name, "--no-merge")
    _wait(lambda: _ready(cluster, "my-app"), 60, "my-app Ready again")
    after = _status(cluster, "my-app")
    assert after["containerID"] == before["containerID"] and after["restartCount"] == before["restartCount"]
    assert _container_pid(cluster, "my-app") == pid


def test_stats_summary_and_resource_metrics_through_the_node_proxy(cluster: Any) -> None:
    _wait(lambda: _ready(cluster, "my-app"), 60, "my-app Ready")
    path = f"/api/v1/nodes/{cluster.name}/proxy/stats/summary"
    raw = _wait(lambda: (r := cluster.kubectl("get", "--raw", path, check=False)).returncode == 0 and r.stdout, 30,
                "the kubelet to serve (it may be restarting)")
    summary = json.loads(raw)
    assert summary["node"]["nodeName"] == cluster.name
    pod = next(p for p in summary["pods"] if p["podRef"]["name"] == "my-app")
    app = next(c for c in pod["containers"] if c["name"] == "app")
    assert app["memory"]["workingSetBytes"] > 1_000_000 and app["cpu"]["usageCoreNanoSeconds"] > 0
    metrics = cluster.kubectl("get", "--raw", f"/api/v1/nodes/{cluster.name}/proxy/metrics/resource").stdout
    assert re.search(r'container_memory_working_set_bytes\{container="app",namespace="default",pod="my-app"\} \d+',
                     metrics), metrics[:2000]
