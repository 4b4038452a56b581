"""Rollouts end to end on the in-memory World: the Deployment and ReplicaSet reconcilers
driven in turn, with a fake kubelet making pods ready, checking invariants at every step."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from controllers.common import conditions, objects
from controllers.deployment import replicas as rep
from controllers.deployment.annotations import REVISION, REVISION_HISTORY
from controllers.deployment.reconcile import replica_set_create_failed
from tests.controllers.deployment.world import World, deployment

SURGE_ONE = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def set_image(image: str) -> Callable[[dict], None]:
    def change(spec: dict) -> None:
        spec["template"]["spec"]["containers"][0]["image"] = image
    return change


def settle(world: World, name: str = "web", *, steps: int = 30, **kwargs) -> None:
    for _ in range(steps):
        world.step(name, **kwargs)


def images(world: World) -> list[str]:
    return sorted(p["spec"]["containers"][0]["image"] for p in world.pods.values())


def progressing(world: World, name: str = "web") -> dict:
    return conditions.get_condition(world.deployments[name]["status"], "Progressing")


@pytest.fixture
def rolled_out() -> World:
    """web: 3 replicas of nginx:1.0, maxSurge 1, maxUnavailable 0, fully available."""
    world = World()
    world.create_deployment(deployment(replicas=3, strategy=SURGE_ONE))
    settle(world, steps=5)
    assert world.available_pods() == 3
    return world


def test_rolling_update_keeps_three_available_and_at_most_four_pods(rolled_out: World) -> None:
    world = rolled_out
    seen: list[tuple[int, int]] = []

    def invariants(w: World) -> None:
        seen.append((len(w.pods), w.available_pods()))
        assert len(w.pods) <= 4, "more than replicas + maxSurge pods"
        assert w.available_pods() >= 3, "fewer than replicas - maxUnavailable available"

    world.edit_deployment("web", set_image("nginx:2.0"))
    settle(world, check=invariants)

    assert (4, 3) in seen, "the rollout surged"
    assert images(world) == ["nginx:2.0"] * 3
    old, new = world.rs_for_image("nginx:1.0"), world.rs_for_image("nginx:2.0")
    assert old["spec"]["replicas"] == 0 and new["spec"]["replicas"] == 3
    assert objects.annotations(new)[REVISION] == "2"
    assert objects.annotations(world.deployments["web"])[REVISION] == "2"
    status = world.deployments["web"]["status"]
    assert {k: status[k] for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")} \
        == {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}
    assert status["observedGeneration"] == 2 and "unavailableReplicas" not in status
    assert progressing(world)["reason"] == "NewReplicaSetAvailable"
    assert progressing(world)["message"] == f'ReplicaSet "{objects.name(new)}" has successfully progressed.'


def test_rolling_update_events_alternate_surge_and_drain(rolled_out: World) -> None:
    world = rolled_out
    old = objects.name(world.rs_for_image("nginx:1.0"))
    world.edit_deployment("web", set_image("nginx:2.0"))
    settle(world)
    new = objects.name(world.rs_for_image("nginx:2.0"))
    assert world.event_messages("ScalingReplicaSet")[1:] == [
        f"Scaled up replica set {new} from 0 to 1",
        f"Scaled down replica set {old} from 3 to 2",
        f"Scaled up replica set {new} from 1 to 2",
        f"Scaled down replica set {old} from 2 to 1",
        f"Scaled up replica set {new} from 2 to 3",
        f"Scaled down replica set {old} from 1 to 0",
    ]


def test_rollout_undo_restores_previous_template_and_replica_set(rolled_out: World) -> None:
    world = rolled_out
    v1 = world.rs_for_image("nginx:1.0")
    world.edit_deployment("web", set_image("nginx:2.0"))
    settle(world)

    def invariants(w: World) -> None:
        assert len(w.pods) <= 4 and w.available_pods() >= 3

    world.edit_deployment("web", set_image("nginx:1.0"))  # what `kubectl rollout undo` writes
    settle(world, check=invariants)

    assert len(world.replica_sets) == 2, "no third ReplicaSet: the v1 one is reused"
    reused = world.rs_for_image("nginx:1.0")
    assert objects.uid(reused) == objects.uid(v1)
    assert reused["spec"]["replicas"] == 3 and world.rs_for_image("nginx:2.0")["spec"]["replicas"] == 0
    assert objects.annotations(reused)[REVISION] == "3"
    assert objects.annotations(reused)[REVISION_HISTORY] == "1"
    assert objects.annotations(world.deployments["web"])[REVISION] == "3"
    assert images(world) == ["nginx:1.0"] * 3


def test_recreate_removes_every_old_pod_before_creating_new_ones() -> None:
    world = World()
    world.create_deployment(deployment(replicas=3, strategy={"type": "Recreate"}))
    settle(world, steps=4)

    def never_mixed(w: World) -> None:
        assert len(set(images(w))) <= 1, f"old and new pods together: {images(w)}"

    world.edit_deployment("web", set_image("nginx:2.0"))
    world.step("web", check=never_mixed)
    assert world.pods == {} and len(world.replica_sets) == 1, "old pods gone, new ReplicaSet not yet created"
    settle(world, steps=5, check=never_mixed)
    assert images(world) == ["nginx:2.0"] * 3
    new = world.rs_for_image("nginx:2.0")
    assert world.event_messages("ScalingReplicaSet")[-1] == f"Scaled up replica set {objects.name(new)} from 0 to 3"


def test_paused_deployment_scales_but_does_not_roll_out(rolled_out: World) -> None:
    world = rolled_out
    world.edit_deployment("web", lambda spec: spec.update(paused=True))
    world.step("web")
    cond = progressing(world)
    assert (cond["status"], cond["reason"], cond["message"]) == ("Unknown", "DeploymentPaused", "Deployment is paused")

    world.edit_deployment("web", set_image("nginx:2.0"))
    world.edit_deployment("web", lambda spec: spec.update(replicas=5))
    settle(world, steps=5)
    assert len(world.replica_sets) == 1 and images(world) == ["nginx:1.0"] * 5
    assert progressing(world)["reason"] == "DeploymentPaused"

    world.edit_deployment("web", lambda spec: spec.update(paused=False))
    world.step("web")
    assert progressing(world)["reason"] in ("DeploymentResumed", "NewReplicaSetCreated", "ReplicaSetUpdated")
    settle(world)
    assert images(world) == ["nginx:2.0"] * 5
    assert progressing(world)["reason"] == "NewReplicaSetAvailable"


def test_resuming_after_a_long_pause_does_not_time_out() -> None:
    """DeploymentPaused/DeploymentResumed restart the progress clock (checkPausedConditions)."""
    world = World()
    world.create_deployment(deployment(replicas=2, progressDeadlineSeconds=60))
    settle(world, steps=3)
    world.edit_deployment("web", lambda spec: spec.update(paused=True))
    world.edit_deployment("web", set_image("nginx:2.0"))
    settle(world, steps=2)
    world.tick(600)
    world.edit_deployment("web", lambda spec: spec.update(paused=False))
    world.step("web")
    cond = progressing(world)
    assert (cond["status"], cond["reason"]) == ("True", "NewReplicaSetCreated")
    assert cond["lastTransitionTime"] == objects.format_time(world.now)
    settle(world, steps=6)
    assert progressing(world)["reason"] == "NewReplicaSetAvailable"


def test_failed_replica_set_create_is_reported() -> None:
    world = World()
    d = world.create_deployment(deployment(replicas=1))
    actions = replica_set_create_failed(d, "web-abc", 'replicasets.apps "web-abc" is forbidden', now=world.now)
    status, event = actions
    cond = conditions.get_condition(status.status, "Progressing")
    assert (cond["status"], cond["reason"]) == ("False", "ReplicaSetCreateError")
    assert cond["message"] == 'Failed to create new replica set "web-abc": replicasets.apps "web-abc" is forbidden'
    assert (event.type, event.reason, event.message) == ("Warning", "ReplicaSetCreateError", cond["message"])


@pytest.mark.parametrize(("replicas", "surge", "unavailable"), [
    pytest.param(3, 1, 0, id="3-surge1-unavail0"),
    pytest.param(4, "25%", "25%", id="4-defaults"),
    pytest.param(10, 3, 2, id="10-surge3-unavail2"),
    pytest.param(5, 0, 2, id="5-no-surge"),
    pytest.param(2, "1%", "1%", id="2-tiny-percentages"),
    pytest.param(7, "50%", 0, id="7-half-surge"),
    pytest.param(1, 0, 1, id="1-replica-no-surge"),
])
def test_rolling_update_respects_fenceposts(replicas: int, surge, unavailable) -> None:
    world = World()
    world.create_deployment(deployment(replicas=replicas, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}))
    settle(world, steps=4)
    d = world.deployments["web"]
    max_pods, min_available = replicas + rep.max_surge(d), replicas - rep.max_unavailable(d)

    def invariants(w: World) -> None:
        assert len(w.pods) <= max_pods and w.available_pods() >= min_available

    world.edit_deployment("web", set_image("nginx:2.0"))
    settle(world, steps=3 * replicas + 6, check=invariants)
    assert images(world) == ["nginx:2.0"] * replicas
    assert progressing(world)["reason"] == "NewReplicaSetAvailable"


def test_scaling_mid_rollout_is_proportional() -> None:
    """The Kubernetes docs' example: 10 replicas, maxSurge 3, maxUnavailable 2, new pods
    never become ready; scaling to 15 adds 3 replicas to the old ReplicaSet and 2 to the new."""
    world = World()
    world.create_deployment(deployment(replicas=10, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}))
    settle(world, steps=4)
    world.edit_deployment("web", set_image("nginx:broken"))
    settle(world, steps=6, ready=lambda pod: "broken" not in pod["spec"]["containers"][0]["image"])
    old, new = world.rs_for_image("nginx:1.0"), world.rs_for_image("nginx:broken")
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (8, 5)

    world.edit_deployment("web", lambda spec: spec.update(replicas=15))
    world.tick()
    world.sync_deployment("web")
    old, new = world.rs_for_image("nginx:1.0"), world.rs_for_image("nginx:broken")
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (11, 7)
    assert world.event_messages("ScalingReplicaSet")[-2:] == [
        f"Scaled up replica set {objects.name(old)} from 8 to 11",
        f"Scaled up replica set {objects.name(new)} from 5 to 7",
    ]
    assert objects.annotations(new)["deployment.kubernetes.io/desired-replicas"] == "15"
    assert objects.annotations(new)["deployment.kubernetes.io/max-replicas"] == "18"


def test_progress_deadline_exceeded_with_the_real_message() -> None:
    world = World()
    world.create_deployment(deployment(replicas=2, progressDeadlineSeconds=60))
    settle(world, steps=3)
    world.edit_deployment("web", set_image("nginx:broken"))
    not_broken = {"ready": lambda pod: "broken" not in pod["spec"]["containers"][0]["image"]}
    settle(world, steps=3, **not_broken)
    assert progressing(world)["status"] == "True"
    requeue = [s for n, s in world.requeues if n == "web"]
    assert requeue and 0 < requeue[-1] <= 61, "a requeue at the deadline was asked for"

    world.tick(61)
    world.step("web", **not_broken)
    new = world.rs_for_image("nginx:broken")
    cond = progressing(world)
    assert (cond["status"], cond["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert cond["message"] == f'ReplicaSet "{objects.name(new)}" has timed out progressing.'
    available = conditions.get_condition(world.deployments["web"]["status"], "Available")
    assert (available["status"], available["reason"]) == ("True", "MinimumReplicasAvailable")


def test_revision_history_limit_deletes_oldest_scaled_down_replica_sets(rolled_out: World) -> None:
    world = rolled_out
    world.edit_deployment("web", lambda spec: spec.update(revisionHistoryLimit=1))
    for version in ("2.0", "3.0", "4.0"):
        world.edit_deployment("web", set_image(f"nginx:{version}"))
        settle(world, steps=12)
    kept = sorted(objects.annotations(rs)[REVISION] for rs in world.replica_sets.values())
    assert kept == ["3", "4"]
    assert images(world) == ["nginx:4.0"] * 3


def test_new_replica_set_shape() -> None:
    world = World()
    d = world.create_deployment(deployment(replicas=3, minReadySeconds=5))
    d["metadata"]["annotations"] = {"team": "blue",
                                    "kubectl.kubernetes.io/last-applied-configuration": "{}"}
    world.tick()
    world.sync_deployment("web")
    (rs,) = world.replica_sets.values()
    hash_value = rs["metadata"]["labels"]["pod-template-hash"]
    assert objects.name(rs) == f"web-{hash_value}"
    assert set(hash_value) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "web", "pod-template-hash": hash_value}}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", "pod-template-hash": hash_value}
    assert rs["spec"]["minReadySeconds"] == 5 and rs["spec"]["replicas"] == 3
    assert rs["metadata"]["ownerReferences"] == [{
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": objects.uid(d),
        "controller": True, "blockOwnerDeletion": True}]
    assert objects.annotations(rs) == {
        "team": "blue", REVISION: "1",
        "deployment.kubernetes.io/desired-replicas": "3", "deployment.kubernetes.io/max-replicas": "4"}
    status = world.deployments["web"]["status"]
    assert [c["type"] for c in status["conditions"]] == ["Progressing", "Available"]
    assert progressing(world)["message"] == f'Created new replica set "web-{hash_value}"'
    assert conditions.get_condition(status, "Available")["message"] == "Deployment does not have minimum availability."
    assert status["unavailableReplicas"] == 3


def test_hash_collision_bumps_collision_count_and_renames() -> None:
    world = World()
    d = world.create_deployment(deployment(replicas=1))
    from controllers.deployment.replicasets import new_replica_set
    squatter = new_replica_set(d)
    squatter["metadata"]["ownerReferences"] = []
    squatter["spec"]["template"]["spec"]["containers"][0]["image"] = "other"
    squatter["metadata"]["labels"] = {"app": "other"}
    world.replica_sets[objects.name(squatter)] = world._stamp(squatter, "ReplicaSet")
    world.tick()
    actions = world.sync_deployment("web")
    assert [type(a).__name__ for a in actions] == ["UpdateStatus"]
    assert world.deployments["web"]["status"]["collisionCount"] == 1
    world.tick()
    world.sync_deployment("web")
    ours = [rs for rs in world.replica_sets.values() if rs["metadata"]["ownerReferences"]]
    assert len(ours) == 1 and objects.name(ours[0]) != objects.name(squatter)


def test_selecting_everything_is_refused() -> None:
    world = World()
    world.create_deployment(deployment(replicas=1, selector={}))
    world.tick()
    actions = world.sync_deployment("web")
    assert world.replica_sets == {}
    assert world.event_messages("SelectingAll") == [
        "This deployment is selecting all pods. A non-empty selector is required."]
    assert world.deployments["web"]["status"]["observedGeneration"] == 1
    assert actions[0].type == "Warning"


def test_orphan_replica_set_matching_the_selector_is_adopted(rolled_out: World) -> None:
    world = rolled_out
    (rs,) = world.replica_sets.values()
    rs["metadata"]["ownerReferences"] = []
    world.tick()
    actions = world.sync_deployment("web")
    assert type(actions[0]).__name__ == "AdoptReplicaSet"
    assert actions[0].patch["metadata"]["uid"] == objects.uid(rs)
    assert rs["metadata"]["ownerReferences"][0]["uid"] == objects.uid(world.deployments["web"])
