"""Subresources the node's kubelet serves, proxied as kube-apiserver proxies them:
`pods/log`, `pods/exec`, `pods/attach`, `pods/portforward` and `nodes/proxy`; and
`pods/proxy`, which kube-apiserver sends to the pod's IP directly.

The API server finds the pod's node (`spec.nodeName`), reads that Node's address
(status.addresses: InternalIP, then ExternalIP, then Hostname) and kubelet port
(status.daemonEndpoints.kubeletEndpoint.Port, 10250 if unset) and calls the kubelet:
`/containerLogs/<ns>/<pod>/<container>`, `/exec/...`, `/attach/...`,
`/portForward/<ns>/<pod>`, or any path for `nodes/<n>/proxy/<path>`. Deviation: plain
HTTP to a loopback address, where kube-apiserver uses HTTPS and client certificates.

- log: PodLogOptions checked here (422 `PodLogOptions "p" is invalid`), the container
  defaulted or checked (400 `a container name must be specified for pod p, choose one
  of: [a b]`, `container c is not valid for pod p`), then the kubelet's answer streamed
  back chunk by chunk (so `-f` is prompt); a kubelet 400 such as `container "c" in pod
  "p" is waiting to start: ContainerCreating` becomes a 400 BadRequest Status. A pod
  not bound to a node has an empty log.
- exec, attach, portforward: a WebSocket relay. The client's WebSocket is accepted with
  the subprotocol the kubelet chose from the client's list (v5/v4 channel protocols,
  base64 variants, `SPDY/3.1+portforward.k8s.io`, `portforward.k8s.io`); messages (binary
  and text) and the close code pass through unchanged: the kubelet speaks the protocol.
  A request without a WebSocket upgrade (a SPDY-only client, or kubectl's SPDY fallback
  after a failed WebSocket attempt) gets the kubelet's own error if the kubelet refuses
  the request (say `container not found ("c")`), else a 400 explaining that this server
  streams over WebSocket only.
- Authorization as kube-apiserver 1.32: the verb of the HTTP method (`get` for GET,
  `create` for POST), and a WebSocket GET on exec/attach/portforward also needs
  `create` (AuthorizePodWebsocketUpgradeCreatePermission).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import random
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from apiserver import errors
from apiserver.context import Ctx

Obj = dict[str, Any]
_POD_SUBRESOURCES = {"log", "exec", "attach", "portforward", "proxy"}
_ADDRESS_TYPES = ("InternalIP", "ExternalIP", "Hostname")
DEFAULT_KUBELET_PORT = 10250
_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10)
WEBSOCKET_REQUIRED = (
    "this API server streams exec, attach and port-forward over WebSocket only "
    "(v5.channel.k8s.io, v4.channel.k8s.io, SPDY/3.1+portforward.k8s.io); a SPDY upgrade is not supported: "
    "use kubectl 1.31 or newer, or a WebSocket client")


def handles(ctx: Ctx) -> bool:
    """Whether this module serves the request (core pods/log|exec|attach|portforward|proxy,
    nodes/proxy, services/proxy)."""
    if ctx.info.group or ctx.info.crd is not None:
        return False
    sub = ctx.rinfo.subresource
    return (ctx.info.plural == "pods" and sub in _POD_SUBRESOURCES) or (
        ctx.info.plural in ("nodes", "services") and sub == "proxy")


async def serve(ctx: Ctx) -> web.StreamResponse:
    sub = ctx.rinfo.subresource
    if ctx.info.plural == "nodes":
        return await _node_proxy(ctx)
    if ctx.info.plural == "services":
        return await _service_proxy(ctx)
    if sub == "log":
        return await _log(ctx)
    if sub == "proxy":
        return await _pod_proxy(ctx)
    return await _connect(ctx, sub)


# ---- where the kubelet is ----

async def kubelet_url(ctx: Ctx, node_name: str) -> str:
    """`http://<address>:<port>` of a node's kubelet, from its Node object."""
    info = ctx.server.registry.lookup("", "v1", "nodes")
    assert info is not None
    node = await ctx.server.store.get(info, None, node_name)
    status = node.get("status") or {}
    addresses = status.get("addresses") or []
    host = next((a.get("address") for kind in _ADDRESS_TYPES for a in addresses
                 if a.get("type") == kind and a.get("address")), None)
    if not host:
        known = "[" + " ".join(f"{{{a.get('type', '')} {a.get('address', '')}}}" for a in addresses) + "]"
        raise errors.StatusError(500, "", f"no preferred addresses found; known addresses: {known}")
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or DEFAULT_KUBELET_PORT
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _dial_error(url: str, exc: aiohttp.ClientConnectorError) -> str:
    """A connection failure worded as Go's net package words it."""
    reason = "connection refused" if exc.os_error.errno == errno.ECONNREFUSED else \
        (exc.os_error.strerror or str(exc.os_error)).lower()
    return f"dial tcp {exc.host}:{exc.port}: connect: {reason}"


