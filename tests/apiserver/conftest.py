"""In-process API server fixtures: the real app on a temporary store, no subprocess."""

from __future__ import annotations

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from apiserver.app import build_app, start_server, stop_tasks
from apiserver.storage.sqlite import SQLiteStorage

CM = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
async def client(tmp_path):
    storage = SQLiteStorage(tmp_path / "state.db")
    server, tasks = await start_server(storage)
    test_client = TestClient(TestServer(build_app(server)))
    await test_client.start_server()
    yield test_client
    await test_client.close()
    await stop_tasks(tasks)
    await storage.close()


async def create(client, name: str, labels: dict | None = None) -> dict:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}}}
    resp = await client.post(CM, data=orjson.dumps(body), headers={"Content-Type": "application/json"})
    assert resp.status == 201, await resp.text()
    return await resp.json()


