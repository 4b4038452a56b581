"""Label and field selectors behave, and fail, as k8s.io/apimachinery's labels and fields do."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.errors import StatusError
from apiserver.selectors import (
    escape_field_value,
    field_set,
    parse_field_selector,
    parse_label_selector,
    selector_from_object,
    validate_field_selector,
)

KEY_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
           "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
           "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
             "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
             "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
OPERATORS = "in, notin, =, ==, !=, gt, lt"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        pytest.param("", "", id="empty"),
        pytest.param("app=web", "app=web", id="equals"),
        pytest.param("app==web", "app==web", id="double-equals"),
        pytest.param("app!=web", "app!=web", id="not-equals"),
        pytest.param("tier in (b,a)", "tier in (a,b)", id="in-sorts-values"),
        pytest.param("tier notin (a)", "tier notin (a)", id="notin"),
        pytest.param("app", "app", id="exists"),
        pytest.param("!app", "!app", id="does-not-exist"),
        pytest.param("  b = 1 ,\ta in ( x , y )", "a in (x,y),b=1", id="whitespace-and-key-order"),
        pytest.param("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()", id="empty-values"),
        pytest.param("a in (x,x)", "a in (x)", id="duplicate-values"),
        pytest.param("in in (in,notin)", "in in (in,notin)", id="keywords-as-key-and-values"),
        pytest.param("example.com/app=web", "example.com/app=web", id="prefixed-key"),
        pytest.param("a=", "a=", id="empty-value"),
        pytest.param("replicas>2", "replicas>2", id="greater-than"),
        pytest.param("replicas<2", "replicas<2", id="less-than"),
    ],
)
def test_label_selector_parses_to_its_canonical_string(text: str, canonical: str) -> None:
    assert parse_label_selector(text).to_string() == canonical


@pytest.mark.parametrize(
    ("text", "labels", "matched"),
    [
        pytest.param("", {}, True, id="empty-matches-everything"),
        pytest.param("app=web", {"app": "web"}, True, id="equals"),
        pytest.param("app=web", {}, False, id="equals-missing"),
        pytest.param("app!=web", {}, True, id="not-equals-missing-matches"),
        pytest.param("app!=web", {"app": "web"}, False, id="not-equals"),
        pytest.param("tier in (a,b)", {"tier": "b"}, True, id="in"),
        pytest.param("tier notin (a)", {}, True, id="notin-missing-matches"),
        pytest.param("tier notin (a)", {"tier": "a"}, False, id="notin"),
        pytest.param("app", {"app": ""}, True, id="exists-empty-value"),
        pytest.param("!app", {"app": "x"}, False, id="does-not-exist"),
        pytest.param("a=1,b=2", {"a": "1", "b": "3"}, False, id="and"),
        pytest.param("n>2", {"n": "3"}, True, id="gt"),
        pytest.param("n>2", {"n": "x"}, False, id="gt-not-a-number"),
        pytest.param("n<2", {"n": "1"}, True, id="lt"),
        pytest.param("a=", {"a": ""}, True, id="empty-value"),
    ],
)
def test_label_selector_matches(text: str, labels: dict[str, str], matched: bool) -> None:
    assert parse_label_selector(text).matches(labels) is matched


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("a b", f"unable to parse requirement: found 'b', expected: {OPERATORS}", id="missing-operator"),
        pytest.param("a=b c", "found 'c', expected: ',' or 'end of string'", id="space-in-value"),
        pytest.param("a,", "found '', expected: identifier after ','", id="trailing-comma"),
        pytest.param(",a", "found ',', expected: !, identifier, or 'end of string'", id="leading-comma"),
        pytest.param("a in x", "unable to parse requirement: found 'x' expected: '('", id="in-without-parens"),
        pytest.param("a in (x y)", "unable to parse requirement: found 'y', expected: ',' or ')'",
                     id="in-missing-comma"),
        pytest.param("a=(", "unable to parse requirement: found '(', expected: identifier", id="bad-value-token"),
        pytest.param("a!b", f"unable to parse requirement: found '!', expected: {OPERATORS}", id="bang-operator"),
        pytest.param("-x=1", f'unable to parse requirement: <nil>: Invalid value: "-x": {KEY_MSG}', id="bad-key"),
        pytest.param("a=b/c", f'unable to parse requirement: values[0][a]: Invalid value: "b/c": {VALUE_MSG}',
                     id="bad-value"),
        pytest.param("n>x", 'unable to parse requirement: values[0]: Invalid value: "x": for \'Gt\', \'Lt\' '
                     "operators, the value must be an integer", id="gt-not-integer"),
    ],
)
def test_bad_label_selector_is_a_bad_request_with_kubernetes_wording(text: str, message: str) -> None:
    with pytest.raises(StatusError) as info:
        parse_label_selector(text)
    assert (info.value.code, info.value.reason, info.value.message) == (400, "BadRequest", message)


@pytest.mark.parametrize(
    ("obj", "canonical", "labels", "matched"),
    [
        pytest.param({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2", {"a": "1", "b": "2"}, True, id="match-labels"),
        pytest.param({"matchExpressions": [{"key": "t", "operator": "In", "values": ["y", "x"]},
                                           {"key": "e", "operator": "Exists"},
                                           {"key": "d", "operator": "DoesNotExist"},
                                           {"key": "n", "operator": "NotIn", "values": ["z"]}]},
                     "!d,e,n notin (z),t in (x,y)", {"t": "x", "e": ""}, True, id="match-expressions"),
        pytest.param({}, "", {"any": "thing"}, True, id="empty-matches-everything"),
        pytest.param(None, "", {}, False, id="null-matches-nothing"),
    ],
)
def test_selector_from_label_selector_object(obj: dict[str, Any] | None, canonical: str,
                                             labels: dict[str, str], matched: bool) -> None:
    selector = selector_from_object(obj)
    assert selector.to_string() == canonical
    assert selector.matches(labels) is matched


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        pytest.param({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
                     "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty",
                     id="in-without-values"),
        pytest.param({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
                     'values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist',
                     id="exists-with-values"),
        pytest.param({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
                     '"Gt" is not a valid label selector operator', id="unknown-operator"),
        pytest.param({"matchLabels": {"bad key": "v"}}, f'key: Invalid value: "bad key": {KEY_MSG}', id="bad-key"),
        pytest.param({"matchLabels": {"k": "bad value"}}, f'values[0][k]: Invalid value: "bad value": {VALUE_MSG}',
                     id="bad-value"),
    ],
)
def test_invalid_label_selector_object(obj: dict[str, Any], message: str) -> None:
    with pytest.raises(StatusError) as info:
        selector_from_object(obj)
    assert (info.value.code, info.value.message) == (400, message)


def test_empty_property_and_exact_match() -> None:
    assert parse_label_selector("").empty
    assert not selector_from_object(None).empty
    assert parse_label_selector("app in (web),x").requires_exact_match("app") == "web"
    assert parse_label_selector("app in (a,b)").requires_exact_match("app") is None


@pytest.mark.parametrize(
    ("text", "fields", "matched", "canonical"),
    [
        pytest.param("", {}, True, "", id="empty"),
        pytest.param("metadata.name=x", {"metadata.name": "x"}, True, "metadata.name=x", id="equals"),
        pytest.param("metadata.name==x", {"metadata.name": "x"}, True, "metadata.name=x", id="double-equals"),
        pytest.param("status.phase!=Failed", {"status.phase": "Running"}, True, "status.phase!=Failed", id="not"),
        pytest.param("status.phase!=Failed,status.phase!=Succeeded", {"status.phase": "Succeeded"}, False,
                     "status.phase!=Failed,status.phase!=Succeeded", id="and"),
        pytest.param("spec.nodeName=", {}, True, "spec.nodeName=", id="missing-field-is-empty"),
        pytest.param(r"a=x\,y\=z\\", {"a": "x,y=z\\"}, True, r"a=x\,y\=z\\", id="escapes"),
        pytest.param("b=2,a=1", {"a": "1", "b": "2"}, True, "a=1,b=2", id="terms-sorted"),
        pytest.param("a=b!=c", {"a": "b!=c"}, False, None, id="first-operator-splits"),
    ],
)
def test_field_selector_parses_and_matches(text: str, fields: dict[str, str], matched: bool,
                                           canonical: str | None) -> None:
    if canonical is None:  # `=` splits, then the unescaped `=` in the value is an error
        with pytest.raises(StatusError, match="unescaped character in value: 61"):
            parse_field_selector(text)
        return
    selector = parse_field_selector(text)
    assert selector.matches(fields) is matched
    assert selector.to_string() == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
                     id="no-operator"),
        pytest.param(r"a=b\x", r"invalid field selector: invalid escape sequence: \x", id="bad-escape"),
        pytest.param("a=b\\", "invalid field selector: invalid escape sequence: \\", id="trailing-backslash"),
        pytest.param("a=b=c", "invalid field selector: unescaped character in value: 61", id="unescaped-equals"),
    ],
)
def test_bad_field_selector_is_a_bad_request(text: str, message: str) -> None:
    with pytest.raises(StatusError) as info:
        parse_field_selector(text)
    assert (info.value.code, info.value.reason, info.value.message) == (400, "BadRequest", message)


def test_escape_field_value_round_trips() -> None:
    value = "a,b=c\\d"
    assert parse_field_selector("f=" + escape_field_value(value)).requirements[0].value == value


@pytest.mark.parametrize(
    ("group", "kind", "selector", "message"),
    [
        pytest.param("", "Pod", "spec.foo=x", "field label not supported: spec.foo", id="pod"),
        pytest.param("", "Node", "metadata.namespace=x", "field label not supported: metadata.namespace",
                     id="node-has-no-namespace"),
        pytest.param("batch", "Job", "status.failed=1", 'field label "status.failed" not supported for batchv1.Job',
                     id="job"),
        pytest.param("apps", "Deployment", "spec.replicas=1",
                     '"spec.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"',
                     id="kind-without-conversion"),
        pytest.param("", "Event", "regarding.name=x", "field label not supported: regarding.name",
                     id="core-event-has-no-regarding"),
    ],
)
def test_unsupported_field_label_is_rejected(group: str, kind: str, selector: str, message: str) -> None:
    with pytest.raises(StatusError) as info:
        validate_field_selector(group, kind, selector)
    assert (info.value.code, info.value.message) == (400, message)


@pytest.mark.parametrize(
    ("group", "kind", "selector", "converted"),
    [
        pytest.param("", "Pod", "spec.nodeName=n1,status.phase!=Failed", "spec.nodeName=n1,status.phase!=Failed",
                     id="pod"),
        pytest.param("", "Pod", "spec.host=n1", "spec.nodeName=n1", id="pod-legacy-spec-host"),
        pytest.param("events.k8s.io", "Event", "regarding.name=p,reportingController=kubelet",
                     "involvedObject.name=p,reportingComponent=kubelet", id="events-api-names"),
        pytest.param("", "Secret", "type=Opaque", "type=Opaque", id="secret"),
        pytest.param("certificates.k8s.io", "CertificateSigningRequest", "spec.signerName=x", "spec.signerName=x",
                     id="csr"),
    ],
)
def test_supported_field_labels_are_converted(group: str, kind: str, selector: str, converted: str) -> None:
    assert validate_field_selector(group, kind, selector).to_string() == converted


POD = {"metadata": {"name": "p", "namespace": "ns"},
       "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                "serviceAccountName": "sa", "hostNetwork": True},
       "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}],
                  "nominatedNodeName": ""}}
CORE_EVENT = {"metadata": {"name": "e", "namespace": "ns"}, "reason": "Started", "type": "Normal",
              "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns", "uid": "u1", "apiVersion": "v1",
                                 "resourceVersion": "7", "fieldPath": "spec.containers{c}"},
              "source": {"component": "kubelet"}, "reportingComponent": ""}
EVENTS_API_EVENT = {"metadata": {"name": "e", "namespace": "ns"}, "reason": "Started", "type": "Normal",
                    "regarding": {"kind": "Pod", "name": "p"}, "reportingController": "kubelet"}


@pytest.mark.parametrize(
    ("group", "kind", "obj", "expected"),
    [
        pytest.param("", "Pod", POD, {
            "metadata.name": "p", "metadata.namespace": "ns", "spec.nodeName": "n1", "spec.restartPolicy": "Always",
            "spec.schedulerName": "default-scheduler", "spec.serviceAccountName": "sa", "spec.hostNetwork": "true",
            "status.phase": "Running", "status.podIP": "10.0.0.5", "status.podIPs": "10.0.0.5,fd00::5",
            "status.nominatedNodeName": ""}, id="pod"),
        pytest.param("", "Event", CORE_EVENT, {
            "metadata.name": "e", "metadata.namespace": "ns", "involvedObject.kind": "Pod",
            "involvedObject.namespace": "ns", "involvedObject.name": "p", "involvedObject.uid": "u1",
            "involvedObject.apiVersion": "v1", "involvedObject.resourceVersion": "7",
            "involvedObject.fieldPath": "spec.containers{c}", "reason": "Started", "reportingComponent": "",
            "source": "kubelet", "type": "Normal"}, id="core-event"),
        pytest.param("", "Secret", {"metadata": {"name": "s"}, "type": "Opaque"},
                     {"metadata.name": "s", "metadata.namespace": "", "type": "Opaque"}, id="secret"),
        pytest.param("", "Namespace", {"metadata": {"name": "n"}, "status": {"phase": "Active"}},
                     {"metadata.name": "n", "metadata.namespace": "", "status.phase": "Active"}, id="namespace"),
        pytest.param("", "Node", {"metadata": {"name": "n"}, "spec": {}},
                     {"metadata.name": "n", "metadata.namespace": "", "spec.unschedulable": "false"}, id="node"),
        pytest.param("apps", "ReplicaSet", {"metadata": {"name": "r", "namespace": "d"}, "status": {}},
                     {"metadata.name": "r", "metadata.namespace": "d", "status.replicas": "0"}, id="replicaset"),
        pytest.param("batch", "Job", {"metadata": {"name": "j", "namespace": "d"}, "status": {"succeeded": 2}},
                     {"metadata.name": "j", "metadata.namespace": "d", "status.successful": "2"}, id="job"),
        pytest.param("apps", "Deployment", {"metadata": {"name": "w", "namespace": "d"}},
                     {"metadata.name": "w", "metadata.namespace": "d"}, id="plain-kind"),
    ],
)
def test_field_set_per_kind(group: str, kind: str, obj: dict[str, Any], expected: dict[str, str]) -> None:
    assert field_set(group, kind, obj) == expected


def test_events_api_event_is_selected_by_converted_names() -> None:
    selector = validate_field_selector("events.k8s.io", "Event", "regarding.kind=Pod,reportingController=kubelet")
    fields = field_set("events.k8s.io", "Event", EVENTS_API_EVENT)
    assert selector.matches(fields)
    assert fields["source"] == "kubelet"  # falls back to the reporting controller, as Kubernetes does
