"""The controller's own answers (404 default backend, 502/503/504, 308 redirects), in the
shape of nginx's error pages, which is what ingress-nginx users see."""

from __future__ import annotations

from aiohttp import web

REASONS = {308: "Permanent Redirect", 404: "Not Found", 413: "Request Entity Too Large", 502: "Bad Gateway", 503: "Service Temporarily Unavailable",
           504: "Gateway Time-out"}


def error_page(status: int, detail: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
    title = f"{status} {REASONS.get(status, '')}".strip()
    note = f"<p>{detail}</p>\r\n" if detail else ""
    body = (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
            f"{note}<hr><center>mkp-ingress</center>\r\n</body>\r\n</html>\r\n")
    return web.Response(status=status, text=body, content_type="text/html", headers=headers)
