"""One probe run through the Prober: retries of errored runs, and the events it records."""

from __future__ import annotations

from aiohttp import web

from kubelet.probes.prober import Prober, Target, Verdict
from kubelet.probes.spec import FAILURE, LIVENESS, READINESS, STARTUP, SUCCESS, ProbeSpec
from tests.kubelet.probes.conftest import pod


def target(container: dict, container_id: str = "cid") -> Target:
    return Target(pod(container), container, container_id, "127.0.0.1", f"spec.containers{{{container['name']}}}")


async def test_an_errored_run_is_retried_three_times_and_reported_once(runtime, recorder):
    runtime.missing.add("gone")
    spec = ProbeSpec.parse(LIVENESS, {"exec": {"command": ["true"]}})
    verdict = await Prober(runtime, recorder).probe(spec, target({"name": "app"}, "gone"))
    assert verdict == Verdict(FAILURE, errored=True)
    assert len(runtime.calls) == 3
    assert recorder.messages() == ["Liveness probe errored and resulted in unknown state: container gone not found"]


async def test_a_redirect_to_another_host_is_a_success_with_a_probe_warning(serve, recorder, runtime):
    app = web.Application()
    app.router.add_get("/", _away)
    port = await serve(app)
    spec = ProbeSpec.parse(READINESS, {"httpGet": {"path": "/", "port": port}})
    verdict = await Prober(runtime, recorder).probe(spec, target({"name": "app"}))
    assert verdict == Verdict(SUCCESS)
    assert [(e.type, e.reason, e.message) for e in recorder.events] == [
        ("Warning", "ProbeWarning", "Readiness probe warning: Probe terminated redirects, Response body: bye")]


async def test_success_records_nothing_and_failure_records_unhealthy(runtime, recorder):
    prober = Prober(runtime, recorder)
    ok = ProbeSpec.parse(STARTUP, {"exec": {"command": ["sh", "-c", "exit 0"]}})
    assert await prober.probe(ok, target({"name": "app"})) == Verdict(SUCCESS)
    assert recorder.events == []
    bad = ProbeSpec.parse(STARTUP, {"exec": {"command": ["sh", "-c", "echo not yet; exit 1"]}})
    assert await prober.probe(bad, target({"name": "app"})) == Verdict(FAILURE)
    assert recorder.messages() == ["Startup probe failed: not yet\n"]


async def test_a_probe_without_a_handler_errors(runtime, recorder):
    spec = ProbeSpec.parse(LIVENESS, {"periodSeconds": 5})
    verdict = await Prober(runtime, recorder).probe(spec, target({"name": "app"}))
    assert verdict.errored
    assert recorder.messages() == ["Liveness probe errored and resulted in unknown state: "
                                   "missing probe handler for web_default(uid-1):app"]


async def _away(request: web.Request) -> web.Response:
    return web.Response(status=301, headers={"Location": f"http://localhost:{request.url.port}/"}, text="bye")
