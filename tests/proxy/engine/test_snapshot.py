"""Versioned snapshots: ACK moves version_info and the traffic; NACK names the bad
field, keeps the last version and the old config serving."""

from __future__ import annotations

import aiohttp

from proxy.engine.snapshot import SnapshotApplier
from tests.proxy.engine.test_server import Backend, bootstrap, serve


async def test_ack_swaps_and_nack_keeps_the_old_version_serving():
    async with Backend("a") as a, Backend("b") as b:
        cfg = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}], {"a": [a.port], "b": [b.port]})
        server, url = await serve(cfg)
        port = server.addresses()[0][1]
        applier = SnapshotApplier(server, version_info="v1")
        try:
            v2 = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "b"}}], {"a": [a.port], "b": [b.port]})
            v2["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = port
            ack = await applier.apply(v2, "v2", nonce="n2")
            assert ack.accepted and (ack.version_info, ack.response_nonce) == ("v2", "n2")
            async with aiohttp.ClientSession() as s:
                async with s.get(url + "/") as r:
                    assert (await r.text()).startswith("b")
            bad = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}], {"a": [a.port]})
            bad["static_resources"]["clusters"][0]["outlier_detection"] = {"consecutive_5xx": -1}
            nack = await applier.apply(bad, "v3", nonce="n3")
            assert not nack.accepted and nack.version_info == "v2" and nack.response_nonce == "n3"
            assert "clusters[0].outlier_detection.consecutive_5xx" in (nack.error_detail or "")
            assert applier.version_info == "v2" and applier.last_nack == nack
            async with aiohttp.ClientSession() as s:
                async with s.get(url + "/") as r:
                    assert (await r.text()).startswith("b")
        finally:
            await server.stop()
