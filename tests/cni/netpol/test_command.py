"""`mkp netpol` as a process: it puts its node's table in place, removes it on SIGTERM,
and `--cleanup` deletes every table of a prefix. Tables live in the machine's network
namespace here (the process must reach the API server on 127.0.0.1), under this test's
own prefix `tn_cli<id>` and for a cluster without pods, so they match no traffic."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid

from click.testing import CliRunner

from cni.netpol.agent import netpol_command
from cni.netpol.nft import Nftables
from tests.cni.netpol.conftest import require_root_networking

COMMAND = "from cni.netpol.agent import netpol_command; netpol_command()"


def _wait_for(check, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_the_process_owns_its_table_until_stopped(mkp_cluster):
    require_root_networking()
    prefix, nft = f"tn_cli{uuid.uuid4().hex[:6]}", Nftables()
    argv = [sys.executable, "-c", COMMAND, "--kubeconfig", str(mkp_cluster.kubeconfig), "--node", "tn-cli",
            "--table-prefix", prefix]
    proc = subprocess.Popen(argv, env=mkp_cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert _wait_for(lambda: nft.tables(prefix) == [f"{prefix}_tn_cli"]), "the table never appeared"
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0, output
        assert nft.tables(prefix) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for name in nft.tables(prefix):
            nft.delete(name)


def test_cleanup_deletes_every_table_of_the_prefix():
    require_root_networking()
    prefix, nft = f"tn_cli{uuid.uuid4().hex[:6]}", Nftables()
    try:
        nft.apply(f"table inet {prefix}_a\ntable inet {prefix}_b\n")
        result = CliRunner().invoke(netpol_command, ["--table-prefix", prefix, "--cleanup"])
        assert result.exit_code == 0, result.output
        assert sorted(result.output.splitlines()) == [f"deleted table inet {prefix}_a", f"deleted table inet {prefix}_b"]
        assert nft.tables(prefix) == []
    finally:
        for name in nft.tables(prefix):
            nft.delete(name)


def test_the_command_needs_a_node_or_cleanup():
    result = CliRunner().invoke(netpol_command, ["--server", "http://127.0.0.1:1"])
    assert result.exit_code == 2 and "--node" in result.output
