"""Acceptance checks: what a user of kubectl 1.32 sees, where mkp once differed from Kubernetes.

Each test plays a kubernetes.io example with the real kubectl against
`mkp up --fake-nodes 2` and checks the output Kubernetes 1.32 gives: the kubelet's
event wording (`Created container: x`, Pulling/Pulled for imagePullPolicy Always),
CrashLoopBackOff for a failing restartPolicy Always pod, the NodeNotSchedulable event
on cordon, Indexed Job pods reading their index from the label, controller-written
objects without empty `annotations: {}`, pods waiting for a missing Secret
(CreateContainerConfigError), `kubectl autoscale` without a metrics API, and the
ReplicationController example of kubernetes.io, and PodDisruptionBudget status.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import start_mkp_cluster
from tests.conftest import wait_until as _wait

pytestmark = pytest.mark.e2e

CRASHING_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: crasher
  annotations:
    mkp.dev/fake-exit-code: "1"
    mkp.dev/fake-run-seconds: "1"
spec:
  containers:
  - name: app
    image: busybox:1.36
"""

INDEXED_JOB = """
apiVersion: batch/v1
kind: Job
metadata:
  name: indexed
spec:
  completions: 2
  parallelism: 2
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: worker
        image: busybox:1.36
        command: ["sh", "-c", "echo $JOB_COMPLETION_INDEX"]
"""


SECRET_ENV_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: order-service
spec:
  replicas: 1
  selector:
    matchLabels: {app: order-service}
  template:
    metadata:
      labels: {app: order-service}
    spec:
      containers:
      - name: order-service
        image: walmart/order-service:2.1.0
        env:
        - name: DB_PASSWORD
          valueFrom:
            secretKeyRef: {name: db-credentials, key: password}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with start_mkp_cluster(tmp_path_factory.mktemp("mkp"), None, "--nodes", "0", "--fake-nodes", "2") as c:
        yield c


def _json(cluster: Any, *args: str) -> Any:
    return json.loads(cluster.kubectl(*args, "-o", "json").stdout)


def _events(cluster: Any, name: str) -> list[tuple[str, str]]:
    items = _json(cluster, "get", "events", "--field-selector", f"involvedObject.name={name}")["items"]
    return [(e["reason"], e["message"]) for e in items]


def test_deployment_pod_events_read_as_kubelet_1_32(cluster: Any) -> None:
    k = cluster.kubectl
    k("create", "deployment", "web", "--image=nginx", "--replicas=1")
    k("rollout", "status", "deployment/web", "--timeout=60s", timeout=70)
    [pod] = _json(cluster, "get", "pods", "-l", "app=web")["items"]
    name = pod["metadata"]["name"]
    events = _wait(lambda: (lambda e: e if len(e) >= 5 else None)(_events(cluster, name)), 30, "pod events")
    reasons = dict(events)
    assert reasons["Scheduled"].startswith(f"Successfully assigned default/{name} to fake-node-")
    assert reasons["Pulling"] == 'Pulling image "nginx"'  # nginx (:latest) is imagePullPolicy Always
    assert reasons["Pulled"].startswith('Successfully pulled image "nginx" in ')
    assert reasons["Pulled"].endswith(" bytes.")
    assert reasons["Created"] == "Created container: nginx"
    assert reasons["Started"] == "Started container nginx"
    described = k("describe", "pod", name).stdout
    assert "Created container: nginx" in described


def test_failing_always_pod_crash_loops(cluster: Any) -> None:
    k = cluster.kubectl
    k("apply", "-f", "-", input=CRASHING_POD)

    def crash_looping() -> list[str] | None:
        row = k("get", "pod", "crasher", "--no-headers").stdout.split()
        return row if row[2] == "CrashLoopBackOff" and row[3] != "0" else None

    row = _wait(crash_looping, 40, "CrashLoopBackOff")
    assert row[1] == "0/1"
    status = _json(cluster, "get", "pod", "crasher")["status"]
    assert status["phase"] == "Running"
    last = status["containerStatuses"][0]["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (1, "Error")
    backoff = _wait(lambda: [m for r, m in _events(cluster, "crasher") if r == "BackOff"], 20, "BackOff event")
    assert backoff[0].startswith("Back-off restarting failed container app in pod crasher_default(")
    k("delete", "pod", "crasher", "--wait=false")


def test_cordon_and_uncordon_are_node_events(cluster: Any) -> None:
    k = cluster.kubectl
    k("cordon", "fake-node-1")
    assert "SchedulingDisabled" in k("get", "node", "fake-node-1", "--no-headers").stdout
    k("uncordon", "fake-node-1")
    wanted = {("NodeNotSchedulable", "Node fake-node-1 status is now: NodeNotSchedulable"),
              ("NodeSchedulable", "Node fake-node-1 status is now: NodeSchedulable")}
    _wait(lambda: wanted <= set(_events(cluster, "fake-node-1")), 20, "cordon events")


def test_indexed_job_pods_read_their_index_from_the_label(cluster: Any) -> None:
    k = cluster.kubectl
    k("apply", "-f", "-", input=INDEXED_JOB)
    k("wait", "--for=condition=complete", "job/indexed", "--timeout=60s", timeout=70)
    job = _json(cluster, "get", "job", "indexed")
    assert job["status"]["completedIndexes"] == "0-1"
    pods = _json(cluster, "get", "pods", "-l", "job-name=indexed")["items"]
    assert sorted(p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] for p in pods) == ["0", "1"]
    env = pods[0]["spec"]["containers"][0]["env"]
    assert env == [{"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
        "apiVersion": "v1", "fieldPath": "metadata.labels['batch.kubernetes.io/job-completion-index']"}}}]


