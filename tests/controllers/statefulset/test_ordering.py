"""OrderedReady creates one pod at a time, each after its predecessor is Running, Ready
and available; Parallel creates them all at once; pod identity and claims."""

from __future__ import annotations

from controllers.common import objects
from controllers.statefulset.identity import POD_INDEX_LABEL, POD_NAME_LABEL, REVISION_LABEL
from minikube_py.client import CONTROLLERREVISIONS, PERSISTENTVOLUMECLAIMS, PODS, STATEFULSETS
from tests.controllers.statefulset.fake import Cluster, stateful_set


async def test_ordered_ready_creates_the_next_pod_only_after_the_previous_is_ready() -> None:
    c = Cluster()
    await c.api.create(STATEFULSETS, stateful_set())
    await c.sync()
    assert c.pod_names() == ["web-0"]
    await c.sync()  # web-0 still Pending: nothing more
    assert c.pod_names() == ["web-0"]
    c.api.set_pod_state("web-0", ready=False)  # Running, not Ready
    await c.sync()
    assert c.pod_names() == ["web-0"]
    c.api.set_pod_state("web-0")
    await c.sync()
    assert c.pod_names() == ["web-0", "web-1"]
    c.api.set_pod_state("web-1")
    await c.sync()
    c.api.set_pod_state("web-2")
    await c.sync()
    assert c.created_pods() == ["web-0", "web-1", "web-2"]
    status = c.status()
    assert (status["replicas"], status["readyReplicas"], status["availableReplicas"], status["currentReplicas"],
            status["updatedReplicas"]) == (3, 3, 3, 3, 3)
    assert status["currentRevision"] == status["updateRevision"] and status["observedGeneration"] == 1
    assert status["collisionCount"] == 0


async def test_claims_are_created_before_their_pod_with_the_exact_events() -> None:
    c = Cluster()
    await c.api.create(STATEFULSETS, stateful_set())
    await c.sync()
    writes = [(verb, plural, name) for verb, plural, name in c.api.calls if plural in ("pods", "persistentvolumeclaims")]
    assert writes == [("create", "persistentvolumeclaims", "www-web-0"), ("create", "pods", "web-0")]
    assert ("Normal", "SuccessfulCreate", "create Claim www-web-0 Pod web-0 in StatefulSet web success") \
        in c.recorder.events
    assert ("Normal", "SuccessfulCreate", "create Pod web-0 in StatefulSet web successful") in c.recorder.events
    claim = c.api.get_obj(PERSISTENTVOLUMECLAIMS, "www-web-0")
    assert objects.labels(claim) == {"app": "web"}
    assert not objects.metadata(claim).get("ownerReferences")  # Retain/Retain: no owners


