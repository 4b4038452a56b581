"""The pod worker's decisions against an in-memory runtime and a fake clock: start
order, restarts and their back-off, CrashLoopBackOff, init containers, probes'
verdicts, termination with its grace period, and the status it writes."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kubelet.podworker import PodContext, PodWorker, command_line
from kubelet.probes import KillReason
from kubelet.runtime.base import EXITED, RUNNING, ContainerConfig, ContainerState
from kubelet.runtime.base import RuntimeError_ as RuntimeFailure
from minikube_py.client import FakeClock


@dataclass
class Image:
    ref: str
    id: str = "sha256:" + "ab" * 32
    repo_digest: str = "docker.io/library/busybox@sha256:" + "ab" * 32
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=lambda: ["sh"])
    working_dir: str | None = None
    size: int = 1234


class Images:
    def __init__(self) -> None:
        self.pulled: set[str] = set()

    def present(self, ref: str) -> bool:
        return ref in self.pulled

    async def pull(self, ref: str, policy: str) -> tuple[Image, bool]:
        if ref.startswith("missing"):
            raise LookupError(f'failed to pull and unpack image "{ref}": not found')
        fresh = ref not in self.pulled
        self.pulled.add(ref)
        return Image(ref), fresh


class Runtime:
    """Containers are records; tests end them with `exit(name, code)`."""

    def __init__(self) -> None:
        self.containers: dict[str, ContainerState] = {}
        self.configs: dict[str, ContainerConfig] = {}
        self.exits: dict[str, asyncio.Event] = {}
        self.signals: list[tuple[str, int]] = []
        self.fail_start: dict[str, RuntimeFailure] = {}
        self.count = 0

    async def create_sandbox(self, sandbox: Any) -> None:
        pass

    async def remove_sandbox(self, sandbox: Any) -> None:
        pass

    async def start_container(self, config: ContainerConfig) -> ContainerState:
        if config.name in self.fail_start:
            raise self.fail_start[config.name]
        self.count += 1
        cid = f"fake://{self.count:064d}"
        state = ContainerState(id=cid, pod_uid=config.sandbox.pod_uid, name=config.name, attempt=config.attempt,
                               state=RUNNING, pid=1000 + self.count, started_at=datetime.now(UTC))
        self.containers[cid], self.configs[cid], self.exits[cid] = state, config, asyncio.Event()
        return replace(state)

    async def wait(self, cid: str) -> ContainerState:
        await self.exits[cid].wait()
        return replace(self.containers[cid])

    async def status(self, cid: str) -> ContainerState:
        return replace(self.containers[cid])

    async def kill(self, cid: str, sig: int) -> None:
        self.signals.append((cid, sig))
        if self.containers[cid].state == RUNNING and sig == signal.SIGKILL:
            self.end(cid, 137)

    async def remove_container(self, cid: str) -> None:
        pass

    def end(self, cid: str, code: int) -> None:
        state = self.containers[cid]
        state.state, state.exit_code, state.finished_at = EXITED, code, datetime.now(UTC)
        state.reason = "Completed" if code == 0 else "Error"
        self.exits[cid].set()

    def running(self, name: str) -> str:
        return next(cid for cid, s in self.containers.items() if s.name == name and s.state == RUNNING)


class Probes:
    def __init__(self) -> None:
        self.live_failed: set[str] = set()
        self.unready: set[str] = set()

    def add(self, *args: Any) -> None:
        pass

    def remove(self, cid: str) -> None:
        pass

    def remove_pod(self, uid: str) -> None:
        pass

    def ready(self, cid: str) -> bool:
        return cid not in self.unready

    def started(self, cid: str) -> bool:
        return True

    def liveness_failed(self, cid: str) -> bool:
        return cid in self.live_failed

    def kill_reason(self, cid: str) -> Any:
        if cid not in self.live_failed:
            return None
        return KillReason("Liveness", "app", None)

    def update_pod(self, pod: Any) -> None:
        pass


class Volumes:
    async def setup(self, pod: Any) -> dict[str, Path]:
        return {}

    async def refresh(self, pod: Any) -> None:
        pass

    async def teardown(self, uid: str) -> None:
        self.torn_down = uid

    def mounts(self, pod: Any, container: Any, paths: Any, env: Any = None) -> list[Any]:
        return []


@dataclass
class Network:
    ip: str = "127.244.0.2"

    async def setup_pod(self, *args: Any) -> Any:
        return self

    async def teardown_pod(self, *args: Any) -> None:
        self.released = True


class Client:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []
        self.deleted: list[tuple[Any, ...]] = []
        self.pod: dict[str, Any] = {}

    async def patch(self, resource: Any, name: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        self.patches.append(body)
        status = dict(body["status"])
        status.pop("$setElementOrder/conditions", None)
        self.pod = {**self.pod, "status": status}
        return self.pod

    async def delete(self, resource: Any, name: str, namespace: str, **kw: Any) -> None:
        self.deleted.append((name, namespace, kw))


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: Any, event_type: str, reason: str, message: str, **kw: Any) -> None:
        self.events.append((event_type, reason, message))

    def reasons(self) -> list[str]:
        return [r for _, r, _ in self.events]


def _pod(spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "default", "uid": "uid-1", **meta},
            "spec": {"nodeName": "n", **spec}, "status": {"phase": "Pending"}}


@pytest.fixture
def env(tmp_path: Path) -> Any:
    clock = FakeClock()
    client, runtime, recorder = Client(), Runtime(), Recorder()
    enqueued: list[str] = []

    async def env_for(pod: Any, container: Any, pod_ip: str | None) -> dict[str, str]:
        if container.get("env") == "broken":
            raise LookupError('configmap "nowhere" not found')
        return {"POD_IP": pod_ip or "", "NAME": "world"}

    ctx = PodContext(client=client, node_name="n", root=tmp_path, run_root=tmp_path / "run", runtime=runtime, images=Images(),
                     volumes=Volumes(), network=Network(), probes=Probes(), recorder=recorder, env_for=env_for,
                     host_ip=lambda: "127.1.0.1", enqueue=enqueued.append, clock=clock)

    class Env:
        pass

    e = Env()
    e.ctx, e.clock, e.client, e.runtime, e.recorder, e.enqueued = ctx, clock, client, runtime, recorder, enqueued
    return e


def _statuses(env: Any, kind: str = "containerStatuses") -> dict[str, Any]:
    return {s["name"]: s for s in env.client.pod["status"].get(kind) or []}


async def _sync(worker: PodWorker, env: Any, pod: dict[str, Any]) -> Any:
    env.client.pod = {**pod, "status": env.client.pod.get("status", pod["status"])}
    result = await worker.sync({**pod, "status": env.client.pod["status"]})
    await asyncio.sleep(0)
    return result


async def test_starts_containers_and_reports_running(env: Any) -> None:
    pod = _pod({"containers": [{"name": "app", "image": "busybox:1.36", "command": ["echo", "$(NAME)"]}]})
    worker = PodWorker(env.ctx, pod)
    await _sync(worker, env, pod)
    status = env.client.pod["status"]
    assert status["phase"] == "Running" and status["podIP"] == "127.244.0.2" and status["hostIP"] == "127.1.0.1"
    app = _statuses(env)["app"]
    assert "running" in app["state"] and app["ready"] is True and app["restartCount"] == 0
    config = next(iter(env.runtime.configs.values()))
    assert config.argv == ["echo", "world"]
    assert env.recorder.reasons() == ["Pulling", "Pulled", "Created", "Started"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"


async def test_crash_restarts_at_once_then_backs_off_10s_then_20s(env: Any) -> None:
    pod = _pod({"containers": [{"name": "app", "image": "busybox:1.36"}]})
    worker = PodWorker(env.ctx, pod)
    await _sync(worker, env, pod)
    env.runtime.end(env.runtime.running("app"), 2)
    await asyncio.sleep(0)
    await _sync(worker, env, pod)  # the first restart is immediate
    app = _statuses(env)["app"]
    assert app["restartCount"] == 1 and "running" in app["state"]
    assert app["lastState"]["terminated"]["exitCode"] == 2
    env.runtime.end(env.runtime.running("app"), 2)
    await asyncio.sleep(0)
    result = await _sync(worker, env, pod)
    waiting = _statuses(env)["app"]["state"]["waiting"]
    assert waiting["reason"] == "CrashLoopBackOff"
    assert waiting["message"].startswith("back-off 10s restarting failed container=app pod=p_default(uid-1)")
    assert result.requeue_after == pytest.approx(10.0)
    assert env.client.pod["status"]["phase"] == "Running"
    assert "BackOff" in env.recorder.reasons()
    env.clock.advance(10)
    await _sync(worker, env, pod)
    assert _statuses(env)["app"]["restartCount"] == 2
    env.runtime.end(env.runtime.running("app"), 2)
    await asyncio.sleep(0)
    await _sync(worker, env, pod)
    assert _statuses(env)["app"]["state"]["waiting"]["message"].startswith("back-off 20s")


async def test_restart_policy_never_ends_in_failed_and_on_failure_in_succeeded(env: Any) -> None:
    pod = _pod({"restartPolicy": "Never", "containers": [{"name": "a", "image": "busybox:1.36"}]})
    worker = PodWorker(env.ctx, pod)
    await _sync(worker, env, pod)
    env.runtime.end(env.runtime.running("a"), 1)
    await asyncio.sleep(0)
    await _sync(worker, env, pod)
    assert env.client.pod["status"]["phase"] == "Failed"
    terminated = _statuses(env)["a"]["state"]["terminated"]
    assert terminated["exitCode"] == 1 and terminated["reason"] == "Error"


async def test_init_containers_run_in_order_before_the_app(env: Any) -> None:
    pod = _pod({"initContainers": [{"name": "i1", "image": "busybox:1.36"}, {"name": "i2", "image": "busybox:1.36"}],
                "containers": [{"name": "app", "image": "busybox:1.36"}]})
    worker = PodWorker(env.ctx, pod)
    await _sync(worker, env, pod)
    names = [s.name for s in env.runtime.containers.values()]
    assert names == ["i1"]
    status = env.client.pod["status"]
    assert status["phase"] == "Pending"
    init = {c["type"]: c for c in status["conditions"]}["Initialized"]
    assert init["status"] == "False" and init["message"] == "containers with incomplete status: [i1 i2]"
    assert _statuses(env)["app"]["state"]["waiting"]["reason"] == "PodInitializing"
    env.runtime.end(env.runtime.running("i1"), 0)
    await asyncio.sleep(0)
    await _sync(worker, env, pod)
    assert [s.name for s in env.runtime.containers.values()] == ["i1", "i2"]
    env.runtime.end(env.runtime.running("i2"), 0)
    await asyncio.sleep(0)
    await _sync(worker, env, pod)
    assert env.client.pod["status"]["phase"] == "Running"
    inits = _statuses(env, "initContainerStatuses")
    assert inits["i1"]["state"]["terminated"]["reason"] == "Completed" and inits["i1"]["ready"] is True


async def test_unknown_image_err_image_pull_then_image_pull_back_off(env: Any) -> None:
    pod = _pod({"containers": [{"name": "app", "image": "missing/app:1"}]})
    worker = PodWorker(env.ctx, pod)
    await _sync(worker, env, pod)
    assert _statuses(env)["app"]["state"]["waiting"]["reason"] == "ErrImagePull"
    await _sync(worker, env, pod)
    assert _statuses(env)["app"]["state"]["waiting"]["reason"] == "ImagePullBackOff"
    assert env.client.pod["status"]["phase"] == "Pending"


async def test_config_error_is_create_container_config_error(env: Any) -> None:
    pod = _pod({"containers": [{"name": "app", "image": "busybox:1.36", "env": "broken"}]})
    worker = PodWorker(env.ctx, pod)
    await _sync(worker, env, pod)
    waiting = _statuses(env)["app"]["state"]["waiting"]
    assert waiting == {"reason": "CreateContainerConfigError", "message": 'configmap "nowhere" not found'}


async def test_liveness_failure_kills_with_sigterm_and_restarts(env: Any) -> None:
    pod = _pod({"containers": [{"name": "app", "image": "busybox:1.36"}]})
    worker = PodWorker(env.ctx, pod)
    await _sync(worker, env, pod)
    cid = env.runtime.running("app")
    env.ctx.probes.live_failed.add(cid)
    await _sync(worker, env, pod)
    assert (cid, signal.SIGTERM) in env.runtime.signals
    assert ("Normal", "Killing", "Container app failed liveness probe, will be restarted") in env.recorder.events
    await _sync(worker, env, pod)  # no second SIGTERM for the same container
    assert env.runtime.signals.count((cid, signal.SIGTERM)) == 1
    env.runtime.end(cid, 143)
    await asyncio.sleep(0)
    await _sync(worker, env, pod)
    assert _statuses(env)["app"]["restartCount"] == 1


async def test_deletion_sigterm_then_sigkill_after_grace_then_delete(env: Any) -> None:
    pod = _pod({"terminationGracePeriodSeconds": 5, "containers": [{"name": "app", "image": "busybox:1.36"}]})
    worker = PodWorker(env.ctx, pod)
    await _sync(worker, env, pod)
    cid = env.runtime.running("app")
    deleting = _pod(pod["spec"], deletionTimestamp="2025-01-01T00:00:00Z", deletionGracePeriodSeconds=5)
    result = await _sync(worker, env, deleting)
    await asyncio.sleep(0)
    assert (cid, signal.SIGTERM) in env.runtime.signals
    assert ("Normal", "Killing", "Stopping container app") in env.recorder.events
    assert result.requeue_after <= 1.0
    env.clock.advance(5)
    await _sync(worker, env, deleting)
    assert (cid, signal.SIGKILL) in env.runtime.signals
    await asyncio.sleep(0)
    await _sync(worker, env, deleting)
    assert worker.terminated and env.client.deleted
    name, namespace, options = env.client.deleted[0]
    assert options["grace_period_seconds"] == 0 and options["preconditions"] == {"uid": "uid-1"}
    final = _statuses(env)["app"]["state"]["terminated"]
    assert final["exitCode"] == 137


async def test_start_error_backs_off(env: Any) -> None:
    env.runtime.fail_start["app"] = RuntimeFailure("StartError", 'exec: "nope": executable file not found in $PATH')
    pod = _pod({"containers": [{"name": "app", "image": "busybox:1.36", "command": ["nope"]}]})
    worker = PodWorker(env.ctx, pod)
    await _sync(worker, env, pod)
    waiting = _statuses(env)["app"]["state"]["waiting"]
    assert waiting["reason"] == "StartError" and "executable file not found" in waiting["message"]


def test_command_line_combines_image_and_spec_like_docker() -> None:
    image = Image("x", entrypoint=["/entry"], cmd=["--default"])
    assert command_line({}, image, {}) == ["/entry", "--default"]
    assert command_line({"args": ["--a"]}, image, {}) == ["/entry", "--a"]
    assert command_line({"command": ["run"]}, image, {}) == ["run"]
    assert command_line({"command": ["run"], "args": ["$(X)", "$$(X)", "$(Y)"]}, image, {"X": "1"}) == \
        ["run", "1", "$(X)", "$(Y)"]
    assert command_line({"command": ["a$b$(X"]}, image, {"X": "1"}) == ["a$b$(X"]


async def test_sidecar_is_stopped_with_sigterm_once_the_pod_completes(env: Any) -> None:
    pod = _pod({"restartPolicy": "Never", "terminationGracePeriodSeconds": 7,
                "initContainers": [{"name": "proxy", "image": "busybox:1.36", "restartPolicy": "Always"}],
                "containers": [{"name": "job", "image": "busybox:1.36"}]})
    worker = PodWorker(env.ctx, pod)
    await _sync(worker, env, pod)  # the sidecar starts (and is started: no startup probe)
    await _sync(worker, env, pod)  # then the job container
    assert {s.name for s in env.runtime.containers.values()} == {"proxy", "job"}
    env.runtime.end(env.runtime.running("job"), 0)
    await asyncio.sleep(0)
    await _sync(worker, env, pod)
    assert env.client.pod["status"]["phase"] == "Succeeded"
    sidecar = env.runtime.running("proxy")
    done = {**pod, "status": env.client.pod["status"]}
    await worker.sync(done)
    await worker.sync(done)  # once only
    assert env.runtime.signals.count((sidecar, signal.SIGTERM)) == 1
    assert (sidecar, signal.SIGKILL) not in env.runtime.signals
