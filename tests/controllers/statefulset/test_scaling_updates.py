"""Scale down in reverse order, claims surviving; rolling updates in reverse ordinal order
with a partition; OnDelete; revisions, rollback and history cleanup."""

from __future__ import annotations

from typing import Any

from controllers.common import objects
from controllers.history import HASH_LABEL, revision_hash
from controllers.statefulset.identity import REVISION_LABEL
from controllers.statefulset.revisions import patch_of
from minikube_py.client import CONTROLLERREVISIONS, PERSISTENTVOLUMECLAIMS, PODS, STATEFULSETS
from tests.controllers.statefulset.fake import Cluster, stateful_set


def set_image(image: str) -> Any:
    def edit(sts: dict) -> None:
        sts["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return edit


def image_of(c: Cluster, name: str) -> str:
    return c.api.get_obj(PODS, name)["spec"]["containers"][0]["image"]


async def started(replicas: int = 3, **spec: Any) -> Cluster:
    c = Cluster()
    await c.api.create(STATEFULSETS, stateful_set(replicas=replicas, **spec))
    await c.converge()
    c.api.calls.clear()
    return c


async def test_scale_down_deletes_highest_ordinal_first_one_at_a_time_and_keeps_claims() -> None:
    c = await started()
    c.api.graceful_pods = True
    c.api.edit_set("web", lambda s: s["spec"].update(replicas=1))
    await c.sync()
    assert c.deleted_pods() == ["web-2"]
    await c.sync()  # web-2 still terminating: wait
    assert c.deleted_pods() == ["web-2"]
    c.api.finish_deletion("web-2")
    await c.sync()
    assert c.deleted_pods() == ["web-2", "web-1"]
    c.api.finish_deletion("web-1")
    await c.sync()
    assert c.pod_names() == ["web-0"]
    assert [objects.name(p) for p in c.api.items(PERSISTENTVOLUMECLAIMS)] == ["www-web-0", "www-web-1", "www-web-2"]
    assert ("Normal", "SuccessfulDelete", "delete Pod web-2 in StatefulSet web successful") in c.recorder.events
    assert c.status()["replicas"] == 1


async def test_ordered_scale_down_waits_while_a_lower_pod_is_unhealthy() -> None:
    c = await started()
    c.api.set_pod_state("web-0", ready=False)
    c.api.edit_set("web", lambda s: s["spec"].update(replicas=1))
    await c.sync()
    assert c.deleted_pods() == []


async def test_rolling_update_replaces_pods_in_reverse_ordinal_order() -> None:
    c = await started()
    old_revision = c.status()["currentRevision"]
    c.api.edit_set("web", set_image("nginx:2.0"))
    order = []
    for _ in range(12):
        before = set(c.deleted_pods())
        await c.sync()
        order += [p for p in c.deleted_pods() if p not in before]
        c.ready_all()
    assert order == ["web-2", "web-1", "web-0"]
    assert [image_of(c, p) for p in ("web-0", "web-1", "web-2")] == ["nginx:2.0"] * 3
    status = c.status()
    assert status["currentRevision"] == status["updateRevision"] != old_revision
    assert status["updatedReplicas"] == status["currentReplicas"] == 3 and status["observedGeneration"] == 2


async def test_rolling_update_waits_for_the_replaced_pod_to_be_ready() -> None:
    c = await started()
    c.api.edit_set("web", set_image("nginx:2.0"))
    await c.sync()  # deletes web-2
    await c.sync()  # recreates web-2 at the new revision
    assert c.deleted_pods() == ["web-2"] and c.created_pods() == ["web-2"]
    await c.sync()  # web-2 Pending: no further deletion
    assert c.deleted_pods() == ["web-2"]
    status = c.status()
    assert status["currentRevision"] != status["updateRevision"]
    assert (status["currentReplicas"], status["updatedReplicas"]) == (2, 1)


async def test_partition_updates_only_ordinals_at_or_above_it() -> None:
    c = await started()
    c.api.edit_set("web", lambda s: s["spec"].update(
        updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}))
    c.api.edit_set("web", set_image("nginx:2.0"))
    await c.converge()
    assert [image_of(c, p) for p in ("web-0", "web-1", "web-2")] == ["nginx:1.0", "nginx:1.0", "nginx:2.0"]
    status = c.status()
    assert status["currentRevision"] != status["updateRevision"]
    assert (status["currentReplicas"], status["updatedReplicas"]) == (2, 1)
    # A deleted pod below the partition comes back at the current revision.
    await c.api.delete(PODS, "web-0")
    await c.converge()
    assert image_of(c, "web-0") == "nginx:1.0"
    # Lowering the partition finishes the rollout.
    c.api.edit_set("web", lambda s: s["spec"].update(
        updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}))
    await c.converge()
    assert [image_of(c, p) for p in ("web-0", "web-1", "web-2")] == ["nginx:2.0"] * 3
    assert c.status()["currentRevision"] == c.status()["updateRevision"]


async def test_on_delete_updates_only_pods_deleted_by_hand() -> None:
    c = await started(updateStrategy={"type": "OnDelete"})
    c.api.edit_set("web", set_image("nginx:2.0"))
    await c.converge()
    assert c.deleted_pods() == []
    await c.api.delete(PODS, "web-1")
    await c.converge()
    assert [image_of(c, p) for p in ("web-0", "web-1", "web-2")] == ["nginx:1.0", "nginx:2.0", "nginx:1.0"]
    assert c.status()["updatedReplicas"] == 1


async def test_revisions_are_numbered_and_a_rollback_renumbers_the_old_one() -> None:
    c = await started()
    first = c.api.items(CONTROLLERREVISIONS)
    assert [r["revision"] for r in first] == [1]
    assert first[0]["data"] == patch_of(c.api.get_obj(STATEFULSETS, "web"))
    assert objects.labels(first[0])[HASH_LABEL] == objects.name(first[0]).removeprefix("web-")
    c.api.edit_set("web", set_image("nginx:2.0"))
    await c.converge()
    c.api.edit_set("web", set_image("nginx:1.0"))
    await c.converge()
    revisions = {objects.name(r): r["revision"] for r in c.api.items(CONTROLLERREVISIONS)}
    assert len(revisions) == 2
    assert revisions[objects.name(first[0])] == 3  # the old template is the newest revision again
    assert {objects.labels(c.api.get_obj(PODS, p))[REVISION_LABEL] for p in c.pod_names()} == {objects.name(first[0])}


async def test_revision_history_limit_deletes_the_oldest_unused_revisions() -> None:
    c = await started(revisionHistoryLimit=1)
    for image in ("nginx:2", "nginx:3", "nginx:4"):
        c.api.edit_set("web", set_image(image))
        await c.converge()
    await c.sync()
    numbers = sorted(r["revision"] for r in c.api.items(CONTROLLERREVISIONS))
    assert numbers == [3, 4]  # the live one plus one of history


async def test_a_hash_collision_bumps_collision_count() -> None:
    c = Cluster()
    sts = stateful_set(replicas=1)
    await c.api.create(STATEFULSETS, sts)
    squatter_name = f"web-{revision_hash(patch_of(c.api.get_obj(STATEFULSETS, 'web')), 0)}"
    await c.api.create(CONTROLLERREVISIONS, {"metadata": {"name": squatter_name, "labels": {"other": "x"}},
                                             "data": {"unrelated": True}, "revision": 1})
    await c.sync()
    assert c.status()["collisionCount"] == 1
    assert c.status()["updateRevision"] != squatter_name
