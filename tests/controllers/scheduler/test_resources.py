"""Pod requests are summed as the scheduler sums them (resource.PodRequests)."""

from __future__ import annotations

import pytest

from controllers.scheduler.resources import Resource, pod_non_zero_requests, pod_resource
from tests.controllers.scheduler.builders import container, make_pod

MI = 1024 * 1024


@pytest.mark.parametrize(("spec", "cpu", "memory"), [
    pytest.param({"containers": [container("a", cpu="100m", memory="1Gi"), container("b", cpu="250m")]},
                 350, 1024 * MI, id="containers-add-up"),
    pytest.param({"containers": [container("a", cpu="2", memory="1G"), container("b", cpu="1", memory="1G")],
                  "initContainers": [container("i1", cpu="2", memory="1G"), container("i2", cpu="2", memory="3G")]},
                 3000, 3 * 10**9, id="init-containers-raise-the-floor"),
    pytest.param({"containers": [container("a", cpu="1")],
                  "initContainers": [container("side", cpu="500m", restartPolicy="Always"),
                                     container("i", cpu="1200m")]},
                 1700, 0, id="sidecar-adds-and-raises-later-init-floor"),
    pytest.param({"containers": [container("a", cpu="1")], "overhead": {"cpu": "250m", "memory": "120Mi"}},
                 1250, 120 * MI, id="overhead-added"),
    pytest.param({"containers": [container("a", cpu="0.5m")]}, 1, 0, id="milli-rounds-up"),
])
def test_pod_resource_sums_like_kubernetes(spec: dict, cpu: int, memory: int) -> None:
    pod = {"metadata": {"name": "p", "namespace": "d"}, "spec": spec}
    assert (pod_resource(pod).milli_cpu, pod_resource(pod).memory) == (cpu, memory)


@pytest.mark.parametrize(("containers", "expected"), [
    pytest.param([container()], (100, 200 * MI), id="unset-gets-defaults"),
    pytest.param([container(cpu="0", memory="0")], (0, 0), id="explicit-zero-stays-zero"),
    pytest.param([container(cpu="1"), container()], (1100, 400 * MI), id="defaults-per-container"),
])
def test_non_zero_requests_use_scoring_defaults(containers: list, expected: tuple[int, int]) -> None:
    assert pod_non_zero_requests(make_pod("p", containers=containers)) == expected


def test_allocatable_resource_list_reads_all_kinds() -> None:
    res = Resource.from_list({"cpu": "3500m", "memory": "2Gi", "pods": "110", "ephemeral-storage": "10Gi",
                              "example.com/gpu": "2", "hugepages-2Mi": "4Mi", "storage": "1Gi"})
    assert (res.milli_cpu, res.memory, res.allowed_pod_number) == (3500, 2 * 1024 * MI, 110)
    assert res.scalar == {"example.com/gpu": 2, "hugepages-2Mi": 4 * MI}
