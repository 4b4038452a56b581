"""The live set of served resources: built-ins plus custom resources from CRDs.

Lookups by URL (group, version, plural), by kind, and the grouping that discovery needs.
CRDs add and remove rows at run time; every change bumps `generation`, which lets
discovery and OpenAPI caches know they are stale.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from apiserver.registry.builtin import BUILTIN, GROUP_ORDER
from apiserver.registry.resource import ResourceInfo


@dataclass(frozen=True)
class GroupVersion:
    group: str
    version: str

    @property
    def path(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def __str__(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


class Registry:
    def __init__(self) -> None:
        self._by_url: dict[tuple[str, str, str], ResourceInfo] = {}
        self._crd_resources: dict[str, ResourceInfo] = {}  # CRD name -> resource
        self.generation = 0
        for info in BUILTIN:
            self._add(info)

    def _add(self, info: ResourceInfo) -> None:
        for version in info.versions:
            self._by_url[(info.group, version, info.plural)] = info
        self.generation += 1

    def _remove(self, info: ResourceInfo) -> None:
        for version in info.versions:
            self._by_url.pop((info.group, version, info.plural), None)
        self.generation += 1

    # --- lookups -------------------------------------------------------------------
    def lookup(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        return self._by_url.get((group, version, plural))

    def by_kind(self, group: str, kind: str) -> ResourceInfo | None:
        for info in self.resources():
            if info.group == group and info.kind == kind:
                return info
        return None

    def by_storage(self, group_resource: str) -> ResourceInfo | None:
        for info in self.resources():
            if info.group_resource == group_resource:
                return info
        return None

    def resources(self) -> Iterator[ResourceInfo]:
        seen: set[int] = set()
        for info in self._by_url.values():
            if id(info) not in seen:
                seen.add(id(info))
                yield info

    def group_versions(self) -> dict[str, list[str]]:
        """Every served group with its versions, preferred first, in discovery order."""
        groups: dict[str, list[str]] = {}
        for info in self.resources():
            versions = groups.setdefault(info.group, [])
            for v in info.versions:
                if v not in versions:
                    versions.append(v)
        for versions in groups.values():
            versions.sort(key=_version_priority)
        order = {g: i for i, g in enumerate(GROUP_ORDER)}
        return dict(sorted(groups.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))

    def resources_in(self, group: str, version: str) -> list[ResourceInfo]:
        found = [i for (g, v, _), i in self._by_url.items() if g == group and v == version]
        return sorted(found, key=lambda i: i.plural)

    def known_version(self, group: str, version: str) -> bool:
        return any(g == group and v == version for g, v, _ in self._by_url)

    # --- custom resources ------------------------------------------------------------
    def set_crd(self, crd: dict[str, Any]) -> None:
        """Serve (or re-serve, after an update) the custom resource a CRD defines, when
        the CRD is Established; stop serving it otherwise."""
        name = crd["metadata"]["name"]
        old = self._crd_resources.pop(name, None)
        if old is not None:
            self._remove(old)
        if not _established(crd) or crd["metadata"].get("deletionTimestamp"):
            return
        info = resource_from_crd(crd)
        if info.versions:
            self._crd_resources[name] = info
            self._add(info)

    def remove_crd(self, name: str) -> None:
        old = self._crd_resources.pop(name, None)
        if old is not None:
            self._remove(old)


def _established(crd: dict[str, Any]) -> bool:
    for cond in (crd.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Established":
            return cond.get("status") == "True"
    return False


def resource_from_crd(crd: dict[str, Any]) -> ResourceInfo:
    spec = crd["spec"]
    names = spec["names"]
    served = [v for v in spec.get("versions", []) if v.get("served", True)]
    served.sort(key=lambda v: _version_priority(v["name"]))
    storage = next((v["name"] for v in spec.get("versions", []) if v.get("storage")), None)
    subresources: list[str] = []
    for v in served:
        for sub in (v.get("subresources") or {}):
            if sub not in subresources:
                subresources.append(sub)
    return ResourceInfo(
        group=spec["group"],
        version=storage or (served[0]["name"] if served else "v1"),
        kind=names["kind"],
        plural=names["plural"],
        singular=names.get("singular") or names["kind"].lower(),
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        short_names=list(names.get("shortNames") or []),
        categories=list(names.get("categories") or []),
        subresources=subresources,
        versions=[v["name"] for v in served],
        crd=crd,
    )


def _version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes' version ordering: GA > beta > alpha, higher numbers first, then
    non-Kubernetes-style versions alphabetically."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0)
    major = int(m.group(1))
    stage = {"": 0, "beta": 1, "alpha": 2}[m.group(2) or ""]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor)
