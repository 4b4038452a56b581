"""`ApiClient`: the async REST client every component talks to the API server through.

One client wraps one aiohttp session (a pool of keep-alive connections) to one server.
It speaks the Kubernetes wire format in JSON (encoded and decoded with orjson) and
knows the verbs, their query parameters and bodies, so callers deal in objects, not
URLs:

    get / list / list_all (paged) / create / update / update_status / patch / apply /
    delete / delete_collection / get_scale / scale / bind / evict / watch

Every failure the server reports is raised as `ApiError` (its `Status`). Writes carry
the client's `field_manager` (e.g. "kube-controller-manager") unless a call names
another, so server-side field ownership shows which component wrote what.

Objects are plain dicts, exactly what the server sent; nothing is converted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Literal

import aiohttp
import orjson

from minikube_py.client import clientconfig
from minikube_py.client.errors import ApiError
from minikube_py.client.resources import PODS, Resource
from minikube_py.client.streaming import WatchStream

Obj = dict[str, Any]
PatchType = Literal["json", "merge", "strategic", "apply"]
Selector = str | Mapping[str, str] | None

PATCH_CONTENT_TYPES: dict[str, str] = {
    "json": "application/json-patch+json",
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
DEFAULT_PAGE_SIZE = 500


def selector_string(selector: Selector) -> str | None:
    """A label selector as the API wants it: `{"app": "web"}` -> "app=web"."""
    if selector is None or isinstance(selector, str):
        return selector or None
    return ",".join(f"{k}={v}" for k, v in selector.items()) or None


def _query(params: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _decode(payload: bytes) -> Any:
    try:
        return orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        return payload


class ApiClient:
    """An async client of one API server (`http://127.0.0.1:PORT` or https)."""

    def __init__(self, server: str, *, token: str | None = None, session: aiohttp.ClientSession | None = None,
                 field_manager: str | None = None, user_agent: str = "minikube_py-client",
                 request_timeout: float = 60.0, ssl_context: Any = None, max_connections: int = 256) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.field_manager = field_manager
        self.user_agent = user_agent
        self.request_timeout = request_timeout
        self.namespace = "default"  # the kubeconfig context's namespace, for callers that want it
        self._ssl = ssl_context
        self._max_connections = max_connections
        self._session = session
        self._owns_session = session is None

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str], context: str | None = None, **kwargs: Any) -> ApiClient:
        """A client for `context` (default: current-context) of the kubeconfig at `path`."""
        config = clientconfig.load(path, context)
        client = cls(config.server, token=config.token, ssl_context=config.ssl_context, **kwargs)
        client.namespace = config.namespace
        return client

    # -- plumbing ---------------------------------------------------------------------

    def _session_now(self) -> aiohttp.ClientSession:
        # Created lazily: a ClientSession must be made inside the running event loop.
        if self._session is None or (self._session.closed and self._owns_session):
            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl or None)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        if content_type:
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      body: Any = None, content_type: str = "application/json") -> Any:
        """One call: JSON body in, decoded JSON out; an error response raises ApiError."""
        data = None if body is None else body if isinstance(body, bytes) else orjson.dumps(body)
        timeout = aiohttp.ClientTimeout(total=self.request_timeout)
        async with self._session_now().request(
                method, self.server + path, params=_query(params or {}), data=data, timeout=timeout,
                headers=self._headers(content_type if data is not None else None)) as response:
            payload = await response.read()
            if response.status >= 400:
                raise ApiError.from_response(response.status, _decode(payload))
            return _decode(payload)

    def _write_params(self, field_manager: str | None, dry_run: bool, **extra: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"fieldManager": field_manager or self.field_manager, **extra}
        if dry_run:
            params["dryRun"] = "All"
        return params

    @staticmethod
    def _namespace(resource: Resource, namespace: str | None, obj: Obj | None = None) -> str | None:
        if not resource.namespaced:
            return None
        namespace = namespace or ((obj or {}).get("metadata") or {}).get("namespace")
        if not namespace:
            raise ValueError(f"{resource} is namespaced: give a namespace")
        return namespace

    @staticmethod
    def _name(obj: Obj) -> str:
        name = (obj.get("metadata") or {}).get("name")
        if not name:
            raise ValueError("the object has no metadata.name")
        return name

    # -- reads ------------------------------------------------------------------------

    async def get(self, resource: Resource, name: str, namespace: str | None = None, *,
                  subresource: str | None = None) -> Obj:
        ns = self._namespace(resource, namespace)
        return await self.request("GET", resource.path(ns, name, subresource))

    async def list(self, resource: Resource, namespace: str | None = None, *, label_selector: Selector = None,
                   field_selector: str | None = None, limit: int | None = None, continue_: str | None = None,
                   resource_version: str | None = None, resource_version_match: str | None = None) -> Obj:
        """One page of a list (the List object: `items`, `metadata.continue`, ...).
        Without a namespace, a namespaced resource is listed across all namespaces."""
        params = {"labelSelector": selector_string(label_selector), "fieldSelector": field_selector or None,
                  "limit": limit or None, "continue": continue_ or None, "resourceVersion": resource_version,
                  "resourceVersionMatch": resource_version_match}
        return await self.request("GET", resource.path(namespace if resource.namespaced else None), params=params)

    async def list_all(self, resource: Resource, namespace: str | None = None, *, label_selector: Selector = None,
                       field_selector: str | None = None,
                       page_size: int = DEFAULT_PAGE_SIZE) -> tuple[list[Obj], str]:
        """Every item, fetched `page_size` at a time at one consistent revision, and
        that revision. If a continue token expires mid-way (410), the list starts
        over unpaged, as client-go's pager does."""
        items: list[Obj] = []
        token: str | None = None
        while True:
            try:
                page = await self.list(resource, namespace, label_selector=label_selector,
                                       field_selector=field_selector, limit=page_size, continue_=token)
            except ApiError as exc:
                if not (token and exc.is_gone()):
                    raise
                page = await self.list(resource, namespace, label_selector=label_selector,
                                       field_selector=field_selector)
                items = []
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                return items, str(meta.get("resourceVersion", ""))

    def watch(self, resource: Resource, namespace: str | None = None, *, resource_version: str | None = None,
              label_selector: Selector = None, field_selector: str | None = None, allow_bookmarks: bool = True,
              timeout_seconds: int | None = None, send_initial_events: bool = False) -> WatchStream:
        """A watch: async-iterate `(type, object)` with type ADDED / MODIFIED / DELETED /
        BOOKMARK; an ERROR event (e.g. 410 Expired) raises ApiError. Use `async with`
        (or iterate to the end) so the connection is released."""
        params = {"watch": "true", "resourceVersion": resource_version,
                  "labelSelector": selector_string(label_selector), "fieldSelector": field_selector or None,
                  "allowWatchBookmarks": allow_bookmarks or None, "timeoutSeconds": timeout_seconds,
                  "sendInitialEvents": send_initial_events or None}
        if send_initial_events:
            params["resourceVersionMatch"] = "NotOlderThan"
        url = self.server + resource.path(namespace if resource.namespaced else None)
        # No total timeout beyond what the server was asked for (plus slack for a slow close).
        total = timeout_seconds + 30 if timeout_seconds else None
        timeout = aiohttp.ClientTimeout(total=total, sock_connect=self.request_timeout)

        async def opener() -> aiohttp.ClientResponse:
            response = await self._session_now().get(url, params=_query(params), headers=self._headers(None),
                                                     timeout=timeout)
            if response.status >= 400:
                payload = await response.read()
                response.release()
                raise ApiError.from_response(response.status, _decode(payload))
            return response

        return WatchStream(opener)

    # -- writes -----------------------------------------------------------------------

    async def create(self, resource: Resource, obj: Obj, namespace: str | None = None, *,
                     field_manager: str | None = None, dry_run: bool = False) -> Obj:
        ns = self._namespace(resource, namespace, obj)
        return await self.request("POST", resource.path(ns), body=obj,
                                  params=self._write_params(field_manager, dry_run))

    async def update(self, resource: Resource, obj: Obj, namespace: str | None = None, *,
                     field_manager: str | None = None, dry_run: bool = False) -> Obj:
        """PUT the whole object; metadata.resourceVersion, when set, makes it a
        compare-and-swap (409 Conflict if the object changed since)."""
        ns = self._namespace(resource, namespace, obj)
        return await self.request("PUT", resource.path(ns, self._name(obj)), body=obj,
                                  params=self._write_params(field_manager, dry_run))

    async def update_status(self, resource: Resource, obj: Obj, namespace: str | None = None, *,
                            field_manager: str | None = None, dry_run: bool = False) -> Obj:
        """PUT the `status` subresource (only status changes; spec edits are ignored)."""
        ns = self._namespace(resource, namespace, obj)
        return await self.request("PUT", resource.path(ns, self._name(obj), "status"), body=obj,
                                  params=self._write_params(field_manager, dry_run))

    async def patch(self, resource: Resource, name: str, patch: Any, namespace: str | None = None, *,
                    patch_type: PatchType = "merge", subresource: str | None = None,
                    field_manager: str | None = None, force: bool | None = None, dry_run: bool = False) -> Obj:
        """PATCH with a JSON patch (list of ops), JSON merge patch, strategic merge
        patch, or server-side apply (`patch` is then the applied configuration; apply
        needs a field manager, and `force=True` takes over conflicting fields)."""
        if patch_type not in PATCH_CONTENT_TYPES:
            raise ValueError(f"unknown patch type {patch_type!r}")
        manager = field_manager or self.field_manager
        if patch_type == "apply" and not manager:
            raise ValueError("server-side apply needs a field_manager")
        params = self._write_params(manager, dry_run, force=force if patch_type == "apply" else None)
        ns = self._namespace(resource, namespace)
        return await self.request("PATCH", resource.path(ns, name, subresource), body=patch, params=params,
                                  content_type=PATCH_CONTENT_TYPES[patch_type])

    async def apply(self, resource: Resource, obj: Obj, namespace: str | None = None, *,
                    field_manager: str | None = None, force: bool = False, subresource: str | None = None,
                    dry_run: bool = False) -> Obj:
        """Server-side apply of `obj` (which must carry apiVersion, kind and name)."""
        ns = self._namespace(resource, namespace, obj)
        return await self.patch(resource, self._name(obj), obj, ns, patch_type="apply", subresource=subresource,
                                field_manager=field_manager, force=force, dry_run=dry_run)

    async def delete(self, resource: Resource, name: str, namespace: str | None = None, *,
                     propagation_policy: str | None = None, grace_period_seconds: int | None = None,
                     preconditions: Mapping[str, str] | None = None, dry_run: bool = False) -> Obj:
        """DELETE with DeleteOptions. propagation_policy: Orphan | Background | Foreground;
        preconditions: {"uid": ..., "resourceVersion": ...}. Returns what the server
        returns: the object (still there while finalizers run) or a Success Status."""
        ns = self._namespace(resource, namespace)
        return await self.request("DELETE", resource.path(ns, name),
                                  body=_delete_options(propagation_policy, grace_period_seconds, preconditions,
                                                       dry_run))

    async def delete_collection(self, resource: Resource, namespace: str | None = None, *,
                                label_selector: Selector = None, field_selector: str | None = None,
                                propagation_policy: str | None = None) -> Obj:
        params = {"labelSelector": selector_string(label_selector), "fieldSelector": field_selector or None}
        ns = self._namespace(resource, namespace) if resource.namespaced and namespace else None
        return await self.request("DELETE", resource.path(ns), params=params,
                                  body=_delete_options(propagation_policy, None, None, False))

    # -- subresources -----------------------------------------------------------------

    async def get_scale(self, resource: Resource, name: str, namespace: str | None = None) -> Obj:
        """The autoscaling/v1 Scale of a Deployment, ReplicaSet, StatefulSet, ..."""
        return await self.get(resource, name, namespace, subresource="scale")

    async def scale(self, resource: Resource, name: str, replicas: int, namespace: str | None = None, *,
                    field_manager: str | None = None) -> Obj:
        """Set spec.replicas through the scale subresource; returns the new Scale."""
        return await self.patch(resource, name, {"spec": {"replicas": replicas}}, namespace,
                                subresource="scale", field_manager=field_manager)

    async def bind(self, namespace: str, pod_name: str, node_name: str, *, pod_uid: str | None = None,
                   field_manager: str | None = None) -> Obj:
        """What the scheduler does: POST a Binding to `pods/<name>/binding`, which sets
        spec.nodeName (and fails with 409 if the pod is already bound)."""
        metadata: Obj = {"name": pod_name, "namespace": namespace}
        if pod_uid:
            metadata["uid"] = pod_uid
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": metadata,
                "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}}
        return await self.request("POST", PODS.path(namespace, pod_name, "binding"), body=body,
                                  params=self._write_params(field_manager, False))

    async def evict(self, namespace: str, pod_name: str, *, grace_period_seconds: int | None = None,
                    preconditions: Mapping[str, str] | None = None) -> Obj:
        """POST a policy/v1 Eviction to `pods/<name>/eviction` (a delete that respects
        PodDisruptionBudgets; 429 TooManyRequests when a budget forbids it)."""
        body: Obj = {"apiVersion": "policy/v1", "kind": "Eviction",
                     "metadata": {"name": pod_name, "namespace": namespace}}
        options = _delete_options(None, grace_period_seconds, preconditions, False)
        if len(options) > 2:
            body["deleteOptions"] = options
        return await self.request("POST", PODS.path(namespace, pod_name, "eviction"), body=body)

    # -- lifecycle --------------------------------------------------------------------

    async def close(self) -> None:
        """Close the session, if this client created it."""
        if self._session is not None and self._owns_session and not self._session.closed:
            await self._session.close()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()


def _delete_options(propagation_policy: str | None, grace_period_seconds: int | None,
                    preconditions: Mapping[str, str] | None, dry_run: bool) -> Obj:
    options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if propagation_policy:
        options["propagationPolicy"] = propagation_policy
    if grace_period_seconds is not None:
        options["gracePeriodSeconds"] = grace_period_seconds
    if preconditions:
        options["preconditions"] = dict(preconditions)
    if dry_run:
        options["dryRun"] = ["All"]
    return options
