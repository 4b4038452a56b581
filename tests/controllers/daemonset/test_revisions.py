"""DaemonSet ControllerRevisions: data, naming, current/old split, history cleanup; the backoff."""

from __future__ import annotations

import copy
from datetime import timedelta

from controllers.common.hashing import compute_hash
from controllers.daemonset import revisions as dsrev
from controllers.daemonset.backoff import FailedPodsBackoff
from tests.controllers.daemonset.fixtures import NOW, daemon_set


def with_image(image: str, **kwargs):
    ds = daemon_set(**kwargs)
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return ds


def test_data_is_a_replace_patch_of_the_template() -> None:
    ds = daemon_set()
    data = dsrev.revision_data(ds)
    assert data == {"spec": {"template": {**ds["spec"]["template"], "$patch": "replace"}}}
    assert "$patch" not in ds["spec"]["template"]


def test_snapshot_name_labels_owner_and_annotations() -> None:
    ds = daemon_set()
    ds["metadata"]["annotations"]["kubernetes.io/change-cause"] = "first"
    body = dsrev.snapshot(ds, 4)
    hash_value = compute_hash(ds["spec"]["template"], None)
    assert body["metadata"]["name"] == f"agent-{hash_value}"
    assert body["metadata"]["labels"] == {"app": "agent", "controller-revision-hash": hash_value}
    assert body["metadata"]["annotations"]["kubernetes.io/change-cause"] == "first"
    assert body["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                                                    "uid": "ds-uid", "controller": True, "blockOwnerDeletion": True}]
    assert body["revision"] == 4 and dsrev.matches(ds, body)


def test_collision_count_changes_the_name() -> None:
    plain = dsrev.snapshot(daemon_set(), 1)["metadata"]["name"]
    bumped = dsrev.snapshot(daemon_set(status={"collisionCount": 1}), 1)["metadata"]["name"]
    assert plain != bumped and bumped.startswith("agent-")


def revision(ds, number: int, name: str | None = None):
    body = dsrev.snapshot(ds, number)
    if name:
        body["metadata"]["name"] = name
    return body


def test_plan_new_template_needs_a_snapshot_numbered_after_the_old_ones() -> None:
    v1, v2 = with_image("a:1"), with_image("a:2")
    plan = dsrev.plan_history(v2, [revision(v1, 1)])
    assert plan.current is None and plan.next_number == 2 and len(plan.old) == 1


def test_plan_rollback_reuses_and_renumbers_the_old_revision() -> None:
    v1, v2 = with_image("a:1"), with_image("a:2")
    plan = dsrev.plan_history(v1, [revision(v1, 1), revision(v2, 2)])
    assert plan.current["revision"] == 1 and plan.renumber and plan.next_number == 3
    assert [r["revision"] for r in plan.old] == [2]


def test_plan_duplicates_keep_the_highest_revision() -> None:
    v1 = with_image("a:1")
    plan = dsrev.plan_history(v1, [revision(v1, 3, "agent-x"), revision(v1, 1, "agent-y")])
    assert plan.current["metadata"]["name"] == "agent-x"
    assert [d["metadata"]["name"] for d in plan.duplicates] == ["agent-y"]
    assert not plan.renumber


def test_history_cleanup_keeps_limit_and_revisions_with_live_pods() -> None:
    ds = with_image("a:9", revisionHistoryLimit=1)
    old = [revision(with_image(f"a:{i}"), i) for i in (3, 1, 2)]
    hashes = {r["revision"]: r["metadata"]["labels"]["controller-revision-hash"] for r in old}
    doomed = dsrev.revisions_to_delete(ds, old, live_hashes={hashes[1]})
    assert [r["revision"] for r in doomed] == [2, 3]  # revision 1 is live: skipped, not counted
    assert [r["revision"] for r in dsrev.revisions_to_delete(ds, old, set())] == [1, 2]
    limit_zero = copy.deepcopy(ds)
    limit_zero["spec"]["revisionHistoryLimit"] = 0
    assert len(dsrev.revisions_to_delete(limit_zero, old, set())) == 3


def test_backoff_doubles_up_to_the_cap_and_resets_after_quiet_period() -> None:
    backoff = FailedPodsBackoff(maximum=timedelta(seconds=4))
    assert not backoff.in_backoff("k", NOW)
    backoff.next("k", NOW)
    assert backoff.in_backoff("k", NOW + timedelta(milliseconds=999))
    assert not backoff.in_backoff("k", NOW + timedelta(seconds=1))
    for seconds, expected in ((1, 2), (3, 4), (7, 4)):
        backoff.next("k", NOW + timedelta(seconds=seconds))
        assert backoff.delay("k") == timedelta(seconds=expected)
    backoff.next("k", NOW + timedelta(seconds=100))
    assert backoff.delay("k") == timedelta(seconds=1)
