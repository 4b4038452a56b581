"""API discovery for the garbage collector and the namespace controller.

Both controllers work on every resource the server serves, CRDs included, so they ask
the legacy discovery documents (`/api/v1`, `/apis`, `/apis/<group>/<version>`) rather
than a fixed table, as client-go's discovery client does:

- `preferred`: for each group its preferred version's resources (what
  ServerPreferredResources returns), subresources (`pods/status`) left out;
- `mapping`: (group, version, kind) -> Resource over *every* served version, the REST
  mapper the collector uses to turn an ownerReference's apiVersion/kind into a URL;
- `failed`: groups whose version document could not be read (group/version -> error),
  which the namespace controller reports as NamespaceDeletionDiscoveryFailure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from minikube_py.client import ApiClient, ApiError, Resource

Obj = dict[str, Any]


@dataclass(frozen=True)
class APIResource:
    """One discovered resource and the verbs it supports."""

    resource: Resource
    verbs: frozenset[str]

    def supports(self, *verbs: str) -> bool:
        return all(v in self.verbs for v in verbs)


@dataclass
class Discovery:
    """What the server serves right now (see the module docstring)."""

    preferred: list[APIResource] = field(default_factory=list)
    mapping: dict[tuple[str, str, str], Resource] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def resource_for(self, api_version: str, kind: str) -> Resource | None:
        """The Resource objects of `api_version`/`kind` are served as (None: unknown)."""
        group, _, version = api_version.rpartition("/")
        return self.mapping.get((group, version, kind))

    def deletable(self) -> list[APIResource]:
        """Resources supporting delete, list and watch (GetDeletableResources)."""
        return [r for r in self.preferred if r.supports("delete", "list", "watch")]


def _resources(doc: Obj, group: str, version: str) -> list[APIResource]:
    out = []
    for item in doc.get("resources") or []:
        name = str(item.get("name", ""))
        if not name or "/" in name:
            continue
        resource = Resource(group, version, name, bool(item.get("namespaced")), str(item.get("kind", "")))
        out.append(APIResource(resource, frozenset(item.get("verbs") or [])))
    return out


async def discover(client: ApiClient) -> Discovery:
    """Read discovery; a group that fails is recorded in `failed`, the rest is kept.
    Failing to read `/api/v1` or `/apis` at all raises (nothing can be trusted)."""
    result = Discovery()
    core = await client.request("GET", "/api/v1")
    groups: list[tuple[str, list[str], str]] = [("", ["v1"], "v1")]
    for g in (await client.request("GET", "/apis")).get("groups") or []:
        versions = [str(v.get("version")) for v in g.get("versions") or []]
        preferred = str((g.get("preferredVersion") or {}).get("version") or (versions[0] if versions else ""))
        groups.append((str(g.get("name")), versions, preferred))
    for group, versions, preferred in groups:
        for version in versions:
            try:
                doc = core if not group else await client.request("GET", f"/apis/{group}/{version}")
            except ApiError as exc:
                result.failed[f"{group}/{version}"] = exc.message or str(exc)
                continue
            found = _resources(doc or {}, group, version)
            for r in found:
                result.mapping.setdefault((group, version, r.resource.kind), r.resource)
            if version == preferred:
                result.preferred.extend(found)
    return result