async def test_pod_identity_labels_hostname_subdomain_and_volume() -> None:
    c = Cluster()
    await c.api.create(STATEFULSETS, stateful_set())
    await c.sync()
    pod = c.api.get_obj(PODS, "web-0")
    revision = c.api.items(CONTROLLERREVISIONS)[0]
    assert objects.labels(pod) == {"app": "web", POD_NAME_LABEL: "web-0", POD_INDEX_LABEL: "0",
                                   REVISION_LABEL: objects.name(revision)}
    assert pod["spec"]["hostname"] == "web-0" and pod["spec"]["subdomain"] == "nginx"
    assert pod["spec"]["volumes"] == [{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-0"}}]
    ref = objects.metadata(pod)["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["controller"], ref["blockOwnerDeletion"]) == ("StatefulSet", "web", True, True)


async def test_min_ready_seconds_holds_the_next_pod_until_available() -> None:
    c = Cluster()
    await c.api.create(STATEFULSETS, stateful_set(minReadySeconds=10))
    await c.sync()
    c.api.set_pod_state("web-0")
    result = await c.sync()
    assert c.pod_names() == ["web-0"]
    assert result is not None and result.requeue_after == 10.0
    c.clock.advance(11)
    await c.sync()
    assert c.pod_names() == ["web-0", "web-1"]


async def test_parallel_creates_every_pod_in_one_sync() -> None:
    c = Cluster()
    await c.api.create(STATEFULSETS, stateful_set(podManagementPolicy="Parallel"))
    await c.sync()
    assert sorted(c.pod_names()) == ["web-0", "web-1", "web-2"]
    assert sorted(objects.name(p) for p in c.api.items(PERSISTENTVOLUMECLAIMS)) == ["www-web-0", "www-web-1",
                                                                                      "www-web-2"]


async def test_ordinals_start_names_pods_from_the_start() -> None:
    c = Cluster()
    await c.api.create(STATEFULSETS, stateful_set(replicas=2, podManagementPolicy="Parallel", ordinals={"start": 5}))
    await c.sync()
    assert c.pod_names() == ["web-5", "web-6"]
    assert objects.labels(c.api.get_obj(PODS, "web-5"))[POD_INDEX_LABEL] == "5"


async def test_failed_pod_is_deleted_then_recreated() -> None:
    c = Cluster()
    await c.api.create(STATEFULSETS, stateful_set(replicas=1))
    await c.converge()
    first_uid = objects.uid(c.api.get_obj(PODS, "web-0"))
    c.api.set_pod_state("web-0", phase="Failed", ready=False)
    await c.sync()
    assert c.deleted_pods() == ["web-0"] and c.pod_names() == []
    await c.sync()
    assert c.pod_names() == ["web-0"] and objects.uid(c.api.get_obj(PODS, "web-0")) != first_uid


async def test_terminating_pod_blocks_ordered_progress_and_is_recreated_once_gone() -> None:
    c = Cluster()
    await c.api.create(STATEFULSETS, stateful_set(replicas=2))
    await c.converge()
    c.api.graceful_pods = True
    await c.api.delete(PODS, "web-0")
    c.api.calls.clear()
    await c.sync()
    assert c.created_pods() == []
    c.api.finish_deletion("web-0")
    await c.sync()
    assert c.created_pods() == ["web-0"]


async def test_orphan_pod_with_a_matching_name_is_adopted_and_others_are_not() -> None:
    c = Cluster()
    orphan = {"metadata": {"name": "web-0", "labels": {"app": "web"}},
              "spec": {"containers": [{"name": "nginx", "image": "nginx:1.0"}]}}
    stranger = {"metadata": {"name": "web-abc", "labels": {"app": "web"}}, "spec": {}}
    await c.api.create(PODS, orphan)
    await c.api.create(PODS, stranger)
    await c.api.create(STATEFULSETS, stateful_set(replicas=1))
    await c.sync()
    assert objects.metadata(c.api.get_obj(PODS, "web-0"))["ownerReferences"][0]["name"] == "web"
    assert not objects.metadata(c.api.get_obj(PODS, "web-abc")).get("ownerReferences")


async def test_failed_pod_create_records_failed_create() -> None:
    c = Cluster()
    from tests.controllers.statefulset.fake import _error
    c.api.fail_creates["web-0"] = _error(403, "Forbidden", 'pods "web-0" is forbidden: exceeded quota')
    await c.api.create(STATEFULSETS, stateful_set(claims=False))
    try:
        await c.sync()
    except Exception as exc:  # noqa: BLE001 - the error requeues the key
        assert "forbidden" in str(exc)
    else:
        raise AssertionError("the sync should fail")
    assert ("Warning", "FailedCreate",
            'create Pod web-0 in StatefulSet web failed error: pods "web-0" is forbidden: exceeded quota') \
        in c.recorder.events
    assert c.status()["replicas"] == 0 and c.status()["observedGeneration"] == 1


async def test_a_pod_that_lost_its_identity_label_is_updated_back() -> None:
    c = Cluster()
    await c.api.create(STATEFULSETS, stateful_set(replicas=1))
    await c.converge()
    pod = c.api.get_obj(PODS, "web-0")
    del pod["metadata"]["labels"][POD_NAME_LABEL]
    await c.sync()
    assert objects.labels(c.api.get_obj(PODS, "web-0"))[POD_NAME_LABEL] == "web-0"
    assert ("Normal", "SuccessfulUpdate", "update Pod web-0 in StatefulSet web successful") in c.recorder.events


async def test_parallel_scale_down_deletes_every_condemned_pod_at_once() -> None:
    c = Cluster()
    await c.api.create(STATEFULSETS, stateful_set(replicas=4, podManagementPolicy="Parallel"))
    await c.converge()
    c.api.set_pod_state("web-1", ready=False)  # an unhealthy pod does not hold Parallel back
    c.api.edit_set("web", lambda s: s["spec"].update(replicas=1))
    await c.sync()
    assert sorted(c.deleted_pods()) == ["web-1", "web-2", "web-3"]


async def test_a_set_being_deleted_gets_status_but_no_new_pods() -> None:
    c = Cluster()
    await c.api.create(STATEFULSETS, stateful_set())
    c.api.get_obj(STATEFULSETS, "web")["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    await c.sync()
    assert c.pod_names() == [] and c.status()["observedGeneration"] == 1
