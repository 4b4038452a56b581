"""Individual defaulting rules: what each SetDefaults_* and the create-time strategy and
admission steps add, and what they leave alone."""

from __future__ import annotations

import base64

import pytest

from apiserver.admission.defaults import default_object
from apiserver.admission.defaults_admission import inject_service_account_token_volume, pod_qos_class
from apiserver.admission.defaults_core import prepare_service_update
from apiserver.admission.defaults_pod import image_tag
from apiserver.errors import StatusError

from .support import defaulted


def pod(**spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec}}


def deployment(template_spec: dict) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}}, "spec": template_spec}}}


@pytest.mark.parametrize(("image", "tag", "policy"), [
    pytest.param("nginx", "latest", "Always", id="no-tag"),
    pytest.param("nginx:latest", "latest", "Always", id="latest"),
    pytest.param("nginx:1.27", "1.27", "IfNotPresent", id="pinned"),
    pytest.param("localhost:5000/team/app", "latest", "Always", id="registry-port-no-tag"),
    pytest.param("nginx@sha256:" + "a" * 64, "", "IfNotPresent", id="digest"),
    pytest.param("Not A Reference", "", "IfNotPresent", id="unparsable"),
])
def test_image_pull_policy_follows_the_tag(image: str, tag: str, policy: str) -> None:
    assert image_tag(image) == tag
    obj = defaulted(pod(containers=[{"name": "c", "image": image}]))
    assert obj["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_explicit_pull_policy_is_kept() -> None:
    obj = defaulted(pod(containers=[{"name": "c", "image": "nginx", "imagePullPolicy": "Never"}]))
    assert obj["spec"]["containers"][0]["imagePullPolicy"] == "Never"


def test_pods_copy_limits_into_requests_but_templates_do_not() -> None:
    limits = {"cpu": "1000m", "memory": "1Gi"}
    obj = defaulted(pod(containers=[{"name": "c", "image": "nginx", "resources": {"limits": dict(limits)}}]))
    assert obj["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "1", "memory": "1Gi"},
                                                         "requests": {"cpu": "1", "memory": "1Gi"}}
    assert obj["status"]["qosClass"] == "Guaranteed"
    dep = defaulted(deployment({"containers": [{"name": "c", "image": "x", "resources": {"limits": dict(limits)}}]}))
    assert dep["spec"]["template"]["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "1", "memory": "1Gi"}}


def test_resource_quantities_are_stored_canonically() -> None:
    obj = defaulted(pod(containers=[{"name": "c", "image": "x", "resources": {
        "requests": {"cpu": 0.5, "memory": "1024Mi", "ephemeral-storage": "0.1m"}}}]))
    assert obj["spec"]["containers"][0]["resources"]["requests"] == {
        "cpu": "500m", "memory": "1Gi", "ephemeral-storage": "1m"}


def test_a_bad_quantity_fails_like_decoding() -> None:
    obj = deployment({"containers": [{"name": "c", "image": "x", "resources": {"limits": {"memory": "1GB"}}}]})
    with pytest.raises(StatusError) as err:
        default_object("apps", "v1", "Deployment", obj)
    assert err.value.code == 400
    assert err.value.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: quantities must match the regular '
        "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


def test_volume_defaults() -> None:
    volumes = [
        {"name": "cfg", "configMap": {"name": "c"}},
        {"name": "sec", "secret": {"secretName": "s"}},
        {"name": "scratch"},
        {"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu"}}]}},
        {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
        {"name": "cache", "emptyDir": {"sizeLimit": "1024Mi"}},
    ]
    spec = defaulted(pod(volumes=volumes))["spec"]
    assert spec["volumes"] == [
        {"name": "cfg", "configMap": {"name": "c", "defaultMode": 420}},
        {"name": "sec", "secret": {"secretName": "s", "defaultMode": 420}},
        {"name": "scratch", "emptyDir": {}},
        {"name": "info", "downwardAPI": {"defaultMode": 420, "items": [
            {"path": "labels", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}},
            {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "0"}}]}},
        {"name": "token", "projected": {"defaultMode": 420,
                                        "sources": [{"serviceAccountToken": {"path": "t", "expirationSeconds": 3600}}]}},
        {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}},
    ]


