"""Names, ordinals, claims and volumes of one StatefulSet replica."""

from __future__ import annotations

import pytest

from controllers.statefulset import identity
from tests.controllers.statefulset.fake import stateful_set


@pytest.mark.parametrize(("name", "parent", "ordinal"), [
    pytest.param("web-0", "web", 0, id="simple"),
    pytest.param("my-db-12", "my-db", 12, id="dashed-parent"),
    pytest.param("web-x", "", -1, id="no-ordinal"),
    pytest.param("web", "", -1, id="no-dash"),
])
def test_parent_name_and_ordinal(name: str, parent: str, ordinal: int) -> None:
    assert identity.parent_name_and_ordinal({"metadata": {"name": name}}) == (parent, ordinal)


def test_claims_merge_template_labels_with_the_selector_labels() -> None:
    sts = stateful_set()
    sts["metadata"]["uid"] = "u"
    sts["spec"]["volumeClaimTemplates"][0]["metadata"]["labels"] = {"tier": "data"}
    [claim] = identity.claims_for(sts, 1)
    assert claim["metadata"] == {"name": "www-web-1", "namespace": "default", "labels": {"tier": "data", "app": "web"}}
    assert claim["kind"] == "PersistentVolumeClaim" and claim["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_storage_puts_claim_volumes_first_and_replaces_a_same_named_volume() -> None:
    sts = stateful_set()
    sts["metadata"]["uid"] = "u"
    sts["spec"]["template"]["spec"]["volumes"] = [{"name": "config", "configMap": {"name": "c"}},
                                                  {"name": "www", "emptyDir": {}}]
    pod = identity.new_pod(sts, 2)
    assert pod["spec"]["volumes"] == [{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-2"}},
                                      {"name": "config", "configMap": {"name": "c"}}]
    assert identity.storage_matches(sts, pod) and identity.identity_matches(sts, pod)
    pod["spec"]["volumes"] = pod["spec"]["volumes"][1:]
    assert not identity.storage_matches(sts, pod)


def test_pods_below_the_partition_are_made_at_the_current_revision() -> None:
    sts = stateful_set(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    sts["metadata"]["uid"] = "u"
    updated = stateful_set(image="nginx:2.0", updateStrategy=sts["spec"]["updateStrategy"])
    updated["metadata"]["uid"] = "u"
    low = identity.new_versioned_pod(sts, updated, "web-old", "web-new", 1)
    high = identity.new_versioned_pod(sts, updated, "web-old", "web-new", 2)
    assert identity.pod_revision(low) == "web-old" and low["spec"]["containers"][0]["image"] == "nginx:1.0"
    assert identity.pod_revision(high) == "web-new" and high["spec"]["containers"][0]["image"] == "nginx:2.0"