async def _pod(ctx: Ctx) -> Obj:
    return await ctx.server.store.get(ctx.info, ctx.namespace, ctx.name)


def validate_container(pod: Obj, container: str) -> str:
    """The container a log/exec/attach request means (kube-apiserver's validateContainer)."""
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    if not container:
        containers = spec.get("containers") or []
        if len(containers) == 1:
            return containers[0]["name"]
        if not containers:
            raise errors.bad_request(f"a container name must be specified for pod {name}")
        names = [c["name"] for key in ("initContainers", "containers", "ephemeralContainers")
                 for c in spec.get(key) or []]
        raise errors.bad_request(f"a container name must be specified for pod {name}, "
                                 f"choose one of: [{' '.join(names)}]")
    if not any(c.get("name") == container for key in ("initContainers", "containers", "ephemeralContainers")
               for c in spec.get(key) or []):
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    return container


def _parse_bool(params: Any, key: str) -> bool:
    value = params.get(key)
    if value is None or value == "":
        return False
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise errors.bad_request(f'strconv.ParseBool: parsing "{value}": invalid syntax')


def _parse_int(params: Any, key: str) -> int | None:
    value = params.get(key)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f'strconv.ParseInt: parsing "{value}": invalid syntax') from None


# ---- pods/log ----

def _log_params(ctx: Ctx) -> dict[str, str]:
    """PodLogOptions from the query, validated, as the kubelet's query parameters."""
    p = ctx.params
    follow, previous, timestamps = _parse_bool(p, "follow"), _parse_bool(p, "previous"), _parse_bool(p, "timestamps")
    _parse_bool(p, "insecureSkipTLSVerifyBackend")  # accepted; the kubelet is reached over plain HTTP
    tail, limit, since_seconds = _parse_int(p, "tailLines"), _parse_int(p, "limitBytes"), _parse_int(p, "sinceSeconds")
    since_time = p.get("sinceTime")
    if since_time:
        try:
            datetime.fromisoformat(since_time.replace("Z", "+00:00"))
        except ValueError:
            raise errors.bad_request(f'parsing time "{since_time}" as "2006-01-02T15:04:05Z07:00": '
                                     "cannot parse") from None
    problems = []
    if tail is not None and tail < 0:
        problems.append(errors.invalid("tailLines", tail, "must be greater than or equal to 0"))
    if limit is not None and limit < 1:
        problems.append(errors.invalid("limitBytes", limit, "must be greater than 0"))
    if since_seconds is not None and since_time:
        problems.append(errors.forbidden("", "at most one of `sinceTime` or `sinceSeconds` may be specified"))
    elif since_seconds is not None and since_seconds < 1:
        problems.append(errors.invalid("sinceSeconds", since_seconds, "must be greater than 0"))
    if problems:
        raise errors.invalid_object("PodLogOptions", "", ctx.name, problems)
    params = {k: "true" for k, on in (("follow", follow), ("previous", previous), ("timestamps", timestamps)) if on}
    for key, value in (("sinceSeconds", since_seconds), ("tailLines", tail), ("limitBytes", limit)):
        if value is not None:
            params[key] = str(value)
    if since_time:
        params["sinceTime"] = since_time
    return params


