"""Pods and the workloads that template them: the mistakes users make most often, with
the exact messages a Kubernetes 1.32 API server returns."""

from __future__ import annotations

import copy

import pytest

from .support import errors, status_message, stored

SUBDOMAIN_REGEX = "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*'"


def deployment(**changes: object) -> dict:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}
    obj["spec"].update(changes)
    return obj


def container(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]["containers"][0]


def pod(**spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"containers": [{"name": "web", "image": "nginx"}], **spec}}


def test_valid_deployment_has_no_errors() -> None:
    assert errors(deployment()) == []


def test_selector_mismatch_reads_like_kubectl() -> None:
    obj = deployment()
    obj["spec"]["template"]["metadata"]["labels"] = {"app": "webapp", "tier": "fe"}
    assert status_message(obj) == (
        'Deployment.apps "web" is invalid: spec.template.metadata.labels: Invalid value: '
        'map[string]string{"app":"webapp", "tier":"fe"}: `selector` does not match template `labels`')


def test_missing_selector_also_reports_the_mismatch() -> None:
    obj = deployment()
    del obj["spec"]["selector"]
    assert errors(obj) == [
        "spec.selector: Required value",
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
        "`selector` does not match template `labels`",
    ]


def test_empty_selector_is_invalid() -> None:
    assert errors(deployment(selector={})) == [
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"]


@pytest.mark.parametrize(("mutate", "expected"), [
    pytest.param(lambda c: c.pop("image"), ["spec.template.spec.containers[0].image: Required value"],
                 id="missing-image"),
    pytest.param(lambda c: c.update(name="Web_1"),
                 ['spec.template.spec.containers[0].name: Invalid value: "Web_1": a lowercase RFC 1123 label must '
                  "consist of lower case alphanumeric characters or '-', and must start and end with an "
                  "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
                  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"], id="bad-container-name"),
    pytest.param(lambda c: c.update(ports=[{"containerPort": 70000}]),
                 ["spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between "
                  "1 and 65535, inclusive"], id="port-out-of-range"),
    pytest.param(lambda c: c.update(ports=[{"containerPort": 80, "protocol": "HTTP"}]),
                 ['spec.template.spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported '
                  'values: "SCTP", "TCP", "UDP"'], id="bad-protocol"),
    pytest.param(lambda c: c.update(ports=[{"name": "http", "containerPort": 80}, {"name": "http", "containerPort": 81}]),
                 ['spec.template.spec.containers[0].ports[1].name: Duplicate value: "http"'], id="duplicate-port-name"),
    pytest.param(lambda c: c.update(resources={"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}),
                 ['spec.template.spec.containers[0].resources.requests: Invalid value: "2": must be less than or '
                  "equal to cpu limit of 1"], id="request-above-limit"),
    pytest.param(lambda c: c.update(resources={"requests": {"memory": "-1Gi"}}),
                 ['spec.template.spec.containers[0].resources.requests[memory]: Invalid value: "-1Gi": must be '
                  "greater than or equal to 0"], id="negative-request"),
    pytest.param(lambda c: c.update(resources={"limits": {"gpu": "1"}}),
                 ['spec.template.spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a '
                  "standard resource type or fully qualified",
                  'spec.template.spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a '
                  "standard resource for containers"], id="unknown-resource"),
    pytest.param(lambda c: c.update(resources={"limits": {"example.com/gpu": "1"}, "requests": {"example.com/gpu": "0.5"}}),
                 ['spec.template.spec.containers[0].resources.requests[example.com/gpu]: Invalid value: "500m": '
                  "must be an integer",
                  'spec.template.spec.containers[0].resources.requests: Invalid value: "500m": must be equal to '
                  "example.com/gpu limit of 1"], id="extended-resource-overcommit"),
    pytest.param(lambda c: c.update(env=[{"name": "A=B", "value": "x"}]),
                 ['spec.template.spec.containers[0].env[0].name: Invalid value: "A=B": a valid environment '
                  "variable name must consist only of printable ASCII characters other than '='"], id="bad-env-name"),
    pytest.param(lambda c: c.update(env=[{"name": "A", "valueFrom": {}}]),
                 ['spec.template.spec.containers[0].env[0].valueFrom: Invalid value: "": must specify one of: '
                  "`fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"], id="empty-value-from"),
    pytest.param(lambda c: c.update(volumeMounts=[{"name": "data", "mountPath": "/data"}]),
                 ['spec.template.spec.containers[0].volumeMounts[0].name: Not found: "data"'], id="unknown-volume"),
    pytest.param(lambda c: c.update(livenessProbe={"httpGet": {"port": 8080}, "tcpSocket": {"port": 8080}}),
                 ["spec.template.spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than "
                  "1 handler type"], id="two-probe-handlers"),
    pytest.param(lambda c: c.update(readinessProbe={"periodSeconds": 5}),
                 ["spec.template.spec.containers[0].readinessProbe: Required value: must specify a handler type"],
                 id="probe-without-handler"),
    pytest.param(lambda c: c.update(livenessProbe={"exec": {"command": ["true"]}, "successThreshold": 2}),
                 ["spec.template.spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"],
                 id="liveness-success-threshold"),
    pytest.param(lambda c: c.update(imagePullPolicy="Sometimes"),
                 ['spec.template.spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported '
                  'values: "Always", "IfNotPresent", "Never"'], id="bad-pull-policy"),
])
def test_container_mistakes(mutate, expected: list[str]) -> None:
    obj = deployment()
    mutate(container(obj))
    assert errors(obj) == expected


def test_no_containers() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"] = []
    assert errors(obj) == ["spec.template.spec.containers: Required value"]


def test_duplicate_container_names() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"].append({"name": "web", "image": "busybox"})
    assert errors(obj) == ['spec.template.spec.containers[1].name: Duplicate value: "web"']


@pytest.mark.parametrize(("volumes", "expected"), [
    pytest.param([{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}],
                 ['spec.template.spec.volumes[1].name: Duplicate value: "a"'], id="duplicate-volume"),
    pytest.param([{"name": "a", "emptyDir": {}, "hostPath": {"path": "/x"}}],
                 ["spec.template.spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type"],
                 id="two-sources"),
    pytest.param([{"name": "cfg", "configMap": {"name": "c", "defaultMode": 1000}}],
                 ["spec.template.spec.volumes[0].configMap.defaultMode: Invalid value: 1000: must be a number "
                  "between 0 and 0777 (octal), both inclusive"], id="bad-mode"),
    pytest.param([{"name": "Data", "emptyDir": {}}],
                 ['spec.template.spec.volumes[0].name: Invalid value: "Data": a lowercase RFC 1123 label must '
                  "consist of lower case alphanumeric characters or '-', and must start and end with an "
                  "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
                  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"], id="bad-volume-name"),
    pytest.param([{"name": "s", "secret": {}}], ["spec.template.spec.volumes[0].secret.secretName: Required value"],
                 id="secret-without-name"),
])
def test_volume_mistakes(volumes: list, expected: list[str]) -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["volumes"] = volumes
    assert errors(obj) == expected


@pytest.mark.parametrize(("strategy", "expected"), [
    pytest.param({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}},
                 ['spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, '
                  'StrVal:""}: may not be 0 when `maxSurge` is 0'], id="both-zero"),
    pytest.param({"rollingUpdate": {"maxUnavailable": "120%"}},
                 ['spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, '
                  'StrVal:"120%"}: must not be greater than 100%'], id="over-100-percent"),
    pytest.param({"rollingUpdate": {"maxSurge": "half"}},
                 ['spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, '
                  "StrVal:\"half\"}: a valid percent string must be a numeric string followed by an ending '%' "
                  "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"], id="not-a-percent"),
    pytest.param({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}},
                 ["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"],
                 id="recreate-with-rolling-update"),
])
def test_deployment_strategy(strategy: dict, expected: list[str]) -> None:
    assert errors(deployment(strategy=strategy)) == expected


def test_negative_replicas() -> None:
    assert errors(deployment(replicas=-1)) == ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]


def test_deployment_template_must_restart_always() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert errors(obj) == ['spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"']


def test_deployment_selector_is_immutable() -> None:
    old = stored(deployment())
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "fe"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "fe"
    assert errors(new, old, default=False) == [
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "tier":"fe"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"]


def test_deployment_update_of_template_is_allowed() -> None:
    old = stored(deployment())
    new = copy.deepcopy(old)
    container(new)["image"] = "nginx:1.28"
    assert errors(new, old, default=False) == []


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param({"restartPolicy": "Sometimes"},
                 ['spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", '
                  '"Never"'], id="restart-policy"),
    pytest.param({"dnsPolicy": "Google"},
                 ['spec.dnsPolicy: Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", '
                  '"ClusterFirst", "Default", "None"'], id="dns-policy"),
    pytest.param({"tolerations": [{"operator": "Equal", "value": "x"}]},
                 ['spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is '
                  'empty, which means "match all values and all keys"'], id="toleration-without-key"),
    pytest.param({"nodeName": "Node_1"},
                 [f'spec.nodeName: Invalid value: "Node_1": a lowercase RFC 1123 subdomain must consist of lower '
                  f"case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                  f"character (e.g. 'example.com', regex used for validation is {SUBDOMAIN_REGEX})"], id="node-name"),
])
def test_pod_spec_mistakes(spec: dict, expected: list[str]) -> None:
    assert errors(pod(**spec)) == expected


def test_pod_update_may_only_change_images_and_deadlines() -> None:
    old = stored(pod())
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.28"
    new["spec"]["activeDeadlineSeconds"] = 60
    assert errors(new, old, default=False) == []
    new["spec"]["restartPolicy"] = "Never"
    (message,) = errors(new, old, default=False)
    assert message.startswith(
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
        "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously "
        "negative)\n")


def test_pod_update_may_not_remove_containers() -> None:
    old = stored(pod())
    new = copy.deepcopy(old)
    new["spec"]["containers"] = []
    assert "spec.containers: Forbidden: pod updates may not add or remove containers" in errors(new, old, default=False)


def test_pod_tolerations_can_only_be_added() -> None:
    old = stored(pod())
    new = copy.deepcopy(old)
    new["spec"]["tolerations"] = new["spec"]["tolerations"][1:]
    assert errors(new, old, default=False) == [
        "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"]


def statefulset() -> dict:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
            "spec": {"serviceName": "nginx", "replicas": 3, "selector": {"matchLabels": {"app": "nginx"}},
                     "template": {"metadata": {"labels": {"app": "nginx"}},
                                  "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                                           "volumeMounts": [{"name": "www", "mountPath": "/w"}]}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {
                         "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}


def test_statefulset_mounting_a_claim_template_is_valid() -> None:
    assert errors(statefulset()) == []


def test_statefulset_name_must_be_a_dns_label() -> None:
    obj = statefulset()
    obj["metadata"]["name"] = "web.v1"
    assert errors(obj) == ['metadata.name: Invalid value: "web.v1": must not contain dots']


def test_statefulset_spec_is_mostly_immutable() -> None:
    old = stored(statefulset())
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    assert errors(new, old, default=False) == []
    new["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert errors(new, old, default=False) == [
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
        "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"]


def daemonset() -> dict:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "fluentd"},
            "spec": {"selector": {"matchLabels": {"app": "fluentd"}},
                     "template": {"metadata": {"labels": {"app": "fluentd"}},
                                  "spec": {"containers": [{"name": "fluentd", "image": "fluent/fluentd:v1.16"}]}}}}


def test_daemonset_rolling_update_needs_one_of_surge_or_unavailable() -> None:
    obj = daemonset()
    obj["spec"]["updateStrategy"] = {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}
    assert errors(obj) == ["spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when "
                           "maxSurge is 0"]


def test_daemonset_without_selector_does_not_match_its_template() -> None:
    obj = daemonset()
    del obj["spec"]["selector"]
    assert errors(obj) == ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"fluentd"}: '
                           "`selector` does not match template `labels`"]


def job(**spec: object) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": "default", "uid": "u-1"},
            "spec": {"template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34.0"}],
                                           "restartPolicy": "Never"}}, **spec}}


