"""The HPA controller without a metrics API: the pure decision, and syncs against the
real API server (reconcile called directly; time from a FakeClock)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from controllers.podautoscaler.controller import HorizontalPodAutoscalerController
from controllers.podautoscaler.replicas import decide
from minikube_py.client import (
    DEPLOYMENTS,
    EVENTS,
    HORIZONTALPODAUTOSCALERS,
    ApiClient,
    EventRecorder,
    FakeClock,
    SharedInformerFactory,
)
from tests.controllers.manager.harness import NS, api_server, deployment, wait_for

Obj = dict[str, Any]
NO_METRICS_API = ("unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API: "
                  "the server could not find the requested resource (get pods.metrics.k8s.io)")


def hpa(name: str = "web", *, minimum: int = 1, maximum: int = 10, metrics: list[Obj] | None = None) -> Obj:
    spec: Obj = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                 "minReplicas": minimum, "maxReplicas": maximum,
                 "metrics": metrics if metrics is not None else [
                     {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                                 "averageUtilization": 50}}}]}
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": NS}, "spec": spec}


def scale(replicas: int) -> Obj:
    return {"spec": {"replicas": replicas}, "status": {"replicas": replicas}}


def test_below_minimum_rescales_without_metrics() -> None:
    decision = decide(hpa(minimum=4), scale(3))
    assert (decision.desired, decision.rescale_reason) == (4, "Current number of replicas below Spec.MinReplicas")
    assert decision.events == [] and decision.metric_statuses is None


def test_above_maximum_rescales_down() -> None:
    decision = decide(hpa(maximum=2), scale(5))
    assert (decision.desired, decision.rescale_reason) == (2, "Current number of replicas above Spec.MaxReplicas")


def test_zero_replicas_disables_scaling() -> None:
    decision = decide(hpa(), scale(0))
    assert decision.desired == 0 and decision.rescale_reason is None
    assert decision.conditions[-1] == ("ScalingActive", "False", "ScalingDisabled",
                                       "scaling is disabled since the replica count of the target is zero")


def test_within_bounds_reports_the_missing_metrics_api() -> None:
    decision = decide(hpa(), scale(2))
    assert decision.desired is None and decision.metric_statuses == [{"type": ""}]
    assert decision.conditions == [
        ("AbleToScale", "True", "SucceededGetScale", "the HPA controller was able to get the target's current scale"),
        ("ScalingActive", "False", "FailedGetResourceMetric",
         f"the HPA was unable to compute the replica count: {NO_METRICS_API}")]
    assert decision.events == [
        ("Warning", "FailedGetResourceMetric", NO_METRICS_API),
        ("Warning", "FailedComputeMetricsReplicas", "invalid metrics (1 invalid out of 1), first error is: "
         f"failed to get cpu resource metric value: failed to get cpu utilization: {NO_METRICS_API}")]


def test_no_metrics_means_the_default_cpu_target() -> None:
    decision = decide(hpa(metrics=[]), scale(2))
    assert decision.conditions[-1][2] == "FailedGetResourceMetric"


@contextlib.asynccontextmanager
async def autoscaler(tmp_path: Path) -> AsyncIterator[tuple[ApiClient, HorizontalPodAutoscalerController]]:
    async with api_server(tmp_path) as url, ApiClient(url, field_manager="tests") as client:
        factory = SharedInformerFactory(client)
        recorder = EventRecorder(client, "horizontal-pod-autoscaler")
        controller = HorizontalPodAutoscalerController(client, factory, recorder, clock=FakeClock())
        factory.start()
        await factory.wait_for_cache_sync()
        try:
            yield client, controller
        finally:
            await factory.shutdown()
            await recorder.close()


async def _synced(client: ApiClient, controller: HorizontalPodAutoscalerController, name: str = "web") -> Obj:
    await wait_for(lambda: controller.hpas.lister.get(name, NS) is not None, message="hpa cached")
    result = await controller.reconcile(f"{NS}/{name}")
    assert result is not None and result.requeue_after == 15.0
    return await client.get(HORIZONTALPODAUTOSCALERS, name, NS)


async def _events(client: ApiClient, recorder: EventRecorder) -> list[tuple[str, str]]:
    await recorder.flush()
    items = (await client.list(EVENTS, NS, field_selector="involvedObject.kind=HorizontalPodAutoscaler"))["items"]
    return [(e["reason"], e["message"]) for e in items]


async def test_hpa_scales_a_deployment_up_to_min_replicas(tmp_path: Path) -> None:
    async with autoscaler(tmp_path) as (client, controller):
        await client.create(DEPLOYMENTS, deployment("web", replicas=2))
        await client.create(HORIZONTALPODAUTOSCALERS, hpa(minimum=3))
        got = await _synced(client, controller)
        assert (await client.get(DEPLOYMENTS, "web", NS))["spec"]["replicas"] == 3
        status = got["status"]
        assert (status["currentReplicas"], status["desiredReplicas"]) == (2, 3) and status["lastScaleTime"]
        assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
            ("AbleToScale", "True", "SucceededRescale")]
        assert status["conditions"][0]["message"] == "the HPA controller was able to update the target scale to 3"
        assert ("SuccessfulRescale", "New size: 3; reason: Current number of replicas below Spec.MinReplicas") in \
            await _events(client, controller.recorder)

        got = await _synced(client, controller)  # within bounds now: no metrics API
        status = got["status"]
        assert (status["currentReplicas"], status["desiredReplicas"]) == (3, 3)
        assert status["currentMetrics"] == [{"type": ""}]
        assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
            ("AbleToScale", "True", "SucceededGetScale"), ("ScalingActive", "False", "FailedGetResourceMetric")]
        reasons = {r for r, _ in await _events(client, controller.recorder)}
        assert {"FailedGetResourceMetric", "FailedComputeMetricsReplicas"} <= reasons


async def test_missing_target_is_failed_get_scale(tmp_path: Path) -> None:
    async with autoscaler(tmp_path) as (client, controller):
        await client.create(HORIZONTALPODAUTOSCALERS, hpa("ghost"))
        status = (await _synced(client, controller, "ghost"))["status"]
        [able] = status["conditions"]
        assert (able["type"], able["status"], able["reason"]) == ("AbleToScale", "False", "FailedGetScale")
        assert able["message"].startswith("the HPA controller was unable to get the target's current scale: ")
        assert 'deployments.apps "ghost" not found' in able["message"]


async def test_a_new_hpa_is_first_synced_one_period_later(tmp_path: Path) -> None:
    async with autoscaler(tmp_path) as (client, controller):
        clock = controller.clock
        assert isinstance(clock, FakeClock)
        await client.create(HORIZONTALPODAUTOSCALERS, hpa())
        await wait_for(lambda: controller.hpas.lister.get("web", NS) is not None, message="hpa cached")
        assert len(controller.queue) == 0
        clock.advance(15)
        await wait_for(lambda: len(controller.queue) == 1, message="queued after 15 s")