def _kubelet_failure(code: int, body: str, name: str) -> errors.StatusError:
    """A kubelet's non-2xx answer to a log request (GenericHttpResponseChecker)."""
    if code == 500:
        return errors.internal(body)
    if code == 400:
        return errors.bad_request(body)
    reason = {404: "NotFound", 403: "Forbidden", 401: "Unauthorized", 409: "Conflict",
              422: "Invalid", 503: "ServiceUnavailable"}.get(code, "")
    details: Obj = {"name": name, "kind": "pods/log"}
    if body:
        details["causes"] = [{"reason": "UnexpectedServerResponse", "message": body}]
    message = "the server could not find the requested resource" if code == 404 else \
        f"the server responded with the status code {code} but did not return more information"
    return errors.StatusError(code, reason, f"{message} ( pods/log {name})", details=details)


async def _log(ctx: Ctx) -> web.StreamResponse:
    if ctx.request.method not in ("GET", "HEAD"):
        raise errors.method_not_allowed()
    params = _log_params(ctx)
    pod = await _pod(ctx)
    container = validate_container(pod, ctx.params.get("container", ""))
    node = (pod.get("spec") or {}).get("nodeName")
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    if not node:  # not scheduled yet: an empty log, as kube-apiserver answers
        await response.prepare(ctx.request)
        await response.write_eof()
        return response
    url = f"{await kubelet_url(ctx, node)}/containerLogs/{ctx.namespace}/{ctx.name}/{container}"
    async with aiohttp.ClientSession(timeout=_TIMEOUT, auto_decompress=False) as session:
        try:
            upstream = await session.get(url, params=params)
        except aiohttp.ClientConnectorError as exc:
            query = f"?{urlencode(params)}" if params else ""
            raise errors.StatusError(500, "", f'Get "{url}{query}": {_dial_error(url, exc)}') from None
        async with upstream:
            if not 200 <= upstream.status <= 206:
                body = (await upstream.content.read(64 * 1024)).decode(errors="replace")
                raise _kubelet_failure(upstream.status, body, ctx.name)
            response.enable_chunked_encoding()
            await response.prepare(ctx.request)
            await copy_body(ctx.request, response, upstream)
    return response


# ---- pods/exec, attach, portforward ----

def _stream_params(ctx: Ctx, sub: str, pod: Obj) -> tuple[str, list[tuple[str, str]]]:
    """(kubelet path, query) for exec/attach/portforward (streamParams in kube-apiserver)."""
    p = ctx.params
    if sub == "portforward":
        ports = [x for v in p.getall("ports", []) for x in v.split(",") if x]
        for port in ports:
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise errors.bad_request(f"invalid port {port!r}: must be between 1 and 65535")
        return f"/portForward/{ctx.namespace}/{ctx.name}", [("port", ",".join(ports))] if ports else []
    container = validate_container(pod, p.get("container", ""))
    query = [(key, "1") for key in ("stdin", "stdout", "stderr", "tty") if _parse_bool(p, key)]
    if sub == "exec":
        query += [("command", c) for c in p.getall("command", [])]
    return f"/{sub}/{ctx.namespace}/{ctx.name}/{container}", query


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket" and \
        "upgrade" in request.headers.get("Connection", "").lower()


async def _connect(ctx: Ctx, sub: str) -> web.StreamResponse:
    request = ctx.request
    if request.method not in ("GET", "POST"):
        raise errors.method_not_allowed()
    if ctx.rinfo.verb != "create":
        await ctx.server.pipeline.authorize(ctx.user, replace(ctx.rinfo, verb="create"))
    pod = await _pod(ctx)
    path, query = _stream_params(ctx, sub, pod)
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        raise errors.bad_request(f"pod {ctx.name} does not have a host assigned")
    url = await kubelet_url(ctx, node) + path
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
        if not _is_websocket(request):
            return await _refuse_non_websocket(session, url, query)
        offered = [s.strip() for s in ",".join(request.headers.getall("Sec-WebSocket-Protocol", [])).split(",")
                   if s.strip()]
        try:
            upstream = await session.ws_connect(url, params=query, protocols=offered, max_msg_size=0,
                                                autoclose=False, autoping=True)
        except aiohttp.WSServerHandshakeError:
            return await _kubelet_refusal(session, url, query)
        except aiohttp.ClientConnectorError as exc:
            raise errors.StatusError(500, "", f"error dialing backend: {_dial_error(url, exc)}") from None
        downstream = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else (),
                                           max_msg_size=0, autoclose=False, autoping=True)
        await downstream.prepare(request)
        await _relay(downstream, upstream)
        return downstream