def test_probe_and_env_defaults() -> None:
    ctr = {"name": "c", "image": "x", "livenessProbe": {"grpc": {"port": 9000}},
           "lifecycle": {"preStop": {"httpGet": {"port": 80}}},
           "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}
    out = defaulted(pod(containers=[ctr]))["spec"]["containers"][0]
    assert out["livenessProbe"] == {"grpc": {"port": 9000, "service": ""}, "timeoutSeconds": 1, "periodSeconds": 10,
                                    "successThreshold": 1, "failureThreshold": 3}
    assert out["lifecycle"]["preStop"]["httpGet"] == {"port": 80, "path": "/", "scheme": "HTTP"}
    assert out["env"][0]["valueFrom"]["fieldRef"] == {"apiVersion": "v1", "fieldPath": "spec.nodeName"}


def test_host_network_pods_get_host_ports() -> None:
    obj = defaulted(pod(hostNetwork=True, containers=[{"name": "c", "image": "x", "ports": [{"containerPort": 53}]}]))
    assert obj["spec"]["containers"][0]["ports"] == [{"containerPort": 53, "hostPort": 53, "protocol": "TCP"}]


def test_pod_admission_respects_existing_choices() -> None:
    obj = defaulted(pod(serviceAccountName="builder", priorityClassName="system-node-critical",
                        tolerations=[{"operator": "Exists"}]))
    spec = obj["spec"]
    assert (spec["serviceAccount"], spec["priority"], spec["tolerations"]) == (
        "builder", 2000001000, [{"operator": "Exists"}])


def test_admission_runs_only_on_create() -> None:
    obj = pod()
    obj["metadata"]["resourceVersion"] = "7"
    default_object("", "v1", "Pod", obj)
    assert "tolerations" not in obj["spec"] and "status" not in obj


@pytest.mark.parametrize(("containers", "qos"), [
    pytest.param([{"resources": {}}], "BestEffort", id="best-effort"),
    pytest.param([{"resources": {"requests": {"cpu": "100m"}}}], "Burstable", id="burstable"),
    pytest.param([{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}}],
                 "Guaranteed", id="guaranteed"),
    pytest.param([{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}}}],
                 "Burstable", id="request-below-limit"),
])
def test_qos_class(containers: list, qos: str) -> None:
    assert pod_qos_class({"spec": {"containers": containers}}) == qos


def test_service_account_token_volume_is_opt_in() -> None:
    obj = defaulted(pod())
    assert "volumes" not in obj["spec"]
    name = inject_service_account_token_volume(obj, suffix="abcde")
    assert name == "kube-api-access-abcde"
    assert obj["spec"]["containers"][0]["volumeMounts"] == [
        {"name": name, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True}]


def service(**spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": spec}


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param({"type": "NodePort", "ports": [{"port": 80}]},
                 {"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                  "sessionAffinity": "None", "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
                  "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}, id="node-port"),
    pytest.param({"clusterIP": "None", "ports": [{"port": 80}]},
                 {"clusterIP": "None", "clusterIPs": ["None"], "type": "ClusterIP",
                  "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "sessionAffinity": "None",
                  "internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "RequireDualStack"},
                 id="headless-without-selector"),
    pytest.param({"type": "ExternalName", "externalName": "db.example.com"},
                 {"type": "ExternalName", "externalName": "db.example.com", "sessionAffinity": "None"},
                 id="external-name"),
    pytest.param({"sessionAffinity": "ClientIP", "ports": [{"port": 80, "targetPort": "http"}]},
                 {"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
                  "type": "ClusterIP", "ports": [{"port": 80, "protocol": "TCP", "targetPort": "http"}],
                  "internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"},
                 id="client-ip-affinity"),
])
def test_service_defaults(spec: dict, expected: dict) -> None:
    assert defaulted(service(**spec))["spec"] == expected


def test_service_update_keeps_allocated_values() -> None:
    old = defaulted(service(type="NodePort", clusterIP="10.96.0.7", ports=[{"name": "web", "port": 80, "nodePort": 30080}]))
    new = service(type="NodePort", ports=[{"name": "web", "port": 80}])
    prepare_service_update(new, old)
    assert (new["spec"]["clusterIP"], new["spec"]["clusterIPs"], new["spec"]["ports"][0]["nodePort"]) == (
        "10.96.0.7", ["10.96.0.7"], 30080)


def test_secret_string_data_is_merged_into_data() -> None:
    obj = defaulted({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                     "data": {"user": base64.b64encode(b"old").decode()}, "stringData": {"user": "admin"}})
    assert obj == {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque",
                   "data": {"user": base64.b64encode(b"admin").decode()}}


def test_namespace_finalizer_is_added_only_on_create() -> None:
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns", "resourceVersion": "3"},
           "spec": {"finalizers": []}}
    default_object("", "v1", "Namespace", obj)
    assert obj["spec"] == {"finalizers": []}
    assert obj["metadata"]["labels"] == {"kubernetes.io/metadata.name": "ns"}


def job(**spec: object) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}], "restartPolicy": "Never"}},
                     **spec}}