def test_endpoints_updated_without_a_trigger_time_carry_no_empty_annotations(cluster: Any) -> None:
    """Scaling down changes no pod's readiness, so the update has no trigger time: the
    annotation goes and, as with Go's omitempty, so does the map."""
    k = cluster.kubectl
    k("expose", "deployment", "web", "--port=80")
    k("scale", "deployment", "web", "--replicas=2")

    def addresses(count: int) -> Any:
        ep = _json(cluster, "get", "endpoints", "web")
        found = [a for s in ep.get("subsets") or [] for a in s.get("addresses") or []]
        return ep if len(found) == count else None

    _wait(lambda: addresses(2), 30, "two endpoints")
    k("scale", "deployment", "web", "--replicas=1")
    ep = _wait(lambda: addresses(1), 30, "one endpoint")
    assert ep["metadata"].get("annotations") != {}
    slices = _json(cluster, "get", "endpointslices", "-l", "kubernetes.io/service-name=web")["items"]
    assert slices and all(s["metadata"].get("annotations") != {} for s in slices)


def test_missing_secret_holds_pods_in_create_container_config_error(cluster: Any) -> None:
    k = cluster.kubectl
    k("apply", "-f", "-", input=SECRET_ENV_DEPLOYMENT)

    def status_column() -> list[str] | None:
        rows = [r.split() for r in k("get", "pods", "-l", "app=order-service", "--no-headers").stdout.splitlines()]
        return rows[0] if rows and rows[0][2] == "CreateContainerConfigError" else None

    row = _wait(status_column, 30, "CreateContainerConfigError")
    assert row[1] == "0/1"
    failed = _wait(lambda: [m for r, m in _events(cluster, row[0]) if r == "Failed"], 20, "Failed event")
    assert failed[0] == 'Error: secret "db-credentials" not found'
    k("create", "secret", "generic", "db-credentials", "--from-literal=password=s3cret")
    k("rollout", "status", "deployment/order-service", "--timeout=40s", timeout=50)


def test_autoscale_without_metrics_keeps_min_replicas_and_says_why(cluster: Any) -> None:
    k = cluster.kubectl
    k("create", "deployment", "php-apache", "--image=registry.k8s.io/hpa-example", "--replicas=1")
    k("autoscale", "deployment", "php-apache", "--cpu-percent=50", "--min=2", "--max=10")
    _wait(lambda: _json(cluster, "get", "deployment", "php-apache")["spec"]["replicas"] == 2, 40, "min replicas")
    rescale = _wait(lambda: [m for r, m in _events(cluster, "php-apache") if r == "SuccessfulRescale"], 20,
                    "SuccessfulRescale")
    assert rescale == ["New size: 2; reason: Current number of replicas below Spec.MinReplicas"]
    row = k("get", "hpa", "php-apache", "--no-headers").stdout.split()
    assert row[:4] == ["php-apache", "Deployment/php-apache", "cpu:", "<unknown>/50%"]


REPLICATION_CONTROLLER = """
apiVersion: v1
kind: ReplicationController
metadata:
  name: nginx-rc
spec:
  replicas: 3
  selector:
    app: nginx-rc
  template:
    metadata:
      labels:
        app: nginx-rc
    spec:
      containers:
      - name: nginx
        image: nginx
        ports:
        - containerPort: 80
"""


def test_replication_controller_runs_its_pods(cluster: Any) -> None:
    k = cluster.kubectl
    k("apply", "-f", "-", input=REPLICATION_CONTROLLER)

    def ready() -> list[str] | None:
        row = k("get", "rc", "nginx-rc", "--no-headers").stdout.split()
        return row if row[1:4] == ["3", "3", "3"] else None

    _wait(ready, 30, "rc ready")
    pods = _json(cluster, "get", "pods", "-l", "app=nginx-rc")["items"]
    assert {(r["kind"], r["name"]) for p in pods for r in p["metadata"]["ownerReferences"]} == {
        ("ReplicationController", "nginx-rc")}
    created = [m for r, m in _events(cluster, "nginx-rc") if r == "SuccessfulCreate"]
    assert sorted(created) == sorted(f"Created pod: {p['metadata']['name']}" for p in pods)
    k("delete", "rc", "nginx-rc")
    _wait(lambda: not _json(cluster, "get", "pods", "-l", "app=nginx-rc")["items"], 30, "pods collected")


def test_pod_disruption_budget_counts_allowed_disruptions(cluster: Any) -> None:
    k = cluster.kubectl
    k("create", "deployment", "zk", "--image=nginx:1.25", "--replicas=3")
    k("rollout", "status", "deployment/zk", "--timeout=40s", timeout=50)
    k("create", "pdb", "zk-pdb", "--selector=app=zk", "--max-unavailable=1")

    def allowed() -> list[str] | None:
        row = k("get", "pdb", "zk-pdb", "--no-headers").stdout.split()
        return row if row[3] == "1" else None

    row = _wait(allowed, 20, "allowed disruptions")
    assert row[1:3] == ["N/A", "1"]
    st = _json(cluster, "get", "pdb", "zk-pdb")["status"]
    assert (st["currentHealthy"], st["desiredHealthy"], st["expectedPods"]) == (3, 2, 3)
    assert [(c["type"], c["status"], c["reason"]) for c in st["conditions"]] == [
        ("DisruptionAllowed", "True", "SufficientPods")]
