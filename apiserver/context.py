"""Shared state of one API server and the per-request context handlers receive."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from apiserver import errors
from apiserver.pipeline import Pipeline, UserInfo
from apiserver.registry.allocators import Allocator
from apiserver.registry.registry import Registry
from apiserver.registry.resource import ResourceInfo
from apiserver.registry.store import ObjectStore
from apiserver.request import RequestInfo
from apiserver.storage.interface import Storage


@dataclass
class Server:
    registry: Registry
    storage: Storage
    store: ObjectStore
    pipeline: Pipeline
    allocator: Allocator
    address: str = "127.0.0.1:6443"
    caches: dict[str, Any] = field(default_factory=dict)


@dataclass
class Ctx:
    """One resource request: who asks, for what, with which query parameters."""

    server: Server
    request: web.Request
    rinfo: RequestInfo
    info: ResourceInfo
    version: str
    user: UserInfo
    warnings: list[str] = field(default_factory=list)

    @property
    def params(self) -> MultiMapping[str]:
        return self.request.query

    @property
    def namespace(self) -> str:
        return self.rinfo.namespace

    @property
    def name(self) -> str:
        return self.rinfo.name

    @property
    def api_version(self) -> str:
        return self.info.api_version(self.version)

    @property
    def dry_run(self) -> bool:
        values = self.params.getall("dryRun", [])
        for value in values:
            if value != "All":
                raise errors.bad_request(f'Invalid dry run value: "{value}". Valid values are: "All"')
        return bool(values)

    def field_manager(self, default_from_agent: bool = True) -> str:
        manager = self.params.get("fieldManager", "")
        if len(manager) > 128:
            raise errors.invalid_object("PatchOptions", "meta.k8s.io", "", [
                errors.too_long("fieldManager", 128)])
        if manager or not default_from_agent:
            return manager
        agent = self.request.headers.get("User-Agent", "")
        return agent.split("/", 1)[0][:128] or "unknown"

    def field_validation(self) -> str:
        value = self.params.get("fieldValidation", "Warn") or "Warn"
        if value not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(f"fieldValidation parameter unsupported: {value}")
        return value
