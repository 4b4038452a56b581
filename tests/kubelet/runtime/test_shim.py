"""mkp-shim, run for real: exit records, CRI log lines, partial lines, stdin FIFO, tty and
resize, signals, start errors as runc words them, namespaces (root), and building the
binary once even when threads race."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from kubelet.runtime import procfs
from kubelet.runtime.logs import parse_line
from kubelet.runtime.shim import SOURCE, ShimOptions, read_exit, read_pid, shim_path, write_env_file
from tests.conftest import require_tool, wait_until
from tests.kubelet.runtime.shim_support import shims_under, wait_exit

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z (stdout|stderr) [FP] ")


def start(base: Path, argv: list[str], name: str = "c", env: dict[str, str] | None = None,
          **options) -> tuple[Path, str]:
    """Run a shim; (state dir, its one-line verdict)."""
    state = base / name
    state.mkdir()
    env_file = base / f"{name}.env"
    write_env_file(env_file, env if env is not None else {"PATH": os.environ["PATH"]})
    opts = ShimOptions(state=state, log=base / f"{name}.log", argv=argv, env_file=env_file, **options)
    result = subprocess.run(opts.command(shim_path()), capture_output=True, text=True, timeout=10, check=True)
    return state, result.stdout.strip()


def log_entries(base: Path, name: str = "c"):
    return [parse_line(line) for line in (base / f"{name}.log").read_bytes().splitlines()]


def test_exit_code_timestamps_and_log_lines(clean_shims):
    before = time.time_ns()
    state, verdict = start(clean_shims, ["sh", "-c", "echo out; echo err >&2; printf 'no newline'; exit 3"])
    assert verdict.startswith("ok ")
    record = wait_exit(state)
    assert (record.exit_code, record.signal, record.error) == (3, 0, None)
    assert before <= record.started.timestamp() * 1e9 <= record.finished.timestamp() * 1e9 + 1000
    raw = (clean_shims / "c.log").read_text().splitlines()
    assert all(LINE.match(line) for line in raw), raw
    entries = log_entries(clean_shims)
    assert sorted((e.stream, e.partial, e.content) for e in entries) == [
        ("stderr", False, b"err"), ("stdout", False, b"no newline"), ("stdout", False, b"out")]
    assert int(verdict[3:]) == read_pid(state)
    assert (state / "shim.pid").exists()
    wait_until(lambda: not shims_under(clean_shims), 5, "shim to exit", interval=0.01)


def test_lines_over_16k_are_split_into_partials(clean_shims):
    state, _ = start(clean_shims, ["sh", "-c", "head -c 40000 /dev/zero | tr '\\0' x; echo; echo short"])
    wait_exit(state)
    entries = log_entries(clean_shims)
    assert [(len(e.content), e.partial) for e in entries] == [(16384, True), (16384, True), (7232, False),
                                                              (5, False)]


def test_exec_failure_is_a_start_error_in_runc_words(clean_shims):
    state, verdict = start(clean_shims, ["no-such-program", "x"])
    assert verdict == 'error exec: "no-such-program": executable file not found in $PATH'
    record = wait_exit(state)
    assert (record.exit_code, record.started) == (128, None)
    assert record.error == 'exec: "no-such-program": executable file not found in $PATH'
    assert not (state / "pid").exists()
    state, verdict = start(clean_shims, ["/no/such/file"], name="abs")
    assert verdict == 'error exec: "/no/such/file": stat /no/such/file: no such file or directory'


def test_missing_working_dir_is_a_start_error(clean_shims):
    state, verdict = start(clean_shims, ["true"], cwd="/no/such/dir")
    assert verdict == 'error chdir to cwd ("/no/such/dir") set in config.json failed: no such file or directory'
    assert wait_exit(state).exit_code == 128


def test_program_that_cannot_be_executed_starts_and_fails_with_its_reason_in_the_log(clean_shims):
    script = clean_shims / "not-a-program"
    script.write_bytes(b"\x7fELF garbage")
    script.chmod(0o755)
    state, verdict = start(clean_shims, [str(script)])
    assert verdict.startswith("ok ")
    assert wait_exit(state).exit_code == 1
    assert log_entries(clean_shims)[0].content == f"exec {script}: exec format error".encode()


def test_environment_is_exactly_the_env_file(clean_shims):
    state, _ = start(clean_shims, ["/usr/bin/env"], env={"ONLY": "this", "EMPTY": ""})
    wait_exit(state)
    assert sorted(e.content for e in log_entries(clean_shims)) == [b"EMPTY=", b"ONLY=this"]


@pytest.mark.parametrize(("sig", "code"), [pytest.param(signal.SIGTERM, 143, id="SIGTERM-143"),
                                           pytest.param(signal.SIGKILL, 137, id="SIGKILL-137")])
def test_signal_to_the_container_group_gives_128_plus_signal(clean_shims, sig, code):
    state, verdict = start(clean_shims, ["sh", "-c", "sleep 60 & wait"])
    pid = int(verdict[3:])
    shim = read_pid(state, "shim.pid")
    assert os.getpgid(pid) == pid and os.getsid(pid) == pid
    assert os.getpgid(shim) != pid
    os.killpg(pid, sig)
    record = wait_exit(state)
    assert (record.exit_code, record.signal) == (code, sig)


def test_sigterm_to_the_shim_is_forwarded_and_sighup_ignored(clean_shims):
    state, _ = start(clean_shims, ["sleep", "60"])
    shim = read_pid(state, "shim.pid")
    os.kill(shim, signal.SIGHUP)
    time.sleep(0.1)
    assert read_pid(state, "shim.pid") and procfs.same_process(shim, None)
    os.kill(shim, signal.SIGTERM)
    assert wait_exit(state).exit_code == 143


def test_leftover_processes_of_the_container_die_with_it(clean_shims):
    state, _ = start(clean_shims, ["sh", "-c", "sleep 60 & echo $! > bg; exit 0"], cwd=str(clean_shims))
    assert wait_exit(state).exit_code == 0
    background = int((clean_shims / "bg").read_text())
    wait_until(lambda: not procfs.same_process(background, None), 5, "background sleep killed", interval=0.01)


def test_stdin_stays_open_across_writers(clean_shims):
    state, _ = start(clean_shims, ["cat"], stdin=True)
    for word in (b"one\n", b"two\n"):
        with open(state / "stdin", "wb") as fifo:
            fifo.write(word)
    wait_until(lambda: len(log_entries(clean_shims)) == 2, 5, "two lines echoed", interval=0.01)
    assert read_exit(state) is None  # cat still reads: no EOF between writers
    os.killpg(read_pid(state), signal.SIGKILL)
    wait_exit(state)
    assert [e.content for e in log_entries(clean_shims)] == [b"one", b"two"]


def test_stdin_once_closes_after_the_first_writer(clean_shims):
    state, _ = start(clean_shims, ["sh", "-c", "cat; echo done"], stdin_once=True)
    time.sleep(0.05)
    assert read_exit(state) is None  # no writer yet: stdin is not at EOF
    with open(state / "stdin", "wb") as fifo:
        fifo.write(b"hello\n")
    assert wait_exit(state).exit_code == 0
    assert [e.content for e in log_entries(clean_shims)] == [b"hello", b"done"]


def test_tty_with_resize(clean_shims):
    require_tool("stty")
    state, _ = start(clean_shims, ["sh", "-c", "test -t 0 && echo is-a-tty; stty size; read x; stty size"],
                     tty=True, stdin=True)
    wait_until(lambda: b"24 80" in [e.content for e in log_entries(clean_shims)], 5, "initial size", interval=0.01)
    with open(state / "resize", "w") as fifo:
        fifo.write("100 50\n")
    time.sleep(0.05)
    with open(state / "stdin", "wb") as fifo:
        fifo.write(b"go\n")
    assert wait_exit(state).exit_code == 0
    entries = log_entries(clean_shims)
    assert {e.stream for e in entries} == {"stdout"}
    assert [e.content for e in entries] == [b"is-a-tty", b"24 80", b"go", b"50 100"]


def test_shim_outlives_its_starter_session(clean_shims):
    state, verdict = start(clean_shims, ["sleep", "60"])
    shim = read_pid(state, "shim.pid")
    assert os.getsid(shim) == shim  # its own session: the starter's terminal and group do not reach it
    assert procfs.option(procfs.cmdline(shim), "--state") == str(state)
    os.killpg(int(verdict[3:]), signal.SIGKILL)
    wait_exit(state)


@pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true", reason="namespaces need root")
def test_pid_uts_mount_ipc_namespaces(clean_shims):
    state, _ = start(clean_shims, ["sh", "-c", "echo pid=$$; hostname; ls /proc | grep -c '^[0-9]'"],
                     unshare=["pid", "uts", "mount", "ipc"], hostname="x")
    record = wait_exit(state)
    assert record.exit_code == 0
    contents = [e.content for e in log_entries(clean_shims)]
    assert contents[:2] == [b"pid=1", b"x"]
    assert int(contents[2]) <= 3  # its /proc shows its own namespace only
    assert os.uname().nodename != "x"


@pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true", reason="namespaces need root")
def test_sigterm_to_pid_1_without_handler_is_ignored_but_sigkill_is_not(clean_shims):
    state, verdict = start(clean_shims, ["sleep", "60"], unshare=["pid", "mount"])
    os.killpg(int(verdict[3:]), signal.SIGTERM)  # as in a real container: init ignores unhandled signals
    time.sleep(0.1)
    assert read_exit(state) is None
    os.killpg(int(verdict[3:]), signal.SIGKILL)
    assert wait_exit(state).exit_code == 137


def test_shim_is_built_once_when_threads_race(tmp_path, monkeypatch):
    monkeypatch.setenv("MKP_HOME", str(tmp_path))
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(shim_path())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and len(results) == 4
    assert os.access(results[0], os.X_OK)
    assert results[0].name.startswith("mkp-shim-") and len(results[0].name) == len("mkp-shim-") + 12
    assert [p.name for p in (tmp_path / "bin").iterdir()] == [results[0].name]  # no temporary left


def test_shim_compiles_without_warnings(tmp_path):
    gcc = require_tool("gcc")
    result = subprocess.run([gcc, "-O2", "-Wall", "-Wextra", "-o", str(tmp_path / "shim"), str(SOURCE)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stderr == ""


def test_bad_usage_is_reported(clean_shims):
    result = subprocess.run([str(shim_path()), "--state", str(clean_shims)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 2 and "usage: mkp-shim" in result.stderr


def test_container_dies_with_a_killed_shim(clean_shims):
    state, verdict = start(clean_shims, ["sleep", "60"])
    os.kill(read_pid(state, "shim.pid"), signal.SIGKILL)
    wait_until(lambda: not procfs.same_process(int(verdict[3:]), None), 5, "container killed", interval=0.01)
    assert read_exit(state) is None  # nobody was left to record it


@pytest.fixture
def netns():
    ip = require_tool("ip")
    name = f"mkp-shim-test-{os.getpid()}"
    subprocess.run([ip, "netns", "add", name], check=True)
    yield f"/run/netns/{name}"
    subprocess.run([ip, "netns", "delete", name], check=True)


@pytest.fixture
def cgroup():
    path = Path(f"/sys/fs/cgroup/pids/mkp-shim-test-{os.getpid()}")
    path.mkdir()
    yield path
    wait_until(lambda: not (path / "cgroup.procs").read_text().strip(), 5, "cgroup empty", interval=0.01)
    path.rmdir()


@pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true", reason="namespaces need root")
def test_rootfs_mounts_readonly_user_cgroup_and_netns(clean_shims, netns, cgroup):
    rootfs = clean_shims / "rootfs"
    rootfs.mkdir()
    for name in ("bin", "lib", "lib64", "sbin"):  # Debian's merged /usr
        if os.path.islink(f"/{name}"):
            os.symlink(os.readlink(f"/{name}"), rootfs / name)
    volume = clean_shims / "volume"
    volume.mkdir()
    (volume / "data").write_text("from the host\n")
    os.chmod(volume, 0o777)
    script = ("echo pid=$$; id -u; id -g; cat /data/data; cat /proc/self/cgroup | grep -c mkp-shim-test; "
              "ls /sys/class/net; touch /x 2>/dev/null || echo ro-root; touch /data/y && echo rw-volume; "
              "test -e /dev/null && echo dev; pwd")
    state, verdict = start(clean_shims, ["sh", "-c", script], env={"PATH": "/usr/bin:/bin"},
                           unshare=["pid", "mount", "uts", "ipc"], rootfs=rootfs,
                           mounts=[("/usr", "/usr", True), (str(volume), "/data", False)],
                           readonly_rootfs=True, uid=1000, gid=1000, cgroups=[cgroup], netns=netns,
                           cwd="/work/dir")
    assert verdict.startswith("ok "), verdict
    assert wait_exit(state).exit_code == 0
    assert [e.content for e in log_entries(clean_shims)] == [
        b"pid=1", b"1000", b"1000", b"from the host", b"1", b"lo", b"ro-root", b"rw-volume", b"dev", b"/work/dir"]
    assert (volume / "y").exists() and not (rootfs / "x").exists()
