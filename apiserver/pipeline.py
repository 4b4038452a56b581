"""The request pipeline: authentication -> authorization -> mutating admission ->
validation -> validating admission -> storage.

Each stage is a Protocol with a list of pluggable implementations, as in
k8s.io/apiserver. This issue ships allow-all authentication and authorization (the
security issue replaces them with certificates, tokens and RBAC) and the built-in
admission steps; the seams are real: handlers call every stage for every request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from apiserver import errors
from apiserver.registry.resource import ResourceInfo
from apiserver.request import RequestInfo


@dataclass(frozen=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)


ANONYMOUS = UserInfo("system:anonymous", groups=("system:unauthenticated",))


@dataclass
class Attributes:
    """What admission sees of a write (admission.Attributes in Kubernetes)."""

    operation: str  # CREATE, UPDATE, DELETE, CONNECT
    info: ResourceInfo
    version: str
    namespace: str
    name: str
    subresource: str
    obj: dict[str, Any] | None
    old: dict[str, Any] | None
    user: UserInfo
    dry_run: bool
    warnings: list[str] = field(default_factory=list)


class Authenticator(Protocol):
    async def authenticate(self, request: web.Request) -> UserInfo | None:
        """The user a request proves to be, or None if this authenticator can't tell."""


class Authorizer(Protocol):
    async def authorize(self, user: UserInfo, info: RequestInfo) -> tuple[bool, str]:
        """(allowed, reason)."""


class MutatingAdmission(Protocol):
    async def admit(self, attrs: Attributes) -> None:
        """May change attrs.obj; raises StatusError to reject."""


class ValidatingAdmission(Protocol):
    async def validate(self, attrs: Attributes) -> None:
        """Raises StatusError to reject; must not change attrs.obj."""


class AnonymousAuthenticator:
    """Everyone is system:anonymous (until the security issue adds real authentication)."""

    async def authenticate(self, request: web.Request) -> UserInfo | None:
        return ANONYMOUS


class AlwaysAllow:
    async def authorize(self, user: UserInfo, info: RequestInfo) -> tuple[bool, str]:
        return True, ""


@dataclass
class Pipeline:
    authenticators: list[Authenticator] = field(default_factory=lambda: [AnonymousAuthenticator()])
    authorizer: Authorizer = field(default_factory=AlwaysAllow)
    mutating: list[MutatingAdmission] = field(default_factory=list)
    validating: list[ValidatingAdmission] = field(default_factory=list)

    async def authenticate(self, request: web.Request) -> UserInfo:
        for authenticator in self.authenticators:
            user = await authenticator.authenticate(request)
            if user is not None:
                return user
        raise errors.StatusError(401, "Unauthorized", "Unauthorized")

    async def authorize(self, user: UserInfo, info: RequestInfo) -> None:
        allowed, reason = await self.authorizer.authorize(user, info)
        if allowed:
            return
        what = info.resource + (f"/{info.subresource}" if info.subresource else "")
        target = f'{what} "{info.name}"' if info.name else what
        scope = f' in the namespace "{info.namespace}"' if info.namespace else " at the cluster scope"
        group = f' in API group "{info.group}"'
        message = f'{target} is forbidden: User "{user.name}" cannot {info.verb} resource "{what}"{group}{scope}'
        if reason:
            message += f": {reason}"
        raise errors.forbidden_request(message, resource=info.resource, name=info.name, group=info.group)

    async def admit(self, attrs: Attributes) -> None:
        for plugin in self.mutating:
            await plugin.admit(attrs)

    async def validate(self, attrs: Attributes) -> None:
        for plugin in self.validating:
            await plugin.validate(attrs)