def test_valid_job() -> None:
    assert errors(job()) == []


@pytest.mark.parametrize(("policy", "expected"), [
    pytest.param(None, ['spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'],
                 id="defaulted-to-always"),
    pytest.param("Always", ['spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'],
                 id="always"),
    # The pod spec check and the Job's own check both fire, as in Kubernetes.
    pytest.param("Sometimes", ['spec.template.spec.restartPolicy: Unsupported value: "Sometimes": supported values: '
                               '"Always", "OnFailure", "Never"',
                               'spec.template.spec.restartPolicy: Unsupported value: "Sometimes": supported values: '
                               '"OnFailure", "Never"'], id="unknown"),
])
def test_job_restart_policy(policy: str | None, expected: list[str]) -> None:
    obj = job()
    obj["spec"]["template"]["spec"].pop("restartPolicy")
    if policy:
        obj["spec"]["template"]["spec"]["restartPolicy"] = policy
    assert errors(obj) == expected


@pytest.mark.parametrize(("field", "value"), [
    pytest.param("parallelism", -1, id="parallelism"),
    pytest.param("completions", -2, id="completions"),
    pytest.param("backoffLimit", -3, id="backoff-limit"),
])
def test_job_counts_are_non_negative(field: str, value: int) -> None:
    assert errors(job(**{field: value})) == [f"spec.{field}: Invalid value: {value}: must be greater than or equal to 0"]


