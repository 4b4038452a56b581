"""kopf, a real operator framework we did not write, runs against mkp: it lists and
watches a custom resource, patches its status subresource, posts Events and keeps its
own bookkeeping annotations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import wait_until as _wait

pytestmark = pytest.mark.e2e
pytest.importorskip("kopf")
HERE = Path(__file__).parent




def test_kopf_operator_handles_create_and_update(mkp_cluster):
    k = mkp_cluster.kubectl
    k("apply", "-f", str(HERE / "manifests" / "kopf_crd.yaml"))
    k("wait", "--for=condition=Established", "crd/greetings.demo.mkp.dev", "--timeout=20s")
    env = dict(mkp_cluster.env, KUBECONFIG=str(mkp_cluster.kubeconfig))
    operator = subprocess.Popen([sys.executable, "-m", "kopf", "run", "--standalone", "-n", "default",
                                 str(HERE / "kopf_operator.py")], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    try:
        k("apply", "-f", "-", input="apiVersion: demo.mkp.dev/v1\nkind: Greeting\nmetadata:\n  name: g\nspec:\n  name: mkp\n")

        def status_message() -> str:
            obj = json.loads(k("get", "greeting", "g", "-o", "json").stdout)
            return (obj.get("status") or {}).get("message", "")

        assert _wait(lambda: status_message() == "hello, mkp")
        obj = json.loads(k("get", "greeting", "g", "-o", "json").stdout)
        assert "kopf.zalando.org/last-handled-configuration" in obj["metadata"]["annotations"]
        events = json.loads(k("get", "events", "--field-selector", "involvedObject.name=g", "-o", "json").stdout)
        assert any(e["reason"] == "Greeted" for e in events["items"])
        k("patch", "greeting", "g", "--type=merge", "-p", '{"spec":{"name":"again"}}')
        assert _wait(lambda: status_message() == "hello again, again")
    finally:
        operator.terminate()
        try:
            out, _ = operator.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            operator.kill()
            out, _ = operator.communicate()
    assert "Traceback" not in out, out
