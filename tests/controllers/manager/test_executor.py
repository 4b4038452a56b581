"""ActionExecutor against the real API server: each action's call, and how failures end a sync.
OwnerEnqueuer on plain caches: which owner key each child event enqueues."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from controllers.common.actions import (
    AdoptPod,
    CreatePods,
    CreateReplicaSet,
    DeletePods,
    Event,
    ReleasePod,
    RequeueAfter,
    ScaleReplicaSet,
    SetExpectations,
    UpdateStatus,
)
from controllers.common.executor import ActionExecutor, OwnerEnqueuer
from controllers.common.expectations import ExpectationsStore
from controllers.common.ownership import adopt_patch, controller_ref, release_patch
from minikube_py.client import (
    DEPLOYMENTS,
    EVENTS,
    PODS,
    REPLICASETS,
    ApiClient,
    ApiError,
    EventRecorder,
    Lister,
    Result,
    Store,
    WorkQueue,
)
from tests.controllers.manager.harness import NS, api_server, deployment, pod, replica_set

Obj = dict[str, Any]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[ApiClient]:
    async with api_server(tmp_path) as url, ApiClient(url, field_manager="kube-controller-manager") as api:
        yield api


@pytest.fixture
async def recorder(client: ApiClient) -> AsyncIterator[EventRecorder]:
    rec = EventRecorder(client, "replicaset-controller")
    yield rec
    await rec.close()


def rs_executor(client: ApiClient, recorder: EventRecorder, store: ExpectationsStore | None = None,
                **kwargs: Any) -> ActionExecutor:
    return ActionExecutor(client, recorder, REPLICASETS, expectations=store or ExpectationsStore(), **kwargs)


def template(labels: dict[str, str]) -> Obj:
    return {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "nginx:1.0"}]}}


async def events(client: ApiClient, reason: str) -> list[Obj]:
    return [e for e in (await client.list(EVENTS, NS))["items"] if e["reason"] == reason]


@pytest.mark.parametrize(("actions", "expected"), [
    pytest.param([], Result(), id="nothing"),
    pytest.param([RequeueAfter(30.0), RequeueAfter(5.0)], Result(requeue_after=5.0), id="earliest-wins"),
    pytest.param([RequeueAfter(0.0)], Result(requeue=True), id="zero-is-rate-limited"),
])
async def test_requeue_after_becomes_the_result(client: ApiClient, recorder: EventRecorder, actions: list[Any],
                                                expected: Result) -> None:
    rs = await client.create(REPLICASETS, replica_set(replicas=0))
    assert await rs_executor(client, recorder).execute(rs, actions) == expected


async def test_update_status_writes_status_and_revision_annotation(client: ApiClient,
                                                                   recorder: EventRecorder) -> None:
    d = await client.create(DEPLOYMENTS, deployment())
    executor = ActionExecutor(client, recorder, DEPLOYMENTS)
    annotations = {"deployment.kubernetes.io/revision": "1"}
    await executor.execute(d, [UpdateStatus({"observedGeneration": 1, "replicas": 0}, annotations)])
    fresh = await client.get(DEPLOYMENTS, "web", NS)
    assert fresh["status"]["observedGeneration"] == 1
    assert fresh["metadata"]["annotations"] == annotations
    # The cached copy is stale now: writing it again is a conflict, which only requeues.
    assert await executor.execute(d, [UpdateStatus({"replicas": 1})]) == Result(requeue=True)


async def test_scale_replica_set_replaces_annotations_under_a_precondition(client: ApiClient,
                                                                           recorder: EventRecorder) -> None:
    body = replica_set(replicas=1)
    body["metadata"]["annotations"] = {"keep": "old", "drop": "x"}
    rs = await client.create(REPLICASETS, body)
    executor = ActionExecutor(client, recorder, DEPLOYMENTS, listers={REPLICASETS: cached(rs)})
    owner = {"metadata": {"name": "web", "namespace": NS}}
    scale = ScaleReplicaSet("rs", 3, {"keep": "new"}, rs["metadata"]["resourceVersion"])
    assert await executor.execute(owner, [scale]) == Result()
    fresh = await client.get(REPLICASETS, "rs", NS)
    assert (fresh["spec"]["replicas"], fresh["metadata"]["annotations"]) == (3, {"keep": "new"})
    assert await executor.execute(owner, [ScaleReplicaSet("rs", 4, {}, rs["metadata"]["resourceVersion"])]) \
        == Result(requeue=True)
    await executor.execute(owner, [ScaleReplicaSet("rs", 4, {"keep": "new"}, None)])  # no precondition
    assert (await client.get(REPLICASETS, "rs", NS))["spec"]["replicas"] == 4


async def test_create_replica_set_that_exists_requeues_quietly(client: ApiClient, recorder: EventRecorder) -> None:
    d = await client.create(DEPLOYMENTS, deployment())
    failures: list[Any] = []
    executor = ActionExecutor(client, recorder, DEPLOYMENTS, on_failure=lambda *a: failures.append(a) or [])
    await client.create(REPLICASETS, replica_set("web-abc"))
    actions = [CreateReplicaSet(replica_set("web-abc")), Event("Normal", "ScalingReplicaSet", "not reached")]
    assert await executor.execute(d, actions) == Result(requeue=True)
    assert failures == []
    assert await events(client, "ScalingReplicaSet") == []


async def test_create_pods_in_slow_start_batches_and_settle_expectations(client: ApiClient,
                                                                         recorder: EventRecorder) -> None:
    """Pod creates fail from the 4th on: batches 1 and 2 succeed, the batch of 4 fails,
    the 3 creates never tried are not attempted, and all 7 are taken off the expectations."""
    rs = await client.create(REPLICASETS, replica_set(replicas=10))
    store = ExpectationsStore()
    calls: list[str] = []
    original = client.create

    async def create(resource: Any, obj: Obj, namespace: str | None = None, **kwargs: Any) -> Obj:
        if resource == PODS:
            calls.append(obj["metadata"]["generateName"])
        if resource == PODS and len(calls) > 3:
            raise ApiError({"kind": "Status", "code": 500, "reason": "InternalError", "message": "boom"})
        return await original(resource, obj, namespace, **kwargs)

    client.create = create  # type: ignore[method-assign]
    hook_calls: list[tuple[str, str]] = []

    def on_failure(obj: Obj, action: Any, error: Exception, remaining: Any) -> list[Any]:
        hook_calls.append((type(action).__name__, str(error)))
        return [Event("Warning", "Noted", "the hook ran")]

    ref = controller_ref(rs, api_version="apps/v1", kind="ReplicaSet")
    actions = [SetExpectations(add=10), CreatePods(template(rs["spec"]["selector"]["matchLabels"]), 10, ref, "rs-", NS)]
    with pytest.raises(ApiError, match="boom"):
        await rs_executor(client, recorder, store, on_failure=on_failure).execute(rs, actions)
    assert len(calls) == 1 + 2 + 4
    assert store.get(f"{NS}/rs").add == 3  # the informer will report the 3 that exist
    assert hook_calls == [("CreatePods", "500 InternalError: boom")]
    await recorder.flush()
    assert len(await events(client, "SuccessfulCreate")) == 3
    [failed] = await events(client, "FailedCreate")
    assert (failed["type"], failed["message"], failed["count"]) == ("Warning", "Error creating: boom", 4)
    assert len(await events(client, "Noted")) == 1


async def test_delete_pods_tolerates_pods_already_gone(client: ApiClient, recorder: EventRecorder) -> None:
    rs = await client.create(REPLICASETS, replica_set(replicas=0))
    await client.create(PODS, pod("a"))
    store = ExpectationsStore()
    keys = frozenset({f"{NS}/a", f"{NS}/gone"})
    actions = [SetExpectations(deletes=keys), DeletePods(("a", "gone"), NS, (f"{NS}/a", f"{NS}/gone"))]
    assert await rs_executor(client, recorder, store).execute(rs, actions) == Result()
    assert store.get(f"{NS}/rs").deletes == {f"{NS}/a"}  # "gone" will never be observed
    await recorder.flush()
    assert [e["message"] for e in await events(client, "SuccessfulDelete")] == ["Deleted pod: a"]
    assert await events(client, "FailedDelete") == []


async def test_adoption_rechecks_that_the_owner_is_not_being_deleted(client: ApiClient,
                                                                     recorder: EventRecorder) -> None:
    body = replica_set(replicas=1)
    body["metadata"]["finalizers"] = ["example.com/hold"]
    rs = await client.create(REPLICASETS, body)
    orphan = await client.create(PODS, pod("orphan", labels={"app": "rs"}))
    await client.delete(REPLICASETS, "rs", NS)  # the finalizer keeps it, being deleted
    ref = controller_ref(rs, api_version="apps/v1", kind="ReplicaSet")
    with pytest.raises(RuntimeError, match="has just been deleted"):
        await rs_executor(client, recorder).execute(rs, [AdoptPod("orphan", adopt_patch(orphan, ref))])
    assert "ownerReferences" not in (await client.get(PODS, "orphan", NS))["metadata"]
    await client.patch(REPLICASETS, "rs", {"metadata": {"finalizers": None}}, NS)


async def test_adopt_then_release_with_the_exact_patches(client: ApiClient, recorder: EventRecorder) -> None:
    rs = await client.create(REPLICASETS, replica_set(replicas=1))
    orphan = await client.create(PODS, pod("orphan", labels={"app": "rs"}))
    ref = controller_ref(rs, api_version="apps/v1", kind="ReplicaSet")
    executor = rs_executor(client, recorder)
    await executor.execute(rs, [AdoptPod("orphan", adopt_patch(orphan, ref))])
    assert (await client.get(PODS, "orphan", NS))["metadata"]["ownerReferences"] == [ref]
    release = ReleasePod("orphan", release_patch(orphan, rs))
    await executor.execute(rs, [release])
    assert not (await client.get(PODS, "orphan", NS))["metadata"].get("ownerReferences")
    await client.delete(PODS, "orphan", NS)
    assert await executor.execute(rs, [release]) == Result()  # gone: nothing to release


# -- OwnerEnqueuer ------------------------------------------------------------------------


def cached(*objs: Obj) -> Lister:
    store = Store()
    for obj in objs:
        store.upsert(obj)
    return Lister(store)


def owner(name: str, uid: str, labels: dict[str, str]) -> Obj:
    return {"metadata": {"name": name, "namespace": NS, "uid": uid}, "spec": {"selector": {"matchLabels": labels}}}


def child(name: str, labels: dict[str, str], owner_obj: Obj | None = None, rv: str = "1", **meta: Any) -> Obj:
    metadata: Obj = {"name": name, "namespace": NS, "labels": labels, "resourceVersion": rv, **meta}
    if owner_obj is not None:
        metadata["ownerReferences"] = [controller_ref(owner_obj, api_version="apps/v1", kind="ReplicaSet")]
    return {"metadata": metadata}


async def drain(queue: WorkQueue[str]) -> set[str]:
    """Take (and finish) every queued key."""
    keys = set()
    while len(queue):
        key = await queue.get()
        queue.done(key)
        keys.add(key)
    return keys


async def test_owner_enqueuer_routes_children_to_owners() -> None:
    a, b = owner("a", "uid-a", {"app": "x"}), owner("b", "uid-b", {"app": "y"})
    everything = owner("all", "uid-all", {})
    queue: WorkQueue[str] = WorkQueue()
    seen: list[tuple[str, str]] = []
    enqueuer = OwnerEnqueuer(queue, cached(a, b, everything), "ReplicaSet",
                             on_created=lambda key, c: seen.append(("created", key)),
                             on_deleted=lambda key, c: seen.append(("deleted", key)))
    enqueuer.added(child("p1", {"app": "x"}, a))
    assert await drain(queue) == {f"{NS}/a"} and seen == [("created", f"{NS}/a")]
    enqueuer.added(child("orphan", {"app": "y"}))  # an empty selector adopts nothing
    assert await drain(queue) == {f"{NS}/b"}
    impostor = owner("a", "uid-old", {"app": "x"})  # same name, another uid: not our owner
    enqueuer.added(child("p2", {"app": "x"}, impostor))
    assert await drain(queue) == set()
    enqueuer.added(child("p3", {"app": "x"}, a, deletionTimestamp="2025-01-01T00:00:00Z"))
    assert await drain(queue) == {f"{NS}/a"} and seen[-1] == ("deleted", f"{NS}/a")


async def test_owner_enqueuer_on_update_tells_old_and_new_owner() -> None:
    a, b = owner("a", "uid-a", {"app": "x"}), owner("b", "uid-b", {"app": "y"})
    queue: WorkQueue[str] = WorkQueue()
    enqueuer = OwnerEnqueuer(queue, cached(a, b), "ReplicaSet")
    enqueuer.updated(child("p", {"app": "x"}, a), child("p", {"app": "x"}, a))
    assert await drain(queue) == set()  # same resourceVersion: a resync, nothing changed
    enqueuer.updated(child("p", {"app": "x"}, a), child("p", {"app": "y"}, rv="2"))
    assert await drain(queue) == {f"{NS}/a", f"{NS}/b"}  # released by a, offered to b
    enqueuer.updated(child("p", {"app": "y"}, rv="2"), child("p", {"app": "y"}, rv="3"))
    assert await drain(queue) == set()  # an orphan whose labels did not change
    enqueuer.deleted(child("p", {"app": "x"}, a))
    assert await drain(queue) == {f"{NS}/a"}