def test_job_template_is_immutable() -> None:
    old = stored(job())
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:5.36"
    assert errors(new, old, default=False) == [
        "spec.template: Invalid value: core.PodTemplateSpec{...}: field is immutable"]


def test_job_without_uid_cannot_get_a_generated_selector() -> None:
    obj = job()
    del obj["metadata"]["uid"]
    assert "metadata.uid: Required value" in errors(obj)


def cronjob(**spec: object) -> dict:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "hello"},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "OnFailure", "containers": [{"name": "hello", "image": "busybox"}]}}}}, **spec}}


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param({}, [], id="valid"),
    pytest.param({"schedule": "* * * *"},
                 ['spec.schedule: Invalid value: "* * * *": expected exactly 5 fields, found 4: [* * * *]'],
                 id="four-fields"),
    pytest.param({"schedule": "0 24 * * *"},
                 ['spec.schedule: Invalid value: "0 24 * * *": end of range (24) above maximum (23): 24'],
                 id="hour-out-of-range"),
    pytest.param({"schedule": "@daily"}, [], id="descriptor"),
    pytest.param({"schedule": "TZ=UTC 0 * * * *"},
                 ['spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use '
                  "timeZone field instead"], id="tz-in-schedule"),
    pytest.param({"timeZone": "Europe/Berlin"}, [], id="valid-zone"),
    pytest.param({"timeZone": "Mars/Olympus"},
                 ['spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus'], id="unknown-zone"),
    pytest.param({"concurrencyPolicy": "Sometimes"},
                 ['spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", '
                  '"Replace"'], id="concurrency-policy"),
])
def test_cronjob_schedule_and_zone(spec: dict, expected: list[str]) -> None:
    assert errors(cronjob(**spec)) == expected


def test_cronjob_name_leaves_room_for_the_job_suffix() -> None:
    obj = cronjob()
    obj["metadata"]["name"] = "x" * 53
    assert errors(obj) == [f'metadata.name: Invalid value: "{"x" * 53}": must be no more than 52 characters']


def test_cronjob_job_template_restart_policy() -> None:
    obj = cronjob()
    del obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"]
    assert errors(obj) == ['spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: '
                           '"OnFailure", "Never"']
