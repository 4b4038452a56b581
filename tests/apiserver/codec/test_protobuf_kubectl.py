"""The proof that the protobuf decoder is right: real kubectl 1.32 is the oracle.

For each generator command, the body kubectl POSTs (captured by `capture.CaptureServer`) must
decode to exactly the JSON that `kubectl ... --dry-run=client -o json` prints for the same
arguments: both are the same Go object, once through gogo-protobuf and once through
encoding/json. Nothing is normalized. Commands without a dry run (`auth can-i`, `auth whoami`,
`create token`) are compared with objects written from the Go types.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apiserver.codec.protobuf import decode
from tests.apiserver.codec.capture import KUBECTL, CaptureServer, Kubectl
from tests.apiserver.codec.sample_objects import cronjob_with_template, is_subset

pytestmark = pytest.mark.skipif(shutil.which(KUBECTL) is None, reason="needs /usr/bin/kubectl")

WEB = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
    "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
        "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
}

# Fields of the sample CronJob that kubectl 1.32's Go types do not know yet (added in 1.33+),
# so Go drops them before encoding.
NEWER_THAN_1_32 = {"lifecycle.stopSignal", "spec.hostnameOverride"}


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    server = CaptureServer()
    server.start()
    server.objects["/apis/apps/v1/namespaces/default/deployments/web"] = WEB
    try:
        yield Kubectl(server, tmp_path_factory.mktemp("kubectl-home"))
    finally:
        server.stop()


GENERATORS = [
    pytest.param(["create", "namespace", "ns1"], id="namespace"),
    pytest.param(["create", "configmap", "cm1", "--from-literal=a=1", "--from-literal=b=two"], id="configmap"),
    pytest.param(["create", "secret", "generic", "s1", "--from-literal=user=admin", "--from-literal=pw=s3cr3t"],
                 id="secret-generic"),
    pytest.param(["create", "secret", "generic", "s2", "--from-literal=empty=", "--type=kubernetes.io/basic-auth"],
                 id="secret-generic-empty-value"),
    pytest.param(["create", "secret", "docker-registry", "reg1", "--docker-server=r.example",
                  "--docker-username=u", "--docker-password=p", "--docker-email=e@example.com"],
                 id="secret-docker-registry"),
    pytest.param(["create", "deployment", "web", "--image=nginx", "--replicas=3", "--port=80"], id="deployment"),
    pytest.param(["create", "deployment", "web0", "--image=nginx", "--replicas=0"], id="deployment-zero-replicas"),
    pytest.param(["create", "deployment", "multi", "--image=a", "--image=b"], id="deployment-two-images"),
    pytest.param(["create", "service", "clusterip", "svc1", "--tcp=80:8080"], id="service-clusterip"),
    pytest.param(["create", "service", "clusterip", "headless", "--clusterip=None"], id="service-headless"),
    pytest.param(["create", "service", "nodeport", "svc2", "--tcp=80:8080", "--node-port=30080"],
                 id="service-nodeport"),
    pytest.param(["create", "service", "loadbalancer", "svc3", "--tcp=443:8443"], id="service-loadbalancer"),
    pytest.param(["create", "service", "externalname", "ext", "--external-name=example.com"],
                 id="service-externalname"),
    pytest.param(["create", "serviceaccount", "sa1"], id="serviceaccount"),
    pytest.param(["create", "role", "r1", "--verb=get,list", "--resource=pods,deployments.apps",
                  "--resource-name=x"], id="role"),
    pytest.param(["create", "rolebinding", "rb1", "--role=r1", "--user=alice", "--group=devs",
                  "--serviceaccount=default:sa1"], id="rolebinding"),
    pytest.param(["create", "clusterrole", "cr1", "--verb=get", "--resource=nodes", "--non-resource-url=/healthz"],
                 id="clusterrole"),
    pytest.param(["create", "clusterrole", "cr2", "--aggregation-rule=rbac.example.com/aggregate=true"],
                 id="clusterrole-aggregated-rules-null"),
    pytest.param(["create", "clusterrolebinding", "crb1", "--clusterrole=cr1", "--user=bob"],
                 id="clusterrolebinding"),
    pytest.param(["create", "job", "j1", "--image=busybox", "--", "echo", "hi"], id="job"),
    pytest.param(["create", "cronjob", "cj1", "--image=busybox", "--schedule=*/1 * * * *", "--", "date"],
                 id="cronjob"),
    pytest.param(["create", "ingress", "ing1", "--rule=foo.com/bar*=svc1:8080,tls=my-cert", "--class=nginx"],
                 id="ingress"),
    pytest.param(["create", "ingress", "ing2", "--default-backend=svc:http", "--rule=/x=svc2:80"],
                 id="ingress-default-backend"),
    pytest.param(["create", "poddisruptionbudget", "pdb1", "--selector=app=web", "--min-available=1"],
                 id="pdb-min-available"),
    pytest.param(["create", "poddisruptionbudget", "pdb2", "--selector=app=web", "--max-unavailable=50%"],
                 id="pdb-max-unavailable-percent"),
    pytest.param(["create", "priorityclass", "pc1", "--value=1000", "--description=high", "--global-default"],
                 id="priorityclass"),
    pytest.param(["create", "priorityclass", "pc0", "--value=0", "--preemption-policy=Never"],
                 id="priorityclass-zero"),
    pytest.param(["create", "quota", "q1", "--hard=cpu=1,memory=1G,pods=2", "--scopes=BestEffort"], id="quota"),
    pytest.param(["autoscale", "deployment", "web", "--min=2", "--max=5", "--cpu-percent=80"], id="autoscale"),
    pytest.param(["autoscale", "deployment", "web", "--max=5"], id="autoscale-defaults"),
]


@pytest.mark.parametrize("args", GENERATORS)
def test_generator_body_decodes_to_the_dry_run_object(kubectl: Kubectl, args: list[str]) -> None:
    captured = kubectl.capture(*args)
    assert captured.content_type == "application/vnd.kubernetes.protobuf"
    assert decode(captured.body) == kubectl.dry_run(*args)


def test_tls_secret_keeps_pem_bytes(kubectl: Kubectl, tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-subj", "/CN=test", "-days", "1"],
                   check=True, capture_output=True, timeout=30)
    args = ["create", "secret", "tls", "tls1", f"--cert={cert}", f"--key={key}"]
    assert decode(kubectl.capture(*args).body) == kubectl.dry_run(*args)


@pytest.mark.parametrize("zero", [pytest.param(False, id="every-field-set"), pytest.param(True, id="zero-values")])
def test_job_from_cronjob_round_trips_the_whole_pod_spec(kubectl: Kubectl, zero: bool) -> None:
    cronjob = cronjob_with_template("full", zero=zero)
    kubectl.server.objects["/apis/batch/v1/namespaces/default/cronjobs/full"] = cronjob
    args = ["create", "job", "from-cron", "--from=cronjob/full"]
    printed = kubectl.dry_run(*args)
    assert decode(kubectl.capture(*args).body) == printed
    if zero:
        return  # omitempty zero values are meant to disappear
    # Every field we served survived Go's JSON decoding: the tables' JSON names are Go's.
    lost = is_subset(cronjob["spec"]["jobTemplate"]["spec"], printed["spec"])
    assert [p for p in lost if not any(p.endswith(n) for n in NEWER_THAN_1_32)] == []


def _review(kind: str, group: str, spec: dict[str, Any] | None, status: dict[str, Any]) -> dict[str, Any]:
    obj: dict[str, Any] = {"kind": kind, "apiVersion": f"{group}/v1", "metadata": {"creationTimestamp": None}}
    if spec is not None:
        obj["spec"] = spec
    obj["status"] = status
    return obj


NO_DRY_RUN = [
    pytest.param(["auth", "can-i", "get", "pods"], "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                 _review("SelfSubjectAccessReview", "authorization.k8s.io",
                         {"resourceAttributes": {"namespace": "default", "verb": "get", "resource": "pods"}},
                         {"allowed": False}), id="can-i"),
    pytest.param(["auth", "can-i", "create", "deployments.apps", "--subresource=scale", "-n", "kube-system"],
                 "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                 _review("SelfSubjectAccessReview", "authorization.k8s.io", {"resourceAttributes": {
                     "namespace": "kube-system", "verb": "create", "group": "apps", "resource": "deployments",
                     "subresource": "scale"}}, {"allowed": False}), id="can-i-subresource"),
    pytest.param(["auth", "can-i", "get", "/logs"], "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                 _review("SelfSubjectAccessReview", "authorization.k8s.io",
                         {"nonResourceAttributes": {"path": "/logs", "verb": "get"}}, {"allowed": False}),
                 id="can-i-non-resource"),
    pytest.param(["auth", "can-i", "--list", "-n", "team"], "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
                 _review("SelfSubjectRulesReview", "authorization.k8s.io", {"namespace": "team"},
                         {"resourceRules": None, "nonResourceRules": None, "incomplete": False}), id="can-i-list"),
    pytest.param(["auth", "whoami"], "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                 _review("SelfSubjectReview", "authentication.k8s.io", None, {"userInfo": {}}), id="whoami"),
    pytest.param(["create", "token", "sa1"], "/api/v1/namespaces/default/serviceaccounts/sa1/token",
                 _review("TokenRequest", "authentication.k8s.io", {"audiences": None},
                         {"token": "", "expirationTimestamp": None}), id="token"),
    pytest.param(["create", "token", "sa1", "--audience=a", "--audience=b", "--duration=10m",
                  "--bound-object-kind=Pod", "--bound-object-name=p1", "--bound-object-uid=u1"],
                 "/api/v1/namespaces/default/serviceaccounts/sa1/token",
                 _review("TokenRequest", "authentication.k8s.io", {
                     "audiences": ["a", "b"], "expirationSeconds": 600,
                     "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p1", "uid": "u1"}},
                     {"token": "", "expirationTimestamp": None}), id="token-bound"),
]


@pytest.mark.parametrize(("args", "path", "expected"), NO_DRY_RUN)
def test_review_and_token_bodies(kubectl: Kubectl, args: list[str], path: str, expected: dict[str, Any]) -> None:
    captured = kubectl.capture(*args)
    assert captured.path == path
    assert decode(captured.body) == expected