async def _kubelet_refusal(session: aiohttp.ClientSession, url: str, query: list[tuple[str, str]]) -> web.Response:
    """The kubelet refused the upgrade: ask again without it to learn why, and pass its
    answer on (kube-apiserver's proxy passes a failed upgrade response through)."""
    async with session.get(url, params=query) as resp:
        body = await resp.content.read(64 * 1024)
        if resp.status == 426:  # it would have upgraded: no reason to give but the status
            raise errors.StatusError(500, "", "the kubelet refused the WebSocket upgrade")
        return web.Response(status=resp.status, body=body,
                            content_type=resp.content_type or "text/plain")


async def _refuse_non_websocket(session: aiohttp.ClientSession, url: str,
                                query: list[tuple[str, str]]) -> web.Response:
    try:
        async with session.get(url, params=query) as resp:
            body = await resp.content.read(64 * 1024)
            if resp.status != 426:
                return web.Response(status=resp.status, body=body, content_type=resp.content_type or "text/plain")
    except aiohttp.ClientConnectorError as exc:
        raise errors.StatusError(500, "", f"error dialing backend: {_dial_error(url, exc)}") from None
    raise errors.bad_request(WEBSOCKET_REQUIRED)


async def _relay(downstream: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    """Copy messages both ways until one side closes; then close the other with its code."""

    async def pipe(src: Any, dst: Any) -> None:
        while True:
            msg = await src.receive()
            if msg.type == aiohttp.WSMsgType.BINARY:
                await dst.send_bytes(msg.data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                await dst.send_str(msg.data)
            elif msg.type == aiohttp.WSMsgType.CLOSE:
                with contextlib.suppress(Exception):
                    await src.close(code=msg.data or 1000)
                await dst.close(code=msg.data or 1000, message=(msg.extra or "").encode())
                return
            elif msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                await dst.close(code=src.close_code or 1000)
                return

    tasks = [asyncio.create_task(pipe(upstream, downstream)), asyncio.create_task(pipe(downstream, upstream))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.wait(tasks, timeout=5)
    finally:
        for task in tasks:
            task.cancel()
        await upstream.close()
        await downstream.close()


# ---- nodes/proxy ----

_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length",
                "authorization", "proxy-authorization", "te", "trailer"}


async def _node_proxy(ctx: Ctx) -> web.StreamResponse:
    return await _http_proxy(ctx, await kubelet_url(ctx, ctx.name), f"/nodes/{ctx.name}/proxy")


async def _pod_proxy(ctx: Ctx) -> web.StreamResponse:
    """pods/<[scheme:]name[:port]>/proxy/<path>: HTTP to the pod's IP (kube-apiserver's
    ResourceLocation: the first declared container port when none is given). Deviation:
    loopback pod IPs are allowed (the loopback pod network uses them)."""
    scheme, name, port = _scheme_name_port(ctx, "pod")
    pod = await ctx.server.store.get(ctx.info, ctx.namespace, name)
    if not port:
        port = next((str(p["containerPort"]) for c in (pod.get("spec") or {}).get("containers") or []
                     for p in c.get("ports") or [] if p.get("containerPort")), "")
    ips = (pod.get("status") or {}).get("podIPs") or []
    ip = ips[0].get("ip", "") if ips else (pod.get("status") or {}).get("podIP", "")
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        raise errors.bad_request("address not allowed") from None
    if address.is_unspecified or address.is_multicast or address.is_link_local:
        raise errors.bad_request("address not allowed")
    host = f"[{ip}]" if address.version == 6 else ip
    return await _http_proxy(ctx, f"{scheme}://{host}" + (f":{port}" if port else ""), f"/pods/{ctx.name}/proxy")


def _scheme_name_port(ctx: Ctx, kind: str) -> tuple[str, str, str]:
    """`[scheme:]name[:port]` as kube-apiserver splits a proxy request's name."""
    parts = ctx.name.split(":")
    if len(parts) == 3 and parts[0] in ("http", "https"):
        return parts[0], parts[1], parts[2]
    if len(parts) <= 2:
        return "http", parts[0], parts[1] if len(parts) == 2 else ""
    raise errors.bad_request(f'invalid {kind} request "{ctx.name}"')


async def _service_proxy(ctx: Ctx) -> web.StreamResponse:
    """services/<[scheme:]name[:port]>/proxy/<path>: HTTP to one ready endpoint of the
    Service (kube-apiserver's ResourceLocation): the port is a Service port's name or
    number (none: the unnamed port), the endpoint a random ready address of the
    EndpointSlices' port of that name, at its target port."""
    scheme, name, port = _scheme_name_port(ctx, "service")
    service = await ctx.server.store.get(ctx.info, ctx.namespace, name)
    ports = (service.get("spec") or {}).get("ports") or []
    if port.isdigit():
        declared = next((p for p in ports if str(p.get("port")) == port), None)
        if declared is None:
            raise errors.StatusError(503, "ServiceUnavailable", f'no service port {port} found for service "{name}"')
        port = declared.get("name") or ""
    slices_info = ctx.server.registry.lookup("discovery.k8s.io", "v1", "endpointslices")
    candidates: list[tuple[str, int]] = []
    if slices_info is not None:
        page = await ctx.server.store.list(slices_info, ctx.namespace, match=lambda s: (
            (s.get("metadata") or {}).get("labels") or {}).get("kubernetes.io/service-name") == name)
        for item in page.items:
            slice_port = next((p.get("port") for p in item.get("ports") or [] if (p.get("name") or "") == port), None)
            if slice_port is None:
                continue
            for endpoint in item.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is not False:
                    candidates += [(address, slice_port) for address in endpoint.get("addresses") or []]
    if not candidates:
        raise errors.StatusError(503, "ServiceUnavailable", f'no endpoints available for service "{ctx.name}"')
    ip, target = random.choice(candidates)
    host = f"[{ip}]" if ":" in ip else ip
    return await _http_proxy(ctx, f"{scheme}://{host}:{target}", f"/services/{ctx.name}/proxy")


async def _http_proxy(ctx: Ctx, base: str, marker: str) -> web.StreamResponse:
    """Pass the request (method, path after `marker`, query, body) to `base` and stream
    the answer back."""
    request = ctx.request
    suffix = request.path.split(marker, 1)[1] if marker in request.path else ""
    url = base + (suffix or "/")
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
    body = await request.read()
    async with aiohttp.ClientSession(timeout=_TIMEOUT, auto_decompress=False) as session:
        try:
            upstream = await session.request(request.method, url, params=request.query, headers=headers,
                                             data=body or None, allow_redirects=False, ssl=False)
        except aiohttp.ClientConnectorError as exc:
            raise errors.StatusError(503, "ServiceUnavailable",
                                     f"error trying to reach service: {_dial_error(url, exc)}") from None
        async with upstream:
            response = web.StreamResponse(status=upstream.status)
            for key, value in upstream.headers.items():
                if key.lower() not in _HOP_HEADERS:
                    response.headers.add(key, value)
            await response.prepare(request)
            await copy_body(request, response, upstream)
    return response


DISCONNECT_CHECK = 1.0  # seconds between checks that a quiet stream's client is still there


async def copy_body(request: web.Request, response: web.StreamResponse, upstream: aiohttp.ClientResponse) -> None:
    """Stream the kubelet's body to the client as it comes. Ends when the kubelet ends
    it, or when the client has gone (checked even while a followed log is quiet, so an
    abandoned `kubectl logs -f` does not hold a kubelet stream open)."""
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(upstream.content.readany(), DISCONNECT_CHECK)
            except TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    return
                continue
            if not chunk:
                break
            await response.write(chunk)
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
        return  # the kubelet went away mid-stream: end ours (headers are already sent)
    except ConnectionResetError:
        return  # the client went away
    await response.write_eof()
