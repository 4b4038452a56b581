"""Which container attempt `kubectl logs` reads, and the kubelet's refusals, from the pod
status the kubelet computed (validateContainerLogStatus's rules)."""

from __future__ import annotations

from typing import Any

import pytest

from kubelet.server.logs import LogRequestError, log_container_id

RUNNING = {"running": {"startedAt": "t"}}
LAST = {"terminated": {"exitCode": 1, "containerID": "process://old"}}


def _pod(state: dict[str, Any], last: dict[str, Any] | None = None, cid: str = "process://new") -> dict[str, Any]:
    status = {"name": "c", "state": state, "containerID": cid, **({"lastState": last} if last else {})}
    return {"metadata": {"name": "p"}, "status": {"containerStatuses": [status]}}


@pytest.mark.parametrize(("pod", "previous", "expected"), [
    pytest.param(_pod(RUNNING), False, ("process://new", True), id="running"),
    pytest.param(_pod(RUNNING, LAST), True, ("process://old", False), id="previous"),
    pytest.param(_pod({"terminated": {"exitCode": 0, "containerID": "process://new"}}), False,
                 ("process://new", False), id="terminated"),
    pytest.param(_pod({"waiting": {"reason": "CrashLoopBackOff"}}, LAST), False, ("process://old", False),
                 id="crash-loop-reads-the-last-attempt"),
    pytest.param(_pod({"terminated": {"exitCode": 1}}, LAST), False, ("process://old", False),
                 id="terminated-without-id-falls-back-to-last"),
])
def test_the_attempt_read(pod: dict[str, Any], previous: bool, expected: tuple[str, bool]) -> None:
    assert log_container_id(pod, "c", previous) == expected


@pytest.mark.parametrize(("pod", "container", "previous", "message"), [
    pytest.param(_pod(RUNNING), "c", True, 'previous terminated container "c" in pod "p" not found', id="no-previous"),
    pytest.param(_pod({"waiting": {"reason": "ContainerCreating"}}), "c", False,
                 'container "c" in pod "p" is waiting to start: ContainerCreating', id="creating"),
    pytest.param(_pod({"waiting": {"reason": "ErrImagePull"}}), "c", False,
                 'container "c" in pod "p" is waiting to start: image can\'t be pulled', id="err-image-pull"),
    pytest.param(_pod({"waiting": {"reason": "ImagePullBackOff"}}), "c", False,
                 'container "c" in pod "p" is waiting to start: trying and failing to pull image', id="backoff"),
    pytest.param(_pod({"terminated": {"exitCode": 1}}), "c", False, 'container "c" in pod "p" is terminated',
                 id="terminated-no-id"),
    pytest.param(_pod(RUNNING), "other", False, 'container "other" in pod "p" is not available', id="no-status"),
    pytest.param(_pod({}), "c", False, 'container "c" in pod "p" is waiting to start - no logs yet', id="no-state"),
])
def test_the_kubelets_refusals(pod: dict[str, Any], container: str, previous: bool, message: str) -> None:
    with pytest.raises(LogRequestError) as caught:
        log_container_id(pod, container, previous)
    assert (caught.value.status, caught.value.message) == (400, message)
