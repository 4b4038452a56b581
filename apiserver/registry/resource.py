"""ResourceInfo: everything the API server needs to know about one served resource."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apiserver.schema import SchemaNode

# The verbs Kubernetes advertises in discovery for an ordinary resource.
STANDARD_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass
class ResourceInfo:
    """One resource (a kind in a group), as discovery and routing see it.

    `version` is the version objects are stored in; `versions` lists every version
    served (e.g. autoscaling v2 and v1 for HorizontalPodAutoscaler), preferred first.
    `subresources` names the subresources served (status, scale, log, exec, binding...).
    `crd` holds the CustomResourceDefinition for custom resources, else None.
    """

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    subresources: list[str] = field(default_factory=list)
    verbs: list[str] = field(default_factory=lambda: list(STANDARD_VERBS))
    versions: list[str] = field(default_factory=list)
    singular: str = ""
    crd: dict[str, Any] | None = None
    # Storage shared with another resource, as `group_resource` (events.k8s.io events
    # live with core events); empty = its own.
    shares_storage_with: str = ""

    def __post_init__(self) -> None:
        if not self.versions:
            self.versions = [self.version]
        if not self.singular:
            self.singular = self.kind.lower()

    @property
    def group_resource(self) -> str:
        """`deployments.apps` or `pods`: the name used in messages and storage keys."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage_resource(self) -> str:
        return self.shares_storage_with or self.group_resource

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def api_version(self, version: str | None = None) -> str:
        version = version or self.version
        return f"{self.group}/{version}" if self.group else version

    def schema(self, version: str | None = None) -> SchemaNode | None:
        """The object schema for a served version (built-in definitions, or the CRD's
        openAPIV3Schema for that version)."""
        version = version or self.version
        if self.crd is None:
            return SchemaNode.builtin(self.group, version, self.kind)
        for v in self.crd.get("spec", {}).get("versions", []):
            if v.get("name") == version:
                raw = (v.get("schema") or {}).get("openAPIV3Schema")
                return SchemaNode.from_openapi(raw) if raw else None
        return None
