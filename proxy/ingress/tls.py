"""Server certificates: one SSL context per TLS Secret, chosen by SNI, and the fake one.

Python's ssl module loads certificates only from files, so a Secret's tls.crt / tls.key
are written to a private temporary directory, loaded, and removed at once. Contexts are
cached by the Secret's uid and resourceVersion, so a rebuilt routing table does not reload
unchanged certificates.

The SNI callback picks the context of the server the client names (exact host, then a
one-label wildcard server). Everything else (no SNI, an unknown host, a host whose
Secret is missing or invalid) gets the controller's default certificate, which, as in
ingress-nginx, is a self-signed "Kubernetes Ingress Controller Fake Certificate" made at
start-up (with `openssl`; without it the controller serves HTTPS only for hosts with a
valid Secret).
"""

from __future__ import annotations

import base64
import binascii
import logging
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from minikube_py.client import Lister
from proxy.ingress.routes import RoutingTable, normalize_host

log = logging.getLogger("proxy.ingress")

Obj = dict[str, Any]
FAKE_SUBJECT = "/O=Acme Co/CN=Kubernetes Ingress Controller Fake Certificate"


def _new_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context


def _load_pem(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="mkp-ingress-") as directory:
        cert_path, key_path = Path(directory) / "tls.crt", Path(directory) / "tls.key"
        cert_path.write_bytes(cert)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key)
        context.load_cert_chain(cert_path, key_path)


def context_from_pem(cert: bytes, key: bytes) -> ssl.SSLContext:
    """A server context for this certificate chain and key (ssl.SSLError if they are bad)."""
    context = _new_context()
    _load_pem(context, cert, key)
    return context


def fake_certificate() -> tuple[bytes, bytes] | None:
    """A fresh self-signed certificate and key, like ingress-nginx's default (None without openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    with tempfile.TemporaryDirectory(prefix="mkp-ingress-") as directory:
        cert, key = Path(directory) / "tls.crt", Path(directory) / "tls.key"
        subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "365", "-subj", FAKE_SUBJECT, "-addext", "subjectAltName=DNS:ingress.local",
                        "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=30)
        return cert.read_bytes(), key.read_bytes()


def secret_pem(secret: Obj) -> tuple[bytes, bytes]:
    """tls.crt and tls.key of a Secret (ValueError when missing or not base64)."""
    data = secret.get("data") or {}
    try:
        cert, key = data["tls.crt"], data["tls.key"]
    except KeyError as exc:
        raise ValueError(f"the Secret has no {exc.args[0]}") from None
    try:
        return base64.b64decode(cert, validate=True), base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"tls.crt / tls.key are not base64: {exc}") from None


class Certificates:
    """The default context (what the TLS listener is created with) and the SNI choice."""

    def __init__(self) -> None:
        self.default = _new_context()
        self.has_fake = False
        pem = fake_certificate()
        if pem is not None:
            _load_pem(self.default, *pem)
            self.has_fake = True
        else:
            log.warning("openssl not found: no fake certificate; HTTPS works only for hosts with a TLS Secret")
        self.default.sni_callback = self._sni
        self._by_host: dict[str, ssl.SSLContext] = {}
        self._cache: dict[tuple[str, str], ssl.SSLContext] = {}

    def update(self, table: RoutingTable, secrets: Lister) -> dict[tuple[str, str], str]:
        """Point every TLS host at its Secret's context; returns problems per Secret
        (those hosts get the default certificate)."""
        by_host: dict[str, ssl.SSLContext] = {}
        problems: dict[tuple[str, str], str] = {}
        cache: dict[tuple[str, str], ssl.SSLContext] = {}
        for host, server in table.servers.items():
            if not server.tls or server.tls_secret is None:
                continue
            namespace, name = server.tls_secret
            secret = secrets.get(name, namespace)
            if secret is None:
                problems[server.tls_secret] = f"Secret {namespace}/{name} not found; using the default certificate"
                continue
            meta = secret.get("metadata") or {}
            cache_key = (str(meta.get("uid")), str(meta.get("resourceVersion")))
            try:
                context = cache.get(cache_key) or self._cache.get(cache_key) or context_from_pem(*secret_pem(secret))
            except (ValueError, ssl.SSLError, OSError) as exc:
                problems[server.tls_secret] = f"Secret {namespace}/{name}: {exc}; using the default certificate"
                continue
            cache[cache_key] = context
            context.sni_callback = self._sni
            by_host[host] = context
        self._by_host, self._cache = by_host, cache
        return problems

    def context_for(self, server_name: str | None) -> ssl.SSLContext:
        if not server_name:
            return self.default
        name = normalize_host(server_name)
        context = self._by_host.get(name)
        if context is None and "." in name:
            context = self._by_host.get("*." + name.split(".", 1)[1])
        return context or self.default

    def _sni(self, sslobj: ssl.SSLObject, server_name: str | None, _context: ssl.SSLContext) -> None:
        chosen = self.context_for(server_name)
        if chosen is not sslobj.context:
            sslobj.context = chosen

