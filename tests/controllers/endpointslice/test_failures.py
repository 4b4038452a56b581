"""A failed EndpointSlice write is raised (the key is retried with backoff) and recorded as
FailedToUpdateEndpointSlices on the Service; a conflict is routine and not recorded."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.endpointslice.controller import EndpointSliceController
from controllers.endpointslice.reconcile import SlicePlan, reconcile_slices
from minikube_py.client import ApiError, SharedInformerFactory
from tests.controllers.endpointslice.builders import nodes, pod, service

Obj = dict[str, Any]


class RefusingClient:
    def __init__(self, code: int, reason: str) -> None:
        self.error = ApiError({"kind": "Status", "code": code, "reason": reason, "message": f"{reason} for a test"})

    async def create(self, *args: Any, **kwargs: Any) -> Obj:
        raise self.error


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []

    def event(self, obj: Obj, event_type: str, reason: str, message: str) -> None:
        self.events.append((obj["metadata"]["name"], event_type, reason, message))


def controller(client: Any, recorder: Recorder) -> EndpointSliceController:
    return EndpointSliceController(client, SharedInformerFactory(client), recorder)  # type: ignore[arg-type]


async def test_failed_create_is_recorded_on_the_service_and_raised() -> None:
    recorder = Recorder()
    svc = service()
    plan = reconcile_slices(svc, [pod("a", "10.0.0.1")], [], nodes())
    with pytest.raises(ApiError):
        await controller(RefusingClient(403, "Forbidden"), recorder)._write("default/web", svc, plan)
    assert recorder.events == [("web", "Warning", "FailedToUpdateEndpointSlices",
                                "Error updating Endpoint Slices for Service default/web: Forbidden for a test")]


async def test_conflict_is_not_an_event() -> None:
    recorder = Recorder()
    svc = service()
    plan = SlicePlan(create=reconcile_slices(svc, [], [], nodes()).create)
    with pytest.raises(ApiError):
        await controller(RefusingClient(409, "Conflict"), recorder)._write("default/web", svc, plan)
    assert recorder.events == []
