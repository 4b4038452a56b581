"""The real kubectl 1.32 against `mkp up`: create, apply, get, describe, edit, patch,
label, annotate, scale, delete, diff, generators; outputs shaped as on a real cluster."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.e2e
MANIFESTS = Path(__file__).parent / "manifests"


def _columns(output: str) -> list[str]:
    return output.splitlines()[0].split()


def test_version_reports_1_32(mkp_cluster_module):
    out = json.loads(mkp_cluster_module.kubectl("version", "-o", "json").stdout)
    assert out["serverVersion"]["major"] == "1" and out["serverVersion"]["minor"] == "32"


def test_api_resources_lists_core_and_groups(mkp_cluster_module):
    out = mkp_cluster_module.kubectl("api-resources").stdout
    assert _columns(out) == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert re.search(r"^pods\s+po\s+v1\s+true\s+Pod$", out, re.M)
    assert re.search(r"^deployments\s+deploy\s+apps/v1\s+true\s+Deployment$", out, re.M)
    assert re.search(r"^namespaces\s+ns\s+v1\s+false\s+Namespace$", out, re.M)
    versions = mkp_cluster_module.kubectl("api-versions").stdout.split()
    for gv in ("v1", "apps/v1", "batch/v1", "autoscaling/v2", "autoscaling/v1", "networking.k8s.io/v1",
               "rbac.authorization.k8s.io/v1", "apiextensions.k8s.io/v1", "policy/v1"):
        assert gv in versions


def test_explain_reads_server_openapi(mkp_cluster_module):
    out = mkp_cluster_module.kubectl("explain", "deployment.spec.strategy").stdout
    assert "GROUP:      apps" in out and "KIND:       Deployment" in out
    assert "rollingUpdate" in out and "RollingUpdateDeployment" in out


def test_system_namespaces_exist(mkp_cluster_module):
    out = mkp_cluster_module.kubectl("get", "namespaces").stdout
    assert _columns(out) == ["NAME", "STATUS", "AGE"]
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert re.search(rf"^{ns}\s+Active\s+\S+$", out, re.M)


def test_apply_twice_is_unchanged_then_configured(mkp_cluster):
    k = mkp_cluster.kubectl
    path = str(MANIFESTS / "deployment.yaml")
    assert k("apply", "-f", path).stdout.strip() == "deployment.apps/order-service created"
    assert k("apply", "-f", path).stdout.strip() == "deployment.apps/order-service unchanged"
    edited = (MANIFESTS / "deployment.yaml").read_text().replace("replicas: 3", "replicas: 5")
    assert k("apply", "-f", "-", input=edited).stdout.strip() == "deployment.apps/order-service configured"
    dep = json.loads(k("get", "deploy", "order-service", "-o", "json", "--show-managed-fields").stdout)
    assert dep["spec"]["replicas"] == 5
    assert dep["metadata"]["generation"] == 2
    # defaults as on a real cluster
    assert dep["spec"]["revisionHistoryLimit"] == 10 and dep["spec"]["progressDeadlineSeconds"] == 600
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["ports"][0]["protocol"] == "TCP"
    assert container["resources"]["limits"]["cpu"] == "1" and container["resources"]["requests"]["memory"] == "512Mi"
    assert dep["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    managers = {m["manager"] for m in dep["metadata"]["managedFields"]}
    assert "kubectl-client-side-apply" in managers


def test_get_output_forms(mkp_cluster):
    k = mkp_cluster.kubectl
    k("apply", "-f", str(MANIFESTS / "deployment.yaml"))
    table = k("get", "deployments").stdout
    assert _columns(table) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert re.search(r"^order-service\s+[0-3]/3\s+[0-3]\s+[0-3]\s+\d+s$", table, re.M)  # controllers may be quick
    wide = k("get", "deployments", "-o", "wide").stdout
    assert _columns(wide) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert "walmart/order-service:2.1.0" in wide and "app=order-service" in wide
    assert k("get", "deploy", "-o", "name").stdout.strip() == "deployment.apps/order-service"
    assert k("get", "deploy", "order-service", "-o", "jsonpath={.spec.replicas}").stdout == "3"
    doc = yaml.safe_load(k("get", "deploy", "order-service", "-o", "yaml").stdout)
    assert doc["kind"] == "Deployment" and doc["metadata"]["uid"]
    labels = k("get", "deploy", "--show-labels").stdout
    assert _columns(labels)[-1] == "LABELS" and "app=order-service" in labels
    assert "order-service" in k("get", "deploy", "-l", "app=order-service").stdout
    assert "No resources found" in k("get", "deploy", "-l", "app in (other)").stderr
    assert "order-service" in k("get", "deploy", "--field-selector", "metadata.name=order-service").stdout
    all_ns = k("get", "deploy", "-A").stdout
    assert _columns(all_ns)[0] == "NAMESPACE" and re.search(r"^default\s+order-service", all_ns, re.M)
    bad = k("get", "pods", "--field-selector", "spec.bogus=x", check=False)
    assert bad.returncode != 0 and "field label not supported: spec.bogus" in bad.stderr


def test_describe_deployment(mkp_cluster):
    mkp_cluster.kubectl("apply", "-f", str(MANIFESTS / "deployment.yaml"))
    out = mkp_cluster.kubectl("describe", "deployment", "order-service").stdout
    assert re.search(r"^Name:\s+order-service$", out, re.M)
    assert re.search(r"^StrategyType:\s+RollingUpdate$", out, re.M)
    assert re.search(r"^RollingUpdateStrategy:\s+0 max unavailable, 1 max surge$", out, re.M)
    assert "walmart/order-service:2.1.0" in out


def test_edit_patch_label_annotate_scale(mkp_cluster, tmp_path):
    k = mkp_cluster.kubectl
    k("apply", "-f", str(MANIFESTS / "deployment.yaml"))
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/replicas: 3/replicas: 4/' \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    env = dict(mkp_cluster.env, KUBE_EDITOR=str(editor))
    import subprocess

    edit = subprocess.run(["/usr/bin/kubectl", "--kubeconfig", str(mkp_cluster.kubeconfig), "edit", "deploy/order-service"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert edit.returncode == 0, edit.stderr
    assert edit.stdout.strip() == "deployment.apps/order-service edited"
    assert k("get", "deploy", "order-service", "-o", "jsonpath={.spec.replicas}").stdout == "4"
    assert k("patch", "deploy", "order-service", "-p", '{"spec":{"replicas":2}}').stdout.strip() == \
        "deployment.apps/order-service patched"
    k("patch", "deploy", "order-service", "--type=merge", "-p", '{"metadata":{"labels":{"tier":"backend"}}}')
    k("patch", "deploy", "order-service", "--type=json", "-p", '[{"op":"replace","path":"/spec/replicas","value":1}]')
    k("patch", "deploy", "order-service", "-p",
      '{"spec":{"template":{"spec":{"containers":[{"name":"order-service","image":"walmart/order-service:2.2.0"}]}}}}')
    dep = json.loads(k("get", "deploy", "order-service", "-o", "json").stdout)
    assert dep["spec"]["replicas"] == 1 and dep["metadata"]["labels"]["tier"] == "backend"
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "walmart/order-service:2.2.0" and container["ports"][0]["containerPort"] == 8080
    assert k("label", "deploy", "order-service", "team=orders").stdout.strip() == "deployment.apps/order-service labeled"
    k("label", "deploy", "order-service", "tier-")
    assert k("annotate", "deploy", "order-service", "owner=me").stdout.strip() == \
        "deployment.apps/order-service annotated"
    assert k("scale", "deploy", "order-service", "--replicas=6").stdout.strip() == "deployment.apps/order-service scaled"
    dep = json.loads(k("get", "deploy", "order-service", "-o", "json").stdout)
    assert dep["spec"]["replicas"] == 6 and "tier" not in dep["metadata"]["labels"]
    assert dep["metadata"]["labels"]["team"] == "orders" and dep["metadata"]["annotations"]["owner"] == "me"


def test_server_side_apply_and_conflict(mkp_cluster):
    k = mkp_cluster.kubectl
    path = str(MANIFESTS / "deployment.yaml")
    assert k("apply", "--server-side", "-f", path).stdout.strip() == "deployment.apps/order-service serverside-applied"
    k("scale", "deploy", "order-service", "--replicas=7")
    conflict = k("apply", "--server-side", "-f", path, check=False)
    assert conflict.returncode != 0 and "conflict" in conflict.stderr.lower() and ".spec.replicas" in conflict.stderr
    k("apply", "--server-side", "--force-conflicts", "-f", path)
    assert k("get", "deploy", "order-service", "-o", "jsonpath={.spec.replicas}").stdout == "3"


def test_diff_shows_changes(mkp_cluster):
    k = mkp_cluster.kubectl
    path = MANIFESTS / "deployment.yaml"
    k("apply", "-f", str(path))
    same = k("diff", "-f", str(path), check=False)
    assert same.returncode == 0, same.stderr
    changed = k("diff", "-f", "-", input=path.read_text().replace("replicas: 3", "replicas: 9"), check=False)
    assert changed.returncode == 1, changed.stderr
    assert "-  replicas: 3" in changed.stdout and "+  replicas: 9" in changed.stdout


def test_generators_send_protobuf(mkp_cluster):
    k = mkp_cluster.kubectl
    assert k("create", "namespace", "commerce").stdout.strip() == "namespace/commerce created"
    assert k("create", "configmap", "app-config", "-n", "commerce", "--from-literal=LOG_LEVEL=info").stdout.strip() == \
        "configmap/app-config created"
    assert k("create", "secret", "generic", "db-credentials", "-n", "commerce",
             "--from-literal=password=s3cret").stdout.strip() == "secret/db-credentials created"
    assert k("create", "deployment", "web", "-n", "commerce", "--image=nginx:1.27", "--replicas=2",
             "--port=80").stdout.strip() == "deployment.apps/web created"
    cm = json.loads(k("get", "cm", "app-config", "-n", "commerce", "-o", "json").stdout)
    assert cm["data"] == {"LOG_LEVEL": "info"}
    secret = json.loads(k("get", "secret", "db-credentials", "-n", "commerce", "-o", "json").stdout)
    assert secret["type"] == "Opaque" and secret["data"]["password"] == "czNjcmV0"
    dep = json.loads(k("get", "deploy", "web", "-n", "commerce", "-o", "json").stdout)
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 80
    out = k("get", "all", "-n", "commerce").stdout
    assert "deployment.apps/web" in out


def test_delete_forms_and_finalizer(mkp_cluster):
    k = mkp_cluster.kubectl
    created = k("create", "-f", "-", input="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-file\ndata:\n  k: v\n")
    assert created.stdout.strip() == "configmap/from-file created"
    k("delete", "-f", "-", input="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-file\n")
    for name in ("a", "b", "c"):
        k("create", "configmap", name, "--from-literal=k=v")
    k("label", "configmap", "a", "b", "group=x")
    assert k("delete", "configmap", "c").stdout.strip() == 'configmap "c" deleted'
    out = k("delete", "configmap", "-l", "group=x").stdout
    assert 'configmap "a" deleted' in out and 'configmap "b" deleted' in out
    k("create", "configmap", "held", "--from-literal=k=v")
    k("patch", "configmap", "held", "--type=merge", "-p", '{"metadata":{"finalizers":["example.com/hold"]}}')
    k("delete", "configmap", "held", "--wait=false")
    held = json.loads(k("get", "configmap", "held", "-o", "json").stdout)
    assert held["metadata"]["deletionTimestamp"]
    k("patch", "configmap", "held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    gone = k("get", "configmap", "held", check=False)
    assert gone.returncode != 0 and 'configmaps "held" not found' in gone.stderr
    k("create", "configmap", "d", "--from-literal=k=v")
    out = k("delete", "configmap", "--all").stdout
    assert 'configmap "d" deleted' in out


def test_custom_resource_printer_columns(mkp_cluster):
    k = mkp_cluster.kubectl
    out = k("apply", "-f", str(MANIFESTS / "crd.yaml")).stdout.strip()
    assert out == "customresourcedefinition.apiextensions.k8s.io/crontabs.stable.example.com created"
    k("wait", "--for=condition=Established", "crd/crontabs.stable.example.com", "--timeout=20s")
    assert k("apply", "-f", str(MANIFESTS / "crontab.yaml")).stdout.strip() == "crontab.stable.example.com/my-cron created"
    table = k("get", "crontabs").stdout
    assert _columns(table) == ["NAME", "SPEC", "REPLICAS", "AGE"]
    assert re.search(r"^my-cron\s+\* \* \* \* \*/5\s+2\s+\d+s$", table, re.M)
    assert "my-cron" in k("get", "ct").stdout
    k("scale", "crontab", "my-cron", "--replicas=4")
    assert k("get", "ct", "my-cron", "-o", "jsonpath={.spec.replicas}").stdout == "4"
    bad = k("apply", "-f", "-", input=(MANIFESTS / "crontab.yaml").read_text().replace("replicas: 2", "replicas: -1"),
            check=False)
    assert bad.returncode != 0 and "spec.replicas" in bad.stderr


@pytest.mark.skipif(not os.access("/usr/bin/kubectl", os.X_OK), reason="kubectl missing")
def test_get_watch_streams_a_change(mkp_cluster):
    import subprocess
    import time

    k = mkp_cluster.kubectl
    k("create", "configmap", "watched", "--from-literal=k=v")
    proc = subprocess.Popen(["/usr/bin/kubectl", "--kubeconfig", str(mkp_cluster.kubeconfig), "get", "configmap",
                             "watched", "-w", "-o", "jsonpath={.data.k}{\"\\n\"}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=mkp_cluster.env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "v"
        time.sleep(0.3)
        k("patch", "configmap", "watched", "--type=merge", "-p", '{"data":{"k":"changed"}}')
        assert proc.stdout.readline().strip() == "changed"
    finally:
        proc.kill()
        proc.wait(timeout=10)
