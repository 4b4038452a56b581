"""The patch tables, checked against the real kubectl 1.32 (`kubectl patch --local`).

kubectl applies patches locally with the same Go libraries kube-apiserver 1.32 uses, so a
case that agrees here behaves like Kubernetes: same resulting object (list order
included) or same error wording. Only the HTTP status codes are not covered (kubectl has
none locally); the unit tests pin those to what kube-apiserver's patch handler answers.
"""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.errors import StatusError
from apiserver.patch.jsonpatch import json_patch
from apiserver.patch.mergepatch import json_copy, merge_patch, prune_nulls
from apiserver.patch.strategic import strategic_merge_patch
from tests.apiserver.patch import test_jsonpatch, test_mergepatch, test_strategic
from tests.apiserver.patch.kubectl_oracle import kubectl_binary, kubectl_patch

pytestmark = pytest.mark.skipif(kubectl_binary() is None, reason="kubectl 1.32 is not installed")


def ours_or_error(apply: Any, *args: Any) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return apply(*args), None
    except StatusError as error:
        causes = (error.details or {}).get("causes") or [{}]
        message = causes[0].get("message") if error.code == 422 and causes[0].get("reason") else error.message
        return None, message.strip()


def strategic(doc: dict[str, Any], patch: Any) -> Any:
    return strategic_merge_patch(doc, patch, test_strategic.schema_of(doc))


@pytest.mark.parametrize(("doc", "patch", "expected"), test_strategic.SUCCESS)
def test_strategic_merge_patch_agrees_with_kubectl(doc: dict[str, Any], patch: Any, expected: Any) -> None:
    theirs, error = kubectl_patch(doc, patch, "strategic")
    assert error is None
    assert theirs is not None
    # Nulls Kubernetes keeps inside wholesale values decode to omitted zero values.
    assert strategic(json_copy(doc), patch) == prune_nulls(theirs)


@pytest.mark.parametrize(("doc", "patch", "code", "message"), test_strategic.FAILURES)
def test_strategic_merge_patch_errors_agree_with_kubectl(doc: dict[str, Any], patch: Any, code: int, message: str) -> None:
    _, theirs = kubectl_patch(doc, patch, "strategic")
    _, ours = ours_or_error(strategic, doc, patch)
    assert ours == theirs == message


@pytest.mark.parametrize(("doc", "ops", "expected"), test_jsonpatch.SUCCESS)
def test_json_patch_agrees_with_kubectl(doc: dict[str, Any], ops: list[Any], expected: Any) -> None:
    theirs, error = kubectl_patch(doc, ops, "json")
    assert error is None
    assert json_patch(doc, ops) == theirs


@pytest.mark.parametrize(("doc", "ops", "code", "message"), test_jsonpatch.FAILURES)
def test_json_patch_errors_agree_with_kubectl(doc: dict[str, Any], ops: Any, code: int, message: str) -> None:
    _, theirs = kubectl_patch(doc, ops, "json")
    _, ours = ours_or_error(json_patch, doc, ops)
    assert ours == theirs == message


@pytest.mark.parametrize(("doc", "patch", "expected"), test_mergepatch.SUCCESS)
def test_merge_patch_agrees_with_kubectl(doc: dict[str, Any], patch: Any, expected: Any) -> None:
    theirs, error = kubectl_patch(doc, patch, "merge")
    assert error is None
    assert merge_patch(doc, patch) == theirs
