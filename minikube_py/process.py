"""Starting, recognising and stopping a cluster's processes, through /proc and signals.

Components run detached: each in its own session (so its pid is also its process-group
id and a terminal's Ctrl-C does not reach it), stdin from /dev/null, stdout and stderr
appended to its log file. `mkp up` returns while they keep running, so nothing holds a
`Popen` for them later: a pid file is the only handle, and pids get reused. A pid file is
therefore trusted only if the live process still carries this cluster's
`MKP_CLUSTER_HOME` in its environment and names the component on its command line.

Stopping is by marker rather than by family tree: pods started later by kubelets live in
process groups of their own, so `cluster_processes` scans /proc/*/environ for the
cluster's `MKP_CLUSTER_HOME` and `stop` signals whatever it finds. Linux only (/proc).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from minikube_py.config import ENV_CLUSTER_HOME, ENV_COMPONENT

_PROC = Path("/proc")


def cli_argv(*args: str) -> list[str]:
    """argv that runs `mkp <args>` with this interpreter. `-m minikube_py.cli` rather than
    the console script: the child then runs the very code of its parent even from a
    source checkout whose console script is missing or stale."""
    return [sys.executable, "-m", "minikube_py.cli", *args]


def component_env(cluster_home: Path, component: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a component: the caller's, plus the cluster marker, plus the
    source root on PYTHONPATH so `-m minikube_py.cli` resolves to the same package."""
    env = dict(os.environ if base is None else base)
    env[ENV_CLUSTER_HOME] = str(cluster_home)
    env[ENV_COMPONENT] = component
    env["PYTHONUNBUFFERED"] = "1"
    source_root = str(Path(__file__).resolve().parent.parent)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != source_root]
    env["PYTHONPATH"] = os.pathsep.join([source_root, *paths])
    return env


def spawn_detached(argv: list[str], *, log: Path, env: Mapping[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """Start `argv` in a new session with output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=dict(env),
            cwd=cwd,
        )


# --- pid files ---------------------------------------------------------------------


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def write_pid(path: Path, pid: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{pid}\n")
    os.replace(tmp, path)


# --- /proc -------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may contain spaces)."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rfind(")") + 2 :].split()


def is_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (an exited process nobody reaped
    yet still has a /proc entry, and a detached component's reaper may be slow)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def cmdline(pid: int) -> list[str]:
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def environ(pid: int) -> dict[str, str]:
    try:
        raw = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:  # gone, or another user's process
        return {}
    env: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


NODE_COMPONENT_PREFIX = "node-"  # components of nodes added one by one (`mkp node add`)
KUBELET_COMPONENT_PREFIX = "kubelet-"  # the real nodes of `mkp up --nodes N`
PROXY_COMPONENT_PREFIX = "kube-proxy-"  # their service proxies (`mkp kube-proxy --hostname-override NAME`)
# Components whose `mkp` sub-command is not their name.
COMPONENT_COMMANDS = {"coredns": "dns", "ingress-controller": "ingress"}


def is_component(pid: int, cluster_home: Path, component: str) -> bool:
    """Whether `pid` is still `component` of the cluster at `cluster_home`, not a
    different program that inherited a recycled pid."""
    if not is_alive(pid):
        return False
    env = environ(pid)
    if env.get(ENV_CLUSTER_HOME) != str(cluster_home) or env.get(ENV_COMPONENT) != component:
        return False
    words = cmdline(pid)
    for prefix in (NODE_COMPONENT_PREFIX, KUBELET_COMPONENT_PREFIX):  # `kubelet ... --node NAME`
        if component.startswith(prefix):
            return "kubelet" in words and component.removeprefix(prefix) in words
    if component.startswith(PROXY_COMPONENT_PREFIX):
        return "kube-proxy" in words and component.removeprefix(PROXY_COMPONENT_PREFIX) in words
    return COMPONENT_COMMANDS.get(component, component) in words


def running_component(pid_file: Path, cluster_home: Path, component: str) -> int | None:
    """The pid recorded in `pid_file` if it is still that component, else None."""
    pid = read_pid(pid_file)
    if pid is not None and is_component(pid, cluster_home, component):
        return pid
    return None


def _ancestors() -> set[int]:
    """This process and its ancestors: never ours to kill, even if a pod runs `mkp down`."""
    seen: set[int] = set()
    pid: int | None = os.getpid()
    while pid and pid not in seen:
        seen.add(pid)
        pid = parent_of(pid)
    return seen


def marked_processes(match: str, *, prefix: bool = False) -> list[int]:
    """Live processes whose `MKP_CLUSTER_HOME` equals `match` (or starts with it)."""
    spared = _ancestors()
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) in spared:
            continue
        home = environ(int(entry.name)).get(ENV_CLUSTER_HOME)
        if home is None or not (home.startswith(match) if prefix else home == match):
            continue
        if is_alive(int(entry.name)):
            found.append(int(entry.name))
    return sorted(found)


def cluster_processes(cluster_home: Path) -> list[int]:
    return marked_processes(str(cluster_home))


# --- stopping ----------------------------------------------------------------------


def _signal(pid: int, sig: signal.Signals) -> None:
    """Signal the process, and its whole group when it leads one (components and pods
    are started as group leaders, so their helpers go too)."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Poll until every pid is dead or `timeout` passes; return the survivors."""
    left = [p for p in pids if is_alive(p)]
    deadline = time.monotonic() + timeout
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = [p for p in left if is_alive(p)]
    return left


def stop(pids: Iterable[int], *, grace: float) -> list[int]:
    """SIGTERM, wait up to `grace` seconds, SIGKILL the rest. Returns the pids that were
    still alive after SIGTERM's grace period (and therefore killed)."""
    targets = [p for p in dict.fromkeys(pids) if is_alive(p)]
    for pid in targets:
        _signal(pid, signal.SIGTERM)
    survivors = wait_gone(targets, grace)
    for pid in survivors:
        _signal(pid, signal.SIGKILL)
    wait_gone(survivors, 2.0)
    return survivors