def test_job_selector_needs_the_uid() -> None:
    assert "selector" not in defaulted(job())["spec"]


def test_job_manual_selector_is_left_alone() -> None:
    obj = job(manualSelector=True, selector={"matchLabels": {"app": "x"}})
    obj["metadata"]["uid"] = "u"
    out = defaulted(obj)
    assert out["spec"]["selector"] == {"matchLabels": {"app": "x"}}
    assert "labels" not in out["spec"]["template"]["metadata"]


def test_job_parallelism_without_completions() -> None:
    spec = defaulted(job(parallelism=3))["spec"]
    assert (spec["parallelism"], "completions" in spec, spec["backoffLimit"]) == (3, False, 6)


def test_limit_range_container_defaults_fill_from_max_and_min() -> None:
    obj = defaulted({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "l"}, "spec": {"limits": [
        {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}]}})
    assert obj["spec"]["limits"][0] == {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"},
                                        "default": {"cpu": "2"}, "defaultRequest": {"cpu": "2", "memory": "64Mi"}}


def test_small_group_defaults() -> None:
    netpol = defaulted({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "n"},
                        "spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}})
    assert netpol["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert netpol["spec"]["egress"][0]["ports"] == [{"port": 53, "protocol": "TCP"}]
    sc = defaulted({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "s"},
                    "provisioner": "example.com/x"})
    assert (sc["reclaimPolicy"], sc["volumeBindingMode"]) == ("Delete", "Immediate")
    eps = defaulted({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "e"},
                     "addressType": "IPv4", "ports": [{"port": 80}]})
    assert eps["ports"] == [{"port": 80, "name": "", "protocol": "TCP"}]
    crb = defaulted({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                     "metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
                     "subjects": [{"kind": "User", "name": "alice"}]})
    assert crb["roleRef"]["apiGroup"] == crb["subjects"][0]["apiGroup"] == "rbac.authorization.k8s.io"


def test_hpa_defaults_cpu_metric_and_behavior() -> None:
    obj = defaulted({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
                     "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "maxReplicas": 5,
                              "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}})
    spec = obj["spec"]
    assert spec["minReplicas"] == 1
    assert spec["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 80}}}]
    assert spec["behavior"] == {
        "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]},
        "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 15}]}}


def test_pv_and_node_defaults() -> None:
    pv = defaulted({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv"},
                    "spec": {"capacity": {"storage": "10240Mi"}, "hostPath": {"path": "/data"}}})
    assert pv["spec"] == {"capacity": {"storage": "10Gi"}, "hostPath": {"path": "/data", "type": ""},
                          "persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem"}
    assert pv["status"] == {"phase": "Pending"}
    node = defaulted({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
                      "status": {"capacity": {"cpu": "4", "memory": "8192Mi"}}})
    assert node["status"]["allocatable"] == {"cpu": "4", "memory": "8Gi"}


def test_unknown_kinds_are_left_alone() -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "CronTab", "metadata": {"name": "c"}, "spec": {"x": 1}}
    assert defaulted(obj) == obj
