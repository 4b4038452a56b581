"""`make run`'s demo (examples/demo.sh) runs to the end against `mkp up --nodes 1 --fake-nodes 2`."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import REPO_ROOT, require_tool, start_mkp_cluster

pytestmark = pytest.mark.e2e


def test_demo_script_runs_clean(tmp_path):
    with start_mkp_cluster(tmp_path, None, "--nodes", "1", "--fake-nodes", "2") as c:
        env = {**c.env, "MKP_HOME": str(c.mkp_home), "MKP_NAME": c.name, "KUBECTL": require_tool("kubectl"),
               "PATH": os.environ.get("PATH", "")}
        result = subprocess.run(["bash", str(REPO_ROOT / "examples" / "demo.sh")], env=env, capture_output=True,
                                text=True, timeout=240, check=False)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert 'deployment "order-service" successfully rolled out' in result.stdout
        assert "partitioned roll out complete: 3 new pods have been updated" in result.stdout
        assert "job.batch/hello condition met" in result.stdout
        assert '"version": "6.7.1"' in result.stdout  # podinfo's /version through my-service
