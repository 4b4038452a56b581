"""Fixtures: a real API server in-process (same event loop as the test), and clients.

The server is the project's own (apiserver.app: `start_server` + `build_app`) on a
fresh SQLite store in a temporary directory, listening on 127.0.0.1 with an OS-chosen
port; tests talk to it over HTTP exactly as components do. Running it in-process lets
a test reach the storage to force what is hard to cause from outside (compaction, so
that a watch gets 410 Gone; dropping watchers). Startup takes a few milliseconds, so
every test gets its own server and state never leaks between tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from minikube_py.client import ApiClient


@dataclass
class InProcessServer:
    url: str
    storage: Any  # apiserver.storage.sqlite.SQLiteStorage
    server: Any  # apiserver.context.Server

    async def compact(self) -> int:
        """Forget all history up to now: older resourceVersions answer 410 Gone."""
        revision = self.storage.current_revision()
        await self.storage.compact(revision)
        return revision

    def drop_watchers(self) -> None:
        """End every live watch stream, as the server does to a watcher that fell
        behind. (Reaches into the store's broadcaster: there is no public way.)"""
        self.storage._broadcaster.close()


@pytest.fixture
async def apiserver(tmp_path: Path) -> AsyncIterator[InProcessServer]:
    from apiserver.app import build_app, open_storage, start_server, stop_tasks

    storage = open_storage(tmp_path / "store")
    server, tasks = await start_server(storage, address="127.0.0.1:0")
    runner = web.AppRunner(build_app(server), access_log=None, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.address = f"127.0.0.1:{port}"
    try:
        yield InProcessServer(f"http://127.0.0.1:{port}", storage, server)
    finally:
        await runner.cleanup()
        await stop_tasks(tasks)
        await storage.close()


@pytest.fixture
async def client(apiserver: InProcessServer) -> AsyncIterator[ApiClient]:
    async with ApiClient(apiserver.url, field_manager="client-tests") as api:
        yield api
